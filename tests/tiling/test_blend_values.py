"""Blend weights by value, from the formulas in `rsinfer.tiling.blend`'s docstring, and blending checked against an
overlap-add written out here (no `blend_tiles`/`tile_weights` in the expectations).

Positivity and partition of unity hold for any ramp; these values pin the ramp down. A tile of n pixels along an axis,
overlap o, pixel i (0-based) at distance d = i from its start edge and d = n − 1 − i from its end edge:

    cosine    sin²(π/2 · (d + ½)/o) for d < o, else 1; the smaller of the two edges' ramps
    gaussian  max(exp(−(i − (n − 1)/2)² / 2σ²), 1e-3) with σ = n/8
    constant  1
    crop      0 for d < o // 2, else 1

An edge on the grid border does not fade (gaussian: 1 from the centre to that edge); 2-D weights are the product of
the row and column profiles.
"""

from __future__ import annotations

import math

import pytest
import torch

from rsinfer.tiling import Window, blend_tiles, blend_weights, tile_weights

MODES = ("cosine", "gaussian", "constant", "crop")

# sin²(π/2 · (d + ½)/4) for d = 0..3, i.e. sin² of π/16, 3π/16, 5π/16, 7π/16 = (1 − cos(π/8 · (2d + 1)))/2
COSINE_RAMP_4 = [0.03806023374435662, 0.3086582838174551, 0.6913417161825449, 0.9619397662556434]


def _close(actual: torch.Tensor, expected: list[float] | float) -> None:
    torch.testing.assert_close(actual.double(), torch.tensor(expected, dtype=torch.float64).expand(actual.shape),
                               rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------------------------------------ values by hand

def test_cosine_ramp_values() -> None:
    # One row (top and bottom on the grid border, so rows do not fade), 14 columns, overlap 4.
    profile = blend_weights(1, 14, 4, "cosine", grid_edges=("top", "bottom"))[0]
    _close(profile[:4], COSINE_RAMP_4)
    _close(profile[4:10], 1.0)
    _close(profile[10:], COSINE_RAMP_4[::-1])
    # A linear ramp (d + ½)/o would give 0.125, 0.375, 0.625, 0.875 here.


def test_cosine_weights_in_2d_are_the_product_of_the_profiles() -> None:
    weight = blend_weights(10, 14, 4, "cosine")  # interior tile: fades on all four sides
    _close(weight[0, 0], COSINE_RAMP_4[0] ** 2)  # 0.0014485813...
    _close(weight[1, 2], COSINE_RAMP_4[1] * COSINE_RAMP_4[2])  # 0.2133883476...
    _close(weight[9, 11], COSINE_RAMP_4[0] * COSINE_RAMP_4[2])  # row 9 is d = 0 from the bottom, col 11 is d = 2
    _close(weight[5, 7], 1.0)
    _close(weight[3, 6], COSINE_RAMP_4[3])
    # Edges on the grid border do not fade: the left column keeps the row profile alone.
    left = blend_weights(10, 14, 4, "cosine", grid_edges=("left",))
    _close(left[1, 0], COSINE_RAMP_4[1])
    _close(left[4:6, 0], 1.0)
    _close(left[4, 13], COSINE_RAMP_4[0])


def test_cosine_ramp_where_the_overlap_exceeds_half_the_tile() -> None:
    # n = 6, overlap 4: both ramps meet, each pixel takes the smaller one: min(r[i], r[5 − i]).
    profile = blend_weights(1, 6, 4, "cosine", grid_edges=("top", "bottom"))[0]
    r = COSINE_RAMP_4
    _close(profile, [r[0], r[1], r[2], r[2], r[1], r[0]])


def test_gaussian_values() -> None:
    # 24 rows (σ = 3, centre 11.5) by 16 columns (σ = 2, centre 7.5), clamped to ≥ 1e-3.
    weight = blend_weights(24, 16, 5, "gaussian")
    cols = {0: 1e-3,  # exp(−56.25/8) = 8.8e-4 → the floor
            3: 0.07955950871822769,  # exp(−(3 − 7.5)²/(2·2²)) = exp(−2.53125); σ = 16/4 would give 0.531
            5: 0.45783336177161427,  # exp(−6.25/8)
            7: 0.9692332344763441,  # exp(−0.25/8)
            8: 0.9692332344763441,
            15: 1e-3}
    rows = {0: 1e-3,  # exp(−132.25/18) = 6.5e-4 → the floor
            2: 0.006645011282741398,  # exp(−90.25/18)
            5: 0.0956344448325386,  # exp(−42.25/18)
            11: 0.9862071167439163,  # exp(−0.25/18)
            20: 0.018063013419781275}  # exp(−72.25/18)
    for r, row_value in rows.items():
        for c, col_value in cols.items():
            _close(weight[r, c], row_value * col_value)
    # The overlap does not enter the gaussian.
    torch.testing.assert_close(blend_weights(24, 16, 2, "gaussian"), weight, rtol=0, atol=0)


def test_gaussian_holds_the_peak_towards_grid_border_edges() -> None:
    weight = blend_weights(1, 16, 5, "gaussian", grid_edges=("top", "bottom", "left"))[0]
    _close(weight[:8], 1.0)  # from the left border to the centre
    _close(weight[8], 0.9692332344763441)
    _close(weight[12], 0.07955950871822769)  # exp(−(12 − 7.5)²/8), mirror of column 3
    _close(weight[15], 1e-3)


@pytest.mark.parametrize("edges", [(), ("top", "left"), ("top", "bottom", "left", "right")])
def test_constant_weights_are_one(edges: tuple[str, ...]) -> None:
    _close(blend_weights(9, 11, 4, "constant", grid_edges=edges), 1.0)


def test_crop_values() -> None:
    # overlap 5: a margin of 5 // 2 = 2 pixels next to each faded edge is dropped.
    weight = blend_weights(9, 11, 5, "crop", grid_edges=("left",))
    expected = torch.ones(9, 11, dtype=torch.float64)
    expected[:2], expected[-2:], expected[:, -2:] = 0, 0, 0  # top, bottom, right fade; left is the grid border
    _close(weight, expected.tolist())


@pytest.mark.parametrize("mode", ["cosine", "crop"])
def test_no_overlap_means_no_fade(mode: str) -> None:
    _close(blend_weights(5, 7, 0, mode), 1.0)


# ------------------------------------------------------------------------------------ blending against a hand blend

def test_two_tiles_blend_across_a_cosine_overlap_by_hand() -> None:
    # Columns 0..15 hold 2, columns 12..27 hold 10; the overlap 12..15 gets 2·wᵢ + 10·(1 − wᵢ) with the left tile's
    # falling ramp wᵢ = r[3], r[2], r[1], r[0] (the two ramps sum to one there: no normalisation needed).
    windows = [Window(0, 0, 1, 16), Window(0, 12, 1, 16)]
    tiles = torch.stack([torch.full((1, 1, 16), 2.0), torch.full((1, 1, 16), 10.0)])
    weights = [tile_weights(w, 1, 28, 4, "cosine") for w in windows]
    out = blend_tiles(tiles, windows, 1, 28, weights)[0, 0]
    _close(out[:12], 2.0)
    _close(out[12:16], [2.304481869954853, 4.469266270539641, 7.530733729460359, 9.695518130045148])
    _close(out[16:], 10.0)


def _profile(n: int, overlap: int, mode: str, fade_start: bool, fade_end: bool) -> list[float]:
    """The docstring's formula for one axis, pixel by pixel."""
    values = []
    for i in range(n):
        if mode == "gaussian":
            centre, sigma = (n - 1) / 2, n / 8
            value = max(math.exp(-((i - centre) ** 2) / (2 * sigma**2)), 1e-3)
            if (not fade_start and i <= centre) or (not fade_end and i >= centre):
                value = 1.0
        else:
            distances = [d for d, fades in ((i, fade_start), (n - 1 - i, fade_end)) if fades]
            value = 1.0
            for d in distances:
                if mode == "cosine" and d < overlap:
                    value = min(value, math.sin(math.pi / 2 * (d + 0.5) / overlap) ** 2)
                if mode == "crop" and d < overlap // 2:
                    value = 0.0
        values.append(value)
    return values


def _hand_weights(window: Window, height: int, width: int, overlap: int, mode: str) -> torch.Tensor:
    rows = _profile(window.height, overlap, mode, window.row > 0, window.bottom < height)
    cols = _profile(window.width, overlap, mode, window.col > 0, window.right < width)
    return torch.tensor([[r * c for c in cols] for r in rows], dtype=torch.float64)


# A 23 × 30 grid, 12 × 12 tiles overlapping by 4: rows start 0, 8, 11 (the last one shifted inward), columns 0, 8,
# 16, 18, written out rather than planned by the library.
GRID = (23, 30, 12, 4)
WINDOWS = [Window(r, c, 12, 12) for r in (0, 8, 11) for c in (0, 8, 16, 18)]


@pytest.mark.parametrize("mode", MODES)
def test_blend_tiles_equals_a_hand_written_overlap_add(mode: str) -> None:
    height, width, tile, overlap = GRID
    tiles = torch.randn(len(WINDOWS), 2, tile, tile)
    canvas = torch.zeros(2, height, width, dtype=torch.float64)
    total = torch.zeros(height, width, dtype=torch.float64)
    for window, values in zip(WINDOWS, tiles):
        weight = _hand_weights(window, height, width, overlap, mode)
        for i in range(window.height):
            for j in range(window.width):
                canvas[:, window.row + i, window.col + j] += weight[i, j] * values[:, i, j].double()
                total[window.row + i, window.col + j] += weight[i, j]
    expected = canvas / total

    for window in WINDOWS:  # the library's weights are the formula's
        _close(tile_weights(window, height, width, overlap, mode), _hand_weights(window, height, width, overlap,
                                                                                  mode).tolist())
    weights = [tile_weights(w, height, width, overlap, mode) for w in WINDOWS]
    out = blend_tiles(tiles, WINDOWS, height, width, weights)
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-6)
