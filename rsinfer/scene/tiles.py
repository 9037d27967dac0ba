"""Reading one tile of every input: values, the joint validity mask, and the fill that `fn` sees.

A pixel of the output grid is valid when it is valid in every input (see `rsinfer.io.source`; inputs read at
another scale contribute their mask resized by nearest neighbour). Tiles with no valid pixel are not run. In a partly
invalid tile, each input's invalid pixels are filled with the mean of that band over the tile's valid pixels (a
neutral value that keeps convolutions near the hole calm; 0 when a band has no valid pixel there), and the output is
masked there afterwards, so the fill never reaches the written raster.

With an output grid f times coarser than the grid input's (`read_batch(..., factor=f)`), windows and tile shape are
on the output grid, every input is read over f times their size, and an output pixel is valid when any pixel of its
f × f cell is valid (`coarse_any`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rsinfer.io import RasterSource
from rsinfer.scene.inputs import mask_on_grid
from rsinfer.tiling import Window


@dataclass(frozen=True)
class Tiles:
    """What a `TileFunction` gets for one batch of tiles.

    inputs: name → (B, C_i, h_i, w_i) float32, invalid pixels filled (see the module docstring);
    masks: name → (B, h_i, w_i) bool, each input's own validity at its own scale;
    valid: (B, h, w) bool, the joint validity on the output grid (the output is nodata where it is False; on a
        coarser output grid, a pixel whose cell holds any jointly valid input pixel);
    windows: the B windows on the output grid (a window is smaller than the tile only when the scene is, and the
        tensors are then padded below and to the right);
    shape: (h, w), the tile size on the output grid (inputs are read over `factor` times that on a coarser grid).
    """

    inputs: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    valid: torch.Tensor
    windows: tuple[Window, ...]
    shape: tuple[int, int]


class TileFunction(ABC):
    """A scene function that also needs each tile's place: `run_scene` calls it with `Tiles` instead of a dict.

    Window-seeded randomness (`rsinfer.tiling.noise`) and whole-scene jobs use it. Optional attributes as for a plain
    fn: `input_specs`, `band_descriptions`, `output_tags`, `out_channels`.
    """

    @abstractmethod
    def __call__(self, tiles: Tiles) -> torch.Tensor:
        """(B, C_out, h, w) on the output grid."""


@dataclass
class TileBatch:
    """Consecutive windows (row-major) and the stacked inputs of those that run.

    `entries[i]` is (window, index into the batch) or (window, None) for a skipped, all-nodata window.
    """

    entries: list[tuple[Window, int | None]]
    inputs: dict[str, np.ndarray]  # name → (B, C_i, h_i, w_i) float32
    masks: dict[str, np.ndarray]  # name → (B, h_i, w_i) bool
    valid: np.ndarray  # (B, h, w) bool, on the output grid

    @property
    def nbytes(self) -> int:
        return (sum(a.nbytes for a in self.inputs.values()) + sum(m.nbytes for m in self.masks.values())
                + self.valid.nbytes)

    def windows(self) -> tuple[Window, ...]:
        """The windows of the tiles that run, in batch order."""
        return tuple(window for window, index in self.entries if index is not None)


def fill_invalid(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Replace invalid pixels of values (C, h, w) by each band's mean over the valid pixels (0 if none), in place."""
    if valid.all():
        return values
    count = int(valid.sum())
    for band in values:
        band[~valid] = band[valid].mean(dtype=np.float64) if count else 0.0
    return values


def coarse_any(valid: np.ndarray, factor: int) -> np.ndarray:
    """(h·f, w·f) validity → (h, w): a cell is valid when any of its f × f pixels is."""
    if factor == 1:
        return valid
    h, w = valid.shape[0] // factor, valid.shape[1] // factor
    return valid.reshape(h, factor, w, factor).any(axis=(1, 3))


def read_batch(sources: Mapping[str, RasterSource], windows: Sequence[Window], shape: tuple[int, int],
               factor: int = 1) -> TileBatch:
    """Read `windows` as tiles of `shape` (h, w) (padded past the grid as invalid), skipping all-invalid ones.

    `factor`: windows and shape are on an output grid `factor` times coarser than the grid the sources are read on;
    each tile is read over (h·factor, w·factor) pixels from (row·factor, col·factor), `valid` is `coarse_any` of the
    joint validity, and the entries keep the output-grid windows.
    """
    entries: list[tuple[Window, int | None]] = []
    stacks: dict[str, list[np.ndarray]] = {name: [] for name in sources}
    input_masks: dict[str, list[np.ndarray]] = {name: [] for name in sources}
    masks: list[np.ndarray] = []
    read_shape = (shape[0] * factor, shape[1] * factor)
    for window in windows:
        footprint = Window(window.row * factor, window.col * factor, window.height * factor, window.width * factor)
        reads = {name: source.read(footprint, read_shape) for name, source in sources.items()}
        joint = np.ones(read_shape, dtype=bool)
        for _, mask in reads.values():
            joint &= mask_on_grid(mask, read_shape)
        valid = coarse_any(joint, factor)
        if not valid.any():
            entries.append((window, None))
            continue
        entries.append((window, len(masks)))
        masks.append(valid)
        for name, (values, mask) in reads.items():
            stacks[name].append(fill_invalid(values, mask))
            input_masks[name].append(mask)
    inputs = {name: np.stack(stack) for name, stack in stacks.items() if stack}
    input_mask_arrays = {name: np.stack(stack) for name, stack in input_masks.items() if stack}
    valid = np.stack(masks) if masks else np.zeros((0, *shape), dtype=bool)
    return TileBatch(entries, inputs, input_mask_arrays, valid)
