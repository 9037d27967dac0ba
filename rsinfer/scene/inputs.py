"""Opening a job's inputs on one grid: which input defines the grid, band subsets, per-input specs from `fn`.

`fn.input_specs` (optional) maps input names to `InputSpec(scale, resampling)`; inputs it does not name are read at
the output grid's resolution with bilinear resampling. Example, pansharpening with a 4x coarser multispectral input::

    def fuse(batch):  # batch["pan"]: (B, 1, 256, 256), batch["ms"]: (B, 4, 64, 64)
        ...
    fuse.input_specs = {"ms": InputSpec(scale=0.25), "labels": InputSpec(resampling="nearest")}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from rsinfer.io import Grid, InputSpec, RasterLike, RasterSource, grid_of, open_raster

Inputs = Mapping[str, RasterLike]


def input_specs_of(fn: Callable, names: Sequence[str]) -> dict[str, InputSpec]:
    """Every input's spec: from `fn.input_specs` where given, else `InputSpec()`."""
    declared = getattr(fn, "input_specs", None) or {}
    unknown = sorted(set(declared) - set(names))
    if unknown:
        raise ValueError(f"fn.input_specs names inputs {unknown} that are not among the inputs {list(names)}")
    for name, spec in declared.items():
        if not isinstance(spec, InputSpec):
            raise TypeError(f"fn.input_specs[{name!r}] must be an InputSpec, got {type(spec).__name__}")
    return {name: declared.get(name, InputSpec()) for name in names}


def open_inputs(inputs: Inputs, grid: str | None = None, bands: Mapping[str, Sequence[int]] | None = None,
                specs: Mapping[str, InputSpec] | None = None,
                pad_to: int | None = None) -> tuple[Grid, dict[str, RasterSource]]:
    """The grid of input `grid` (default: the first) and every input opened on it.

    `pad_to`: reads may extend the grid up to that many pixels per axis (scenes smaller than one tile are padded).
    """
    if not inputs:
        raise ValueError("no inputs: pass at least one {name: path}")
    grid_name = next(iter(inputs)) if grid is None else grid
    if grid_name not in inputs:
        raise ValueError(f"grid {grid_name!r} is not one of the inputs {list(inputs)}")
    bands = dict(bands or {})
    unknown = sorted(set(bands) - set(inputs))
    if unknown:
        raise ValueError(f"bands given for {unknown}, which are not among the inputs {list(inputs)}")
    specs = dict(specs or {})
    grid_dataset = open_raster(inputs[grid_name])
    try:
        the_grid = grid_of(grid_dataset, bands.get(grid_name))
    finally:
        if grid_dataset is not inputs[grid_name]:
            grid_dataset.close()
    extent = None if pad_to is None else (max(the_grid.height, pad_to), max(the_grid.width, pad_to))
    sources: dict[str, RasterSource] = {}
    try:
        for name, source in inputs.items():
            sources[name] = RasterSource(source, the_grid, bands.get(name), specs.get(name, InputSpec()), extent)
    except BaseException:
        close_all(sources)
        raise
    return the_grid, sources


def close_all(sources: Mapping[str, RasterSource]) -> None:
    for source in sources.values():
        source.close()


def check_tile_scales(specs: Mapping[str, InputSpec], tile: int) -> None:
    """Each input's tile must be a whole number of its own pixels."""
    for name, spec in specs.items():
        pixels = tile * spec.scale
        if not math.isclose(pixels, round(pixels), abs_tol=1e-9):
            raise ValueError(f"tile {tile} at input {name!r}'s scale {spec.scale} is {pixels:g} pixels, not a whole "
                             f"number; pick a tile that is a multiple of {round(1 / spec.scale)}")


def mask_on_grid(valid: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a validity mask read at another scale onto `shape` output pixels."""
    if valid.shape == shape:
        return valid
    rows = np.minimum((np.arange(shape[0]) * valid.shape[0]) // shape[0], valid.shape[0] - 1)
    cols = np.minimum((np.arange(shape[1]) * valid.shape[1]) // shape[1], valid.shape[1] - 1)
    return valid[np.ix_(rows, cols)]
