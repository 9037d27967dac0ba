"""Noise anchored to the output grid: every random draw is a pure function of (seed, stream, step, grid position).

A stochastic pipeline that drew its noise from one generator advancing tile by tile would give results that depend on
tile order, batch size, which nodata tiles were skipped and how many workers shared the scene. Here the grid is cut
into fixed `NOISE_BLOCK` × `NOISE_BLOCK` blocks; block (i, j) of stream `stream` at step `step` is drawn from its
own generator, seeded by a hash of (seed, stream, step, i, j). A tile's noise is the crop of that field under its
window, so:

- a run is bit-identical for any batch size, tile order, skipped tiles or number of workers;
- overlapping tiles see the *same* noise where they overlap, so blending averages agreeing draws instead of
  shrinking the variance of independent ones.

`grid_noise(seed, stream, step, window, channels)` → (channels, h, w); `batch_noise(..., windows, ...)` stacks one
per window. Inputs on a coarser or finer grid than the output (a latent at 1/8, an MS image at 1/4) pass `scale`:
the field is then laid on that grid, and the window is mapped onto it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import torch

from rsinfer.tiling.windows import Window

NOISE_BLOCK = 64  # side of the independently seeded blocks, in pixels of the grid the noise lies on


def block_seed(seed: int, stream: str, step: int, block_row: int, block_col: int) -> int:
    """The 63-bit generator seed of one noise block (BLAKE2b of the five coordinates)."""
    key = f"{int(seed)}|{stream}|{int(step)}|{int(block_row)}|{int(block_col)}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


def _block(seed: int, stream: str, step: int, row: int, col: int, channels: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(block_seed(seed, stream, step, row, col))
    return torch.randn((channels, NOISE_BLOCK, NOISE_BLOCK), generator=generator)


def grid_noise(seed: int, stream: str, step: int, window: Window, channels: int, scale: float = 1.0) -> torch.Tensor:
    """Standard normal noise (channels, h, w) under `window` of the output grid, on the grid at `scale` (h = the
    window height · scale, rounded); the same (seed, stream, step) always gives the same value at a grid pixel."""
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    top, left = round(window.row * scale), round(window.col * scale)
    height, width = round(window.height * scale), round(window.width * scale)
    out = torch.empty((channels, height, width))
    for block_row in range(top // NOISE_BLOCK, (top + height - 1) // NOISE_BLOCK + 1):
        for block_col in range(left // NOISE_BLOCK, (left + width - 1) // NOISE_BLOCK + 1):
            block = _block(seed, stream, step, block_row, block_col, channels)
            r0, c0 = block_row * NOISE_BLOCK, block_col * NOISE_BLOCK  # block origin on the grid
            rows = slice(max(top, r0), min(top + height, r0 + NOISE_BLOCK))
            cols = slice(max(left, c0), min(left + width, c0 + NOISE_BLOCK))
            out[:, rows.start - top:rows.stop - top, cols.start - left:cols.stop - left] = \
                block[:, rows.start - r0:rows.stop - r0, cols.start - c0:cols.stop - c0]
    return out


def batch_noise(seed: int, stream: str, step: int, windows: Sequence[Window], channels: int,
                size: tuple[int, int] | None = None, scale: float = 1.0) -> torch.Tensor:
    """(len(windows), channels, h, w): `grid_noise` under each window. `size` (height, width) in output-grid pixels
    replaces the windows' own sizes: a scene smaller than the tile is padded to the tile, and its noise continues the
    field below and to the right of the grid."""
    if size is not None:
        windows = [Window(w.row, w.col, *size) for w in windows]
    return torch.stack([grid_noise(seed, stream, step, w, channels, scale) for w in windows])
