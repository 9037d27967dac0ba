"""K stochastic draws of one scene: their per-pixel mean is the output, their per-band standard deviation an
uncertainty map on the same grid.

A pipeline whose `samples` option asks for K > 1 draws plans a tile function that returns all of them side by side,
(B, K·C, h, w) draw-major (`stack_draws`), and says so in `ScenePlan.samples`. Draw k is the pipeline's single run with
seed + k: its noise is window-seeded (`rsinfer.tiling.noise`), so it does not depend on the batch size, the tile order
or the number of workers, and K = 1 is the plain run. The runner (`run_draws`) then

1. runs the scene engine once into a temporary float32 raster of K·C bands beside the output, so that every draw is
   blended across tile overlaps exactly as its single run would be;
2. reads it back block by block and writes, in float64 arithmetic over the K draws x_k of each pixel and band,

       mean = (1/K)·Σ x_k                                  → the output (its dtype, nodata, COG or not)
       std  = sqrt(Σ (x_k − mean)² / (K − 1))              → the uncertainty map (float32, NaN nodata)

   (the sample standard deviation, numpy's ``ddof=1``), both with the output's band names and provenance tags plus
   ``RSINFER_SAMPLES`` = K and ``RSINFER_STATISTIC``, into the job's `OutputGroup`: they appear together with the
   preview, or none of them does. The temporary raster is removed in every case.

So the two rasters equal K separate float32 runs with seeds seed … seed + K − 1 combined with numpy. The cost is K
network passes, a temporary raster of K·C float32 bands (zstd-compressed) and, in the scene engine, K times the
channels of a plain run per tile batch and per row of output blocks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from rsinfer.errors import UsageError
from rsinfer.files import OutputGroup, TemporaryFile
from rsinfer.io import BLOCK, OutputOptions, RasterWriter, grid_of, open_raster, output_nodata
from rsinfer.pipelines.contract import InputContract, PlannedTiles, ScenePlan
from rsinfer.scene import OutputSummary, run_scene
from rsinfer.tiling import Tiling, Window

MAX_SAMPLES = 64
MEAN = "mean of RSINFER_SAMPLES draws (seeds RSINFER_SEED, RSINFER_SEED + 1, ...)"
STD = ("per-band standard deviation of RSINFER_SAMPLES draws (ddof=1: divided by K - 1), in the units of the output's "
       "values")


def check_samples(samples: object) -> int:
    """`samples`, an integer in 1..MAX_SAMPLES; anything else is a UsageError naming it."""
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= MAX_SAMPLES:
        raise UsageError(f"{{samples}}: the number of draws must be an integer in 1..{MAX_SAMPLES}", samples=samples)
    return samples


def stack_draws(draw: Callable[[int], torch.Tensor], samples: int) -> torch.Tensor:
    """(B, samples·C, h, w): `draw(k)` (B, C, h, w) for k = 0 … samples − 1, draw-major along the channels."""
    return torch.cat([draw(k) for k in range(samples)], dim=1)


class DrawTiles(PlannedTiles):
    """A plan's tile function whose output is every draw: K·C channels, named "<band> draw <k>"."""

    def __init__(self, plan: ScenePlan, inputs: tuple[InputContract, ...]) -> None:
        super().__init__(plan, inputs)
        self.band_descriptions = tuple(f"{band} draw {k}" for k in range(plan.samples) for band in plan.output.bands)
        self.out_channels = len(self.band_descriptions)


def run_draws(plan: ScenePlan, contracts: tuple[InputContract, ...], inputs: Mapping[str, str | os.PathLike],
              output: str | os.PathLike, uncertainty: str | os.PathLike | None, *, tiling: Tiling,
              output_options: OutputOptions, grid_nodata: float | None, tags: Mapping[str, str], progress: bool,
              outputs: OutputGroup) -> OutputSummary:
    """The plan's K draws through the scene engine, then their mean into `output` and, when given, their standard
    deviation into `uncertainty`, both handed to `outputs` (see the module docstring). `output_options` as the plain
    run would write the output (dtype and nodata resolved or None); `grid_nodata`: the nodata of the grid input."""
    draw_options = OutputOptions(dtype="float32", nodata=float("nan"), overwrite=True)
    with TemporaryFile(output, ".draws.tif", replace=True) as draws:
        summary = run_scene(DrawTiles(plan, contracts), inputs, draws.path, grid=plan.grid, bands=plan.bands,
                            progress=progress, tiling=tiling, output_options=draw_options,
                            output_scale=plan.output.scale)
        write_statistics(draws.path, plan.samples, plan.output.bands, output, uncertainty, output_options,
                         grid_nodata, tags, outputs)
    _, height, width = summary.shape
    return dataclasses.replace(summary, path=Path(output), shape=(len(plan.output.bands), height, width))


def write_statistics(draws: str | os.PathLike, samples: int, bands: tuple[str, ...], output: str | os.PathLike,
                     uncertainty: str | os.PathLike | None, output_options: OutputOptions, grid_nodata: float | None,
                     tags: Mapping[str, str], outputs: OutputGroup) -> None:
    """Mean (and std) of the `samples` × len(bands) band raster `draws`, block by block, into the group."""
    with contextlib.ExitStack() as stack:
        dataset = open_raster(draws)
        stack.callback(dataset.close)
        grid = dataclasses.replace(grid_of(dataset), nodata=grid_nodata)
        dtype = output_options.dtype or "float32"
        common = {**tags, "RSINFER_SAMPLES": str(samples)}
        mean_tags = {**common, "RSINFER_STATISTIC": MEAN}
        if uncertainty is not None:
            mean_tags["RSINFER_UNCERTAINTY"] = Path(uncertainty).name
        mean = stack.enter_context(RasterWriter(
            output, grid, len(bands), dtype, output_nodata(output_options.nodata, grid, dtype), bands, mean_tags,
            output_options.cog, output_options.overwrite, output_options.compress))
        std = None if uncertainty is None else stack.enter_context(RasterWriter(
            uncertainty, grid, len(bands), "float32", float("nan"), bands,
            {**common, "RSINFER_STATISTIC": STD, "RSINFER_MEAN": Path(output).name}, output_options.cog,
            output_options.overwrite, output_options.compress))
        for window in _blocks(grid.height, grid.width):
            values = dataset.read(window=((window.row, window.bottom), (window.col, window.right)))
            values = values.reshape(samples, len(bands), window.height, window.width).astype(np.float64)
            mean.write(values.mean(axis=0), window)  # (C, h, w)
            if std is not None:
                std.write(values.std(axis=0, ddof=1), window)
        for writer in (mean, std):
            if writer is not None:
                writer.commit(outputs)


def _blocks(height: int, width: int) -> list[Window]:
    """The BLOCK × BLOCK windows covering a height × width grid, row by row (clipped at its edges)."""
    return [Window(row, col, min(BLOCK, height - row), min(BLOCK, width - col))
            for row in range(0, height, BLOCK) for col in range(0, width, BLOCK)]
