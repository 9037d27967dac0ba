"""Whole-scene reads for jobs that hold the grid in memory (e.g. latent diffusion over a few-thousand-pixel scene)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rsinfer.io import Grid, InputSpec
from rsinfer.scene.inputs import Inputs, close_all, mask_on_grid, open_inputs
from rsinfer.tiling import Window


@dataclass(frozen=True)
class SceneArrays:
    """Every input on one grid: arrays[name] (C_i, H_i, W_i) float32 (H_i = H · scale_i), masks[name] (H_i, W_i)
    bool validity, and `valid` (H, W): valid in every input (see `rsinfer.scene.tiles`). Invalid pixels are NaN."""

    arrays: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    valid: torch.Tensor
    grid: Grid


def read_scene(inputs: Inputs, grid: str | None = None, bands: Mapping[str, Sequence[int]] | None = None,
               specs: Mapping[str, InputSpec] | None = None) -> SceneArrays:
    """Read each input whole, resampled onto the grid of input `grid` (default: the first) at its spec's scale."""
    the_grid, sources = open_inputs(inputs, grid, bands, specs)
    try:
        whole = Window(0, 0, the_grid.height, the_grid.width)
        arrays, masks = {}, {}
        valid = np.ones(the_grid.shape, dtype=bool)
        for name, source in sources.items():
            values, mask = source.read(whole, the_grid.shape)
            values[:, ~mask] = np.nan
            arrays[name], masks[name] = torch.from_numpy(values), torch.from_numpy(mask)
            valid &= mask_on_grid(mask, the_grid.shape)
    finally:
        close_all(sources)
    return SceneArrays(arrays, masks, torch.from_numpy(valid), the_grid)
