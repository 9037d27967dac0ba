"""Mergers: weighted overlap-add of tiles, normalised by the accumulated weight (out = Σ wᵢ·yᵢ / Σ wᵢ).

Both mergers add through `rsinfer.ops.accumulate`, so the backend table decides how the overlap-add runs.

- `TensorMerger` / `blend_tiles`: the whole canvas in memory (latent tiles fused at every denoising step, small scenes).
- `BlockMerger`: streaming; holds only the output cells (256 × 256 blocks) that tiles still touch and hands each one
  back as soon as the last tile touching it is done, so memory does not grow with the scene (the scene engine writes
  each block as soon as it is final).

Pixels that no tile covered with a positive weight come out as NaN (`TensorMerger.result(empty=...)` picks another
value).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from rsinfer.ops import accumulate
from rsinfer.tiling.windows import Window


def _normalise(canvas: torch.Tensor, weight: torch.Tensor, empty: float) -> torch.Tensor:
    covered = weight > 0  # (H, W)
    values = canvas / torch.where(covered, weight, 1.0)  # (C, H, W)
    return values.masked_fill_(~covered, empty)


class TensorMerger:
    """Accumulates (C, h, w) tiles into a (C, height, width) float32 canvas; `result()` normalises."""

    def __init__(self, channels: int, height: int, width: int, device: torch.device | str = "cpu") -> None:
        self.canvas = torch.zeros(channels, height, width, dtype=torch.float32, device=device)
        self.weight = torch.zeros(height, width, dtype=torch.float32, device=device)

    def add(self, tile: torch.Tensor, window: Window, weight: torch.Tensor) -> None:
        """Add `tile` (C, window.height, window.width) with `weight` (window.height, window.width) at `window`."""
        accumulate(self.canvas, self.weight, tile, weight.to(self.weight.device), window.row, window.col)

    def result(self, empty: float = float("nan")) -> torch.Tensor:
        """The (C, height, width) blend; uncovered pixels are `empty`."""
        return _normalise(self.canvas, self.weight, empty)


def blend_tiles(tiles: torch.Tensor | Sequence[torch.Tensor], windows: Sequence[Window], height: int, width: int,
                weights: torch.Tensor | Sequence[torch.Tensor], empty: float = float("nan")) -> torch.Tensor:
    """Fuse tiles (N, C, h, w) placed at `windows` into one (C, height, width) tensor by normalised overlap-add.

    `weights` is one (h, w) map for every tile, or one map per tile (e.g. from `tile_weights`, which does not fade
    towards the grid border). Pixels no tile covers are `empty`.
    """
    if len(tiles) != len(windows):
        raise ValueError(f"got {len(tiles)} tiles for {len(windows)} windows")
    if len(tiles) == 0:
        raise ValueError("blend_tiles needs at least one tile")
    per_tile = [weights] * len(windows) if isinstance(weights, torch.Tensor) else list(weights)
    if len(per_tile) != len(windows):
        raise ValueError(f"got {len(per_tile)} weight maps for {len(windows)} windows")
    merger = TensorMerger(tiles[0].shape[0], height, width, device=tiles[0].device)
    for tile, window, weight in zip(tiles, windows, per_tile):
        merger.add(tile, window, weight)
    return merger.result(empty)


@dataclass(frozen=True)
class FinishedBlock:
    """A finished cell of the merged output: values (C, h, w) at `window`, NaN where no tile gave weight."""

    window: Window
    values: torch.Tensor


class BlockMerger:
    """Streaming merger: the (C, height, width) output is cut into `block` × `block` cells; a cell accumulates while
    the tiles touching it arrive and is handed back, normalised, as soon as the last of them was added or skipped.

    Correct for tiles in any order; the order decides the memory held (only touched, unfinished cells live). In the
    row-major order of `plan_windows` that is about one row of cells across the scene width (measured: 33 live cells
    at most on an 8192² scene, tile 256, overlap 32, 256-pixel cells). Cells align with the output file's blocks, so
    each block is written once, complete.
    """

    def __init__(self, channels: int, height: int, width: int, windows: Sequence[Window], block: int = 256) -> None:
        self.channels, self.height, self.width, self.block = channels, height, width, block
        self._remaining: dict[tuple[int, int], int] = {}  # cell → tiles still to come
        for window in windows:
            if window.bottom > height or window.right > width:
                raise ValueError(f"{window} does not fit in a {height}x{width} output")
            for cell in self._cells(window):
                self._remaining[cell] = self._remaining.get(cell, 0) + 1
        self._live: dict[tuple[int, int], torch.Tensor] = {}  # cell → (C + 1, h, w): C channels, then the weight

    @property
    def nbytes(self) -> int:
        return sum(buffer.nbytes for buffer in self._live.values())

    @property
    def pending_cells(self) -> int:
        return len(self._remaining)

    def _cells(self, window: Window) -> list[tuple[int, int]]:
        b = self.block
        return [(i, j) for i in range(window.row // b, (window.bottom - 1) // b + 1)
                for j in range(window.col // b, (window.right - 1) // b + 1)]

    def _cell_window(self, cell: tuple[int, int]) -> Window:
        row, col = cell[0] * self.block, cell[1] * self.block
        return Window(row, col, min(self.block, self.height - row), min(self.block, self.width - col))

    def _finish_one(self, cell: tuple[int, int]) -> FinishedBlock | None:
        if cell not in self._remaining:
            raise ValueError(f"cell {cell} was already finished: a window was added twice or is not in the plan")
        self._remaining[cell] -= 1
        if self._remaining[cell]:
            return None
        del self._remaining[cell]
        window = self._cell_window(cell)
        buffer = self._live.pop(cell, None)
        if buffer is None:  # every tile touching it was skipped
            return FinishedBlock(window, torch.full((self.channels, window.height, window.width), float("nan")))
        # one op, in place: the buffer becomes the block's values, and 0/0 = NaN where no tile gave weight
        return FinishedBlock(window, buffer[:self.channels].div_(buffer[self.channels]))

    def add(self, tile: torch.Tensor, window: Window, weight: torch.Tensor) -> list[FinishedBlock]:
        """Accumulate `tile` (C, window.height, window.width) with `weight`; returns the cells this finished."""
        finished = []
        for cell in self._cells(window):
            target = self._cell_window(cell)
            buffer = self._live.get(cell)
            if buffer is None:
                buffer = self._live[cell] = torch.zeros(self.channels + 1, target.height, target.width)
            canvas, weight_sum = buffer[:self.channels], buffer[self.channels]
            top, bottom = max(target.row, window.row), min(target.bottom, window.bottom)
            left, right = max(target.col, window.col), min(target.right, window.right)
            rows, cols = slice(top - window.row, bottom - window.row), slice(left - window.col, right - window.col)
            accumulate(canvas, weight_sum, tile[:, rows, cols], weight[rows, cols], top - target.row,
                       left - target.col)
            done = self._finish_one(cell)
            finished += [done] if done is not None else []
        return finished

    def skip(self, window: Window) -> list[FinishedBlock]:
        """Count `window` as done without values (an all-nodata tile); returns the cells this finished."""
        return [done for done in map(self._finish_one, self._cells(window)) if done is not None]
