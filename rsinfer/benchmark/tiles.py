"""The tiles a benchmark feeds a pipeline's tile function, made the way the scene engine makes them.

The pipeline's own plan decides everything: `pipeline.plan(raster infos, tiling)` resolves the bands, the tile
function and, for whole-scene pipelines (translate), that the tile is the whole grid. Then the inputs are opened on
the plan's grid and tiles are read by `rsinfer.scene` exactly as a scene job reads them (`read_batch`: values, masks,
joint validity, windows), so what is timed is the tile function alone, on the data a real run would give it.

Inputs: real rasters (name → path; the first tiles of the grid are read, windows of the plan's tiling) or, without
them, synthetic ones written to a temporary folder: one GeoTIFF per input, as many bands as the input's band rule
names (described by name, so band identity resolves as for a real file), a `tile`-pixel square at the input's scale,
float32 values drawn uniformly in [1, 10000) from a fixed seed (never nodata).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from rsinfer.io import Grid, raster_info, write_raster
from rsinfer.pipelines.contract import InputContract, PlannedTiles, ScenePipeline, ScenePlan
from rsinfer.scene import Tiles
from rsinfer.scene.inputs import close_all, open_inputs
from rsinfer.scene.tiles import read_batch
from rsinfer.tiling import Tiling, Window, plan_windows

SYNTHETIC_CRS = "EPSG:32631"  # UTM 31N: any projected CRS will do
SYNTHETIC_PIXEL = 10.0  # metres at scale 1
ANY_COUNT_BANDS = 3  # bands of a synthetic input whose rule takes any number


def synthetic_band_names(contract: InputContract) -> tuple[str | None, ...]:
    """Band descriptions of a synthetic file for `contract`: its first layout's bands, or unnamed bands."""
    rule = contract.bands
    if rule.layouts:
        return rule.layouts[0].bands
    return (None,) * (rule.count or ANY_COUNT_BANDS)


def write_synthetic_inputs(contracts: Sequence[InputContract], tile: int, folder: str | os.PathLike,
                           seed: int = 0) -> dict[str, str]:
    """One synthetic GeoTIFF per input (see the module docstring), all covering the same ground; name → path."""
    from affine import Affine

    rng = np.random.default_rng(seed)
    paths = {}
    for contract in contracts:
        side = math.ceil(tile * contract.scale)
        pixel = SYNTHETIC_PIXEL / contract.scale
        names = synthetic_band_names(contract)
        grid = Grid(SYNTHETIC_CRS, Affine(pixel, 0.0, 500_000.0, 0.0, -pixel, 5_000_000.0), side, side)
        values = rng.uniform(1.0, 10_000.0, size=(len(names), side, side)).astype(np.float32)
        path = Path(folder) / f"synthetic_{contract.name}.tif"
        write_raster(values, grid, path, descriptions=names, overwrite=True)
        paths[contract.name] = os.fspath(path)
    return paths


def plan_for(pipeline: ScenePipeline, inputs: Mapping[str, str], tiling: Tiling) -> ScenePlan:
    return pipeline.plan({name: raster_info(path) for name, path in inputs.items()}, tiling)


def read_tiles(pipeline: ScenePipeline, plan: ScenePlan, inputs: Mapping[str, str], tiling: Tiling,
               count: int) -> Tiles:
    """`count` tiles (the first windows of the grid, repeated when it has fewer) as the scene engine reads them; a
    whole-scene plan gets one tile, the grid's top-left tile × tile pixels."""
    used = {name: path for name, path in inputs.items() if name in plan.bands}
    specs = PlannedTiles(plan, pipeline.inputs()).input_specs
    whole_scene = plan.tiling is not None and plan.tiling.tile is None
    the_grid, sources = open_inputs(used, plan.grid, plan.bands, specs, pad_to=tiling.tile)
    try:
        if whole_scene:
            windows = [Window(0, 0, min(tiling.tile, the_grid.height), min(tiling.tile, the_grid.width))]
            count = 1
        else:
            windows = plan_windows(the_grid.height, the_grid.width, tiling.tile, tiling.overlap)
        batch = read_batch(sources, list(itertools.islice(itertools.cycle(windows), count)),
                           (tiling.tile, tiling.tile))
    finally:
        close_all(sources)
    if batch.valid.shape[0] < count:
        raise ValueError(f"only {batch.valid.shape[0]} of the first {count} tiles of the inputs have valid pixels; "
                         "pick inputs (or a window) with data")
    return Tiles({name: torch.from_numpy(a) for name, a in batch.inputs.items()},
                 {name: torch.from_numpy(m) for name, m in batch.masks.items()}, torch.from_numpy(batch.valid),
                 batch.windows(), (tiling.tile, tiling.tile))


def first(tiles: Tiles, count: int) -> Tiles:
    """The first `count` tiles of a batch."""
    return Tiles({k: v[:count] for k, v in tiles.inputs.items()}, {k: v[:count] for k, v in tiles.masks.items()},
                 tiles.valid[:count], tiles.windows[:count], tiles.shape)
