"""`run`: one scene through one pipeline — inputs checked, plan made, tiles run by the scene engine, provenance
written, preview drawn. The CLI, the Python API, the batch runner and the benchmark harness all call it."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from rsinfer.io import OutputOptions, check_output, raster_info
from rsinfer.pipelines.contract import PlannedTiles, ScenePipeline, ScenePlan
from rsinfer.pipelines.preview import write_png
from rsinfer.pipelines.provenance import provenance_tags, warn_untrained, weights_banner
from rsinfer.scene import OutputSummary, run_scene
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
        raise ValueError(f"preview {preview}: previews are PNG files; name it *.png")
    return check_output(preview, overwrite)


def run(pipeline: ScenePipeline, inputs: Inputs, output: str | os.PathLike, *, tiling: Tiling | None = None,
        output_options: OutputOptions = OutputOptions(), preview: str | os.PathLike | None = None,
        progress: bool = True, command: Sequence[str] | None = None) -> OutputSummary:
    """Run `pipeline` over the scene `inputs` (name → raster) into `output` (a GeoTIFF on the grid input's grid).

    tiling: tile size, overlap, blend and batch size (None: the pipeline's default; a whole-scene pipeline fixes its
        own). output_options: dtype / nodata (None: the pipeline's), COG, overwrite, compression. preview: also write a
        PNG rendering. command: the argv to record in RSINFER_COMMAND.
    """
    inputs = check_inputs(pipeline, inputs)
    check_output(output, output_options.overwrite)
    if preview is not None:
        check_preview(preview, output_options.overwrite)
    asked = tiling or pipeline.default_tiling
    plan: ScenePlan = pipeline.plan({name: raster_info(path) for name, path in inputs.items()}, asked)
    tiling = plan.tiling or asked  # a whole-scene job runs as one tile
    options = dataclasses.replace(output_options, dtype=output_options.dtype or plan.output.dtype,
                                  nodata=plan.output.nodata if output_options.nodata is None
                                  else output_options.nodata)
    tags = provenance_tags(pipeline=pipeline.name, model=pipeline.model, weights=pipeline.weights,
                           run_tags={**pipeline.run_tags(), **plan.tags}, tiling=tiling, inputs=inputs, command=command)
    warn_untrained(pipeline.name, pipeline.weights)
    used = {name: path for name, path in inputs.items() if name in plan.bands}
    summary = run_scene(PlannedTiles(plan, pipeline.inputs()), used, output, grid=plan.grid, bands=plan.bands,
                        progress=progress, tiling=tiling, output_options=options, tags=tags)
    if preview is not None:
        rendering = pipeline.preview(os.fspath(output), plan)
        if rendering is not None:
            write_png(preview, rendering, {k: v for k, v in tags.items() if k != "RSINFER_INPUTS"},
                      banner=weights_banner(pipeline.weights), overwrite=output_options.overwrite)
    return summary
