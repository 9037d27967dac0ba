"""MATLAB imresize(·, 1/ratio) (antialiased bicubic shrink), the first step of Ds's low-pass PAN."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rsinfer.metrics.resize import imresize_shrink, shrink_matrix


def _keys(t: float) -> float:
    t = abs(t)
    if t <= 1:
        return 1.5 * t ** 3 - 2.5 * t ** 2 + 1
    return -0.5 * t ** 3 + 2.5 * t ** 2 - 4 * t + 2 if t <= 2 else 0.0


def test_interior_weights_are_the_stretched_keys_kernel_around_the_block_centre():
    # ratio 4: output pixel v (0-based) is centred at input 4v + 1.5; weights ∝ k((j − centre)/4) over 16 pixels
    matrix = shrink_matrix(40, 4)
    centre = 4 * 5 + 1.5
    raw = np.array([_keys((j - centre) / 4) for j in range(40)])
    np.testing.assert_allclose(matrix[5], raw / raw.sum(), rtol=0, atol=1e-15)
    assert np.count_nonzero(matrix[5]) == 16


def test_borders_mirror_the_edge_pixel():
    # output 0 is centred at 1.5: its taps at −1 … −6 fold back onto pixels 0 … 5 (symmetric, the edge repeated)
    matrix = shrink_matrix(40, 4)
    centre = 1.5
    raw = {j: _keys((j - centre) / 4) for j in range(-7, 10)}
    folded = np.zeros(40)
    for j, w in raw.items():
        folded[j if j >= 0 else -j - 1] += w
    np.testing.assert_allclose(matrix[0], folded / folded.sum(), atol=1e-15)


def test_matches_pillow_bicubic_away_from_the_borders():
    # Pillow's antialiased bicubic (a = −0.5, support scaled by the ratio) is the same filter; it renormalises at
    # the borders instead of mirroring, so compare pixels whose window stays inside.
    x = np.random.default_rng(0).uniform(0, 2047, (64, 76)).astype(np.float32)
    ours = imresize_shrink(x, 4)
    pillow = np.asarray(Image.fromarray(x).resize((19, 16), Image.Resampling.BICUBIC), dtype=np.float64)
    assert ours.shape == pillow.shape == (16, 19)
    np.testing.assert_allclose(ours[2:-2, 2:-2], pillow[2:-2, 2:-2], rtol=2e-6, atol=2e-3)


def test_constants_survive_and_odd_sizes_round_up():
    out = imresize_shrink(np.full((2, 13, 10), 7.0), 4)
    assert out.shape == (2, 4, 3)
    np.testing.assert_allclose(out, 7.0, rtol=1e-14)


def test_ratio_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="positive integer"):
        imresize_shrink(np.ones((8, 8)), 0)
