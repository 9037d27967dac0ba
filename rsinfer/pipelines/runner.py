"""`run`: one scene through one pipeline — outputs checked, inputs checked, plan made, tiles run by the scene engine,
provenance written, preview drawn. The CLI, the Python API, the batch runner and the benchmark harness all call it.

Outputs are checked before any work (`check_outputs`): each path and its directory (`rsinfer.io.check_output`: not a
directory, not a symbolic link, not existing without overwrite, in a directory that exists and takes new files), the
preview's name, and that no output is also an input or another output. They are written to temporary files and
moved into place together once all are complete (`rsinfer.files.OutputGroup`): a failure or an interrupt leaves none
of them behind, and an earlier output stays as it was.

A plan with K > 1 stochastic draws (`ScenePlan.samples`, from a pipeline's `samples` option) writes their mean as the
output and, when asked (`uncertainty`), their per-band standard deviation as a second GeoTIFF on the same grid, in the
same group (`rsinfer.pipelines.uncertainty`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from rsinfer.errors import OutputError, UsageError
from rsinfer.files import OutputGroup
from rsinfer.io import OutputOptions, RasterInfo, check_output, gdal_environment, raster_info
from rsinfer.pipelines.contract import PlannedTiles, ScenePipeline, ScenePlan
from rsinfer.pipelines.preview import write_png
from rsinfer.pipelines.provenance import provenance_tags, warn_untrained, weights_banner
from rsinfer.pipelines.uncertainty import run_draws
from rsinfer.scene import OutputSummary, run_scene
from rsinfer.scene.engine import read_failure
from rsinfer.tiling import Tiling

Inputs = Mapping[str, str | os.PathLike]


def check_inputs(pipeline: ScenePipeline, inputs: Inputs) -> dict[str, str | os.PathLike]:
    """`inputs` (in the caller's order), every required input present and no unknown one."""
    contracts = {c.name: c for c in pipeline.inputs()}
    unknown = sorted(set(inputs) - set(contracts))
    if unknown:
        raise ValueError(f"pipeline {pipeline.name!r} takes inputs {list(contracts)}, not {unknown}")
    missing = [name for name, c in contracts.items() if c.required and name not in inputs]
    if missing:
        listing = "; ".join(f"{name}: {contracts[name].description}" for name in missing)
        raise ValueError(f"pipeline {pipeline.name!r} needs input(s) {missing} ({listing})")
    return dict(inputs)


def check_preview(preview: str | os.PathLike, overwrite: bool) -> Path:
    preview = Path(preview)
    if preview.suffix.lower() != ".png":
        raise UsageError(f"preview {preview}: previews are PNG files; name it *.png")
    return check_output(preview, overwrite)


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    a, b = os.fspath(a), os.fspath(b)
    if a.startswith("/vsi") or b.startswith("/vsi") or "://" in a or "://" in b:
        return a == b
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


def check_outputs(output: str | os.PathLike, preview: str | os.PathLike | None, inputs: Inputs,
                  overwrite: bool, uncertainty: str | os.PathLike | None = None) -> None:
    """Every output path checked before any work: see the module docstring. Raises `OutputError` for a path or a
    directory that cannot take the output, `UsageError` for an output that is an input or another output."""
    targets = {"output": output, "preview": preview, "uncertainty": uncertainty}
    for name, path in inputs.items():
        for option, target in targets.items():
            if target is not None and _same_file(path, target):
                raise UsageError(f"{target} is input {name!r}: writing it would destroy the input; give {{{option}}} "
                                 "another file", **{option: None})
    if preview is not None and _same_file(preview, output):
        raise UsageError(f"the preview {preview} is the output raster itself: give {{preview}} another file",
                         preview=None)
    if uncertainty is not None:
        for option, target in (("output", output), ("preview", preview)):
            if target is not None and _same_file(uncertainty, target):
                raise UsageError(f"the uncertainty map {uncertainty} is the {option} too: give {{uncertainty}} "
                                 "another file", uncertainty=None)
    check_output(output, overwrite)
    if preview is not None:
        check_preview(preview, overwrite)
    if uncertainty is not None:
        check_output(uncertainty, overwrite)


def check_uncertainty(samples: int, uncertainty: str | os.PathLike | None) -> None:
    """An uncertainty map needs at least 2 draws to have a standard deviation."""
    if uncertainty is not None and samples < 2:
        raise UsageError(f"an uncertainty map ({uncertainty}) is the standard deviation of several draws: ask for "
                         f"{{samples}} of at least 2", samples=samples)


def run(pipeline: ScenePipeline, inputs: Inputs, output: str | os.PathLike, *, tiling: Tiling | None = None,
        output_options: OutputOptions = OutputOptions(), preview: str | os.PathLike | None = None,
        progress: bool = True, command: Sequence[str] | None = None,
        uncertainty: str | os.PathLike | None = None) -> OutputSummary:
    """Run `pipeline` over the scene `inputs` (name → raster) into `output` (a GeoTIFF on the grid input's grid).

    tiling: tile size, overlap, blend and batch size (None: the pipeline's default; a whole-scene pipeline fixes its
        own; a tile larger than the scene runs as the scene, `rsinfer.scene.engine.fit_tiling`, and RSINFER_TILING
        records the tiling asked, which decides the one that ran). output_options: dtype / nodata (None: the
        pipeline's), COG, overwrite, compression. preview: also write a PNG rendering. command: the argv to record in
        RSINFER_COMMAND. uncertainty: with a pipeline that draws K ≥ 2 samples (its `samples` option), also write
        their per-band standard deviation there (the output is their mean either way). The rasters and the preview
        appear together, or none does.
    """
    inputs = check_inputs(pipeline, inputs)
    check_outputs(output, preview, inputs, output_options.overwrite, uncertainty)
    samples = getattr(pipeline.options, "samples", None)
    if uncertainty is not None and samples is None:
        raise UsageError(f"pipeline {pipeline.name!r} draws no samples, so it has no uncertainty map: drop "
                         "{uncertainty}", uncertainty=None)
    check_uncertainty(samples or 1, uncertainty)
    with gdal_environment():  # GDAL's messages while planning and writing become parts of rsinfer's errors
        rasters = {name: raster_info(path) for name, path in inputs.items()}
        asked = tiling or pipeline.default_tiling
        plan = _plan(pipeline, rasters, asked)
        check_uncertainty(plan.samples, uncertainty)
        tiling = plan.tiling or asked  # a whole-scene job runs as one tile
        options = dataclasses.replace(output_options, dtype=output_options.dtype or plan.output.dtype,
                                      nodata=plan.output.nodata if output_options.nodata is None
                                      else output_options.nodata)
        tags = provenance_tags(pipeline=pipeline.name, model=pipeline.model, weights=pipeline.weights,
                               run_tags={**pipeline.run_tags(), **plan.tags}, tiling=tiling, inputs=inputs,
                               command=command, spec=pipeline.spec.to_json())
        warn_untrained(pipeline.name, pipeline.weights)
        used = {name: path for name, path in inputs.items() if name in plan.bands}
        with OutputGroup(replace=output_options.overwrite) as outputs:
            if plan.samples == 1:
                summary = run_scene(PlannedTiles(plan, pipeline.inputs()), used, output, grid=plan.grid,
                                    bands=plan.bands, progress=progress, tiling=tiling, output_options=options,
                                    tags=tags, outputs=outputs, output_scale=plan.output.scale)
            else:
                summary = run_draws(plan, pipeline.inputs(), used, output, uncertainty, tiling=tiling,
                                    output_options=options, grid_nodata=rasters[plan.grid].nodata, tags=tags,
                                    progress=progress, outputs=outputs)
            if preview is not None:
                rendering = pipeline.preview(os.fspath(outputs.temporary_of(output)), plan)
                if rendering is not None:
                    _write_preview(outputs, preview, rendering, tags, pipeline)
            outputs.commit()
    return summary


def _plan(pipeline: ScenePipeline, rasters: Mapping[str, RasterInfo], tiling: Tiling) -> ScenePlan:
    """`pipeline.plan`, with a failure to read an input (GDAL: a truncated file) reported as bad input data."""
    try:
        return pipeline.plan(rasters, tiling)
    except OSError as err:
        if isinstance(err, (FileNotFoundError, OutputError)):
            raise
        raise read_failure(err, {name: info.path for name, info in rasters.items()}) from err


def _write_preview(outputs: OutputGroup, preview: str | os.PathLike, rendering: torch.Tensor,
                   tags: Mapping[str, str], pipeline: ScenePipeline) -> None:
    """The PNG into a temporary file of the group, moved into place with the raster."""
    try:
        write_png(outputs.temporary(preview, ".png"), rendering,
                  {k: v for k, v in tags.items() if k != "RSINFER_INPUTS"}, banner=weights_banner(pipeline.weights),
                  overwrite=True)
    except OSError as err:
        raise OutputError(f"{preview}: writing the preview failed: {err.strerror or err}") from err
