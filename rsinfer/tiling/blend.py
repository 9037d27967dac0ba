"""Blending weights: how much each pixel of a tile counts where overlapping tiles are averaged.

Overlapping tiles are fused by weighted overlap-add normalised by the accumulated weight
(out = Σ wᵢ·yᵢ / Σ wᵢ, see `rsinfer.tiling.merge`), so weights need not sum to one; they only shape the seams:

- ``"constant"``: 1 everywhere (plain averaging of the overlap).
- ``"cosine"``: a raised-cosine (Hann) ramp sin²(π/2 · (i + ½)/overlap) over the `overlap` pixels next to each edge, 1
  inside. Two tiles overlapping by exactly `overlap` pixels sum to one there (a partition of unity).
- ``"gaussian"``: exp(−d²/2σ²) with σ = tile/8 per axis (MONAI's importance map), clamped to ≥ 1e-3.
- ``"crop"``: 1 inside, 0 in a margin of overlap // 2 pixels next to each edge: each output pixel comes from tiles that
  saw at least overlap // 2 pixels of context on every side, so a model whose receptive field reaches r ≤ overlap // 2
  pixels gives exactly the whole-scene result (rastervision's crop stitching).

Edges of a tile that lie on the grid border (`grid_edges`) have no neighbour beyond them: there is no fade or margin
towards them, so border pixels keep full weight. Weights are strictly positive wherever the tile contributes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from typing import Literal, get_args

import torch

from rsinfer.tiling.names import BlendMode
from rsinfer.tiling.windows import Window

Edge = Literal["top", "bottom", "left", "right"]

_GAUSSIAN_SIGMA = 0.125  # σ as a fraction of the tile edge (MONAI's sigma_scale)
_GAUSSIAN_FLOOR = 1e-3  # keeps the weight strictly positive at the tile corners


def _cosine_ramp(distance: torch.Tensor, overlap: int) -> torch.Tensor:
    """sin²(π/2 · (d + ½)/overlap) for pixels at distance d < overlap from the edge, 1 beyond."""
    return torch.where(distance < overlap, torch.sin(math.pi / 2 * (distance + 0.5) / overlap) ** 2, 1.0)


def _profile(n: int, overlap: int, mode: str, fade_start: bool, fade_end: bool) -> torch.Tensor:
    """1-D weight profile of length n (float64), fading towards the ends marked to fade."""
    i = torch.arange(n, dtype=torch.float64)
    if mode == "constant" or (overlap == 0 and mode in ("cosine", "crop")):
        return torch.ones(n, dtype=torch.float64)
    if mode == "cosine":
        up = _cosine_ramp(i, overlap) if fade_start else torch.ones(n, dtype=torch.float64)
        down = _cosine_ramp(n - 1 - i, overlap) if fade_end else torch.ones(n, dtype=torch.float64)
        return torch.minimum(up, down)
    if mode == "gaussian":
        centre, sigma = (n - 1) / 2, _GAUSSIAN_SIGMA * n
        weight = torch.exp(-((i - centre) ** 2) / (2 * sigma**2)).clamp_min(_GAUSSIAN_FLOOR)
        # no fade towards a grid-border edge: hold the peak from the centre to that edge
        if not fade_start:
            weight = torch.where(i <= centre, 1.0, weight)
        if not fade_end:
            weight = torch.where(i >= centre, 1.0, weight)
        return weight
    margin = overlap // 2  # crop
    keep = torch.ones(n, dtype=torch.float64)
    if fade_start:
        keep[:margin] = 0
    if fade_end:
        keep[n - margin:] = 0
    if not keep.any():
        raise ValueError(f"crop margin {margin} on both sides leaves nothing of a {n}-pixel tile; lower the overlap")
    return keep


@functools.lru_cache(maxsize=64)
def _weights(height: int, width: int, overlap: int, mode: str, grid_edges: frozenset[str]) -> torch.Tensor:
    rows = _profile(height, overlap, mode, "top" not in grid_edges, "bottom" not in grid_edges)
    cols = _profile(width, overlap, mode, "left" not in grid_edges, "right" not in grid_edges)
    weight = (rows[:, None] * cols[None, :]).float()  # (height, width)
    weight.requires_grad_(False)
    return weight


def blend_weights(height: int, width: int, overlap: int, mode: BlendMode,
                  grid_edges: Iterable[Edge] = ()) -> torch.Tensor:
    """The (height, width) float32 CPU weight map of one tile; cached, so treat it as read-only.

    `grid_edges` names the tile's edges that lie on the grid border (no fade towards them); `tile_weights` works
    them out from a window. Default: an interior tile, fading on all four sides.
    """
    if mode not in get_args(BlendMode):
        raise ValueError(f"unknown blend mode {mode!r}; choose one of {get_args(BlendMode)}")
    if height <= 0 or width <= 0:
        raise ValueError(f"tile must be non-empty, got {height}x{width}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    edges = frozenset(grid_edges)
    if not edges <= set(get_args(Edge)):
        raise ValueError(f"unknown grid edges {sorted(edges - set(get_args(Edge)))}; allowed: {get_args(Edge)}")
    return _weights(height, width, overlap, mode, edges)


def grid_edges_of(window: Window, height: int, width: int) -> frozenset[Edge]:
    """Which edges of `window` lie on the border of a height × width grid."""
    found: set[Edge] = set()
    if window.row == 0:
        found.add("top")
    if window.bottom >= height:
        found.add("bottom")
    if window.col == 0:
        found.add("left")
    if window.right >= width:
        found.add("right")
    return frozenset(found)


def tile_weights(window: Window, height: int, width: int, overlap: int, mode: BlendMode,
                 tile_shape: tuple[int, int] | None = None) -> torch.Tensor:
    """`blend_weights` for `window` of a height × width grid, not fading towards the grid border.

    `tile_shape` (default: the window's own size) is the size of the tile actually produced, e.g. a padded tile.
    """
    h, w = tile_shape if tile_shape is not None else (window.height, window.width)
    return blend_weights(h, w, overlap, mode, grid_edges_of(window, height, width))
