"""Reading one tile of every input: values, the joint validity mask, and the fill that `fn` sees.

A pixel of the output grid is valid when it is valid in every input (see `rsinfer.io.source`; inputs read at
another scale contribute their mask resized by nearest neighbour). Tiles with no valid pixel are not run. In a partly
invalid tile, each input's invalid pixels are filled with the mean of that band over the tile's valid pixels (a
neutral value that keeps convolutions near the hole calm; 0 when a band has no valid pixel there), and the output is
masked there afterwards, so the fill never reaches the written raster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rsinfer.io import RasterSource
from rsinfer.scene.inputs import mask_on_grid
from rsinfer.tiling import Window


@dataclass
class TileBatch:
    """Consecutive windows (row-major) and the stacked inputs of those that run.

    `entries[i]` is (window, index into the batch) or (window, None) for a skipped, all-nodata window.
    """

    entries: list[tuple[Window, int | None]]
    inputs: dict[str, np.ndarray]  # name → (B, C_i, h_i, w_i) float32
    valid: np.ndarray  # (B, tile, tile) bool, on the output grid

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.inputs.values()) + self.valid.nbytes


def fill_invalid(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Replace invalid pixels of values (C, h, w) by each band's mean over the valid pixels (0 if none), in place."""
    if valid.all():
        return values
    count = int(valid.sum())
    for band in values:
        band[~valid] = band[valid].mean(dtype=np.float64) if count else 0.0
    return values


def read_batch(sources: Mapping[str, RasterSource], windows: Sequence[Window], tile: int) -> TileBatch:
    """Read `windows` as tile × tile tiles (padded past the grid as invalid), skipping all-invalid ones."""
    entries: list[tuple[Window, int | None]] = []
    stacks: dict[str, list[np.ndarray]] = {name: [] for name in sources}
    masks: list[np.ndarray] = []
    for window in windows:
        reads = {name: source.read(window, (tile, tile)) for name, source in sources.items()}
        valid = np.ones((tile, tile), dtype=bool)
        for _, mask in reads.values():
            valid &= mask_on_grid(mask, (tile, tile))
        if not valid.any():
            entries.append((window, None))
            continue
        entries.append((window, len(masks)))
        masks.append(valid)
        for name, (values, mask) in reads.items():
            stacks[name].append(fill_invalid(values, mask))
    inputs = {name: np.stack(stack) for name, stack in stacks.items() if stack}
    valid = np.stack(masks) if masks else np.zeros((0, tile, tile), dtype=bool)
    return TileBatch(entries, inputs, valid)
