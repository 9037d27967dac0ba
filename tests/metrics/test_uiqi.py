"""UIQI in the toolbox's two flavours: sliding windows (img_qi.m, Q_avg) and non-overlapping tiles (QNR's uqi)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from rsinfer.metrics import q_avg, uiqi, uiqi_blocks, uiqi_sliding


def _q_straight(x: np.ndarray, y: np.ndarray) -> float:
    """Wang-Bovik Q of one window, with sample (N−1) moments, written out."""
    x, y = x.ravel(), y.ravel()
    n = x.size
    mx, my = x.sum() / n, y.sum() / n
    vx, vy = ((x - mx) ** 2).sum() / (n - 1), ((y - my) ** 2).sum() / (n - 1)
    cxy = ((x - mx) * (y - my)).sum() / (n - 1)
    return float(4 * cxy * mx * my / ((vx + vy) * (mx * mx + my * my)))


def test_uiqi_of_two_hand_made_2x2_arrays():
    x = [[1, 2], [3, 4]]
    y = [[2, 2], [3, 5]]
    # μx = 5/2, μy = 3; σx² = 5/4, σy² = 3/2, σxy = 5/4 (1/N); Q = 4 σxy μx μy / ((σx² + σy²)(μx² + μy²))
    mx, my, vx, vy, cxy = Fraction(5, 2), Fraction(3), Fraction(5, 4), Fraction(3, 2), Fraction(5, 4)
    expected = 4 * cxy * mx * my / ((vx + vy) * (mx ** 2 + my ** 2))
    assert expected == Fraction(600, 671)
    assert uiqi(np.array(x), np.array(y)) == pytest.approx(float(expected), rel=1e-14)
    # the same arrays as the single window of both block flavours
    assert uiqi_sliding(np.array(x, float), np.array(y, float), 2) == pytest.approx(float(expected), rel=1e-14)
    assert uiqi_blocks(np.array(x, float), np.array(y, float), 2) == pytest.approx(float(expected), rel=1e-14)


def test_uiqi_is_one_only_for_identical_windows():
    x = np.random.default_rng(0).uniform(0, 100, (8, 8))
    assert uiqi(x, x) == pytest.approx(1.0, rel=1e-14)
    assert uiqi(x, x + 1) < 1 and uiqi(x, 2 * x) < 1


def test_uiqi_sliding_averages_every_one_pixel_step_window():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 2047, (40, 37))
    y = x + rng.normal(0, 200, x.shape)
    block = 32
    expected = np.mean([_q_straight(x[r:r + block, c:c + block], y[r:r + block, c:c + block])
                        for r in range(40 - block + 1) for c in range(37 - block + 1)])      # 9 x 6 windows
    assert uiqi_sliding(x, y, block) == pytest.approx(expected, rel=1e-10)


def test_uiqi_sliding_special_cases_of_img_qi():
    # constant windows: equal constants give 1, unequal constants 2 μx μy / (μx² + μy²); a window constant in one
    # image only has zero covariance and gives 0
    assert uiqi_sliding(np.full((4, 4), 3.0), np.full((4, 4), 3.0), 4) == 1.0
    assert uiqi_sliding(np.full((4, 4), 1.0), np.full((4, 4), 3.0), 4) == pytest.approx(2 * 3 / (1 + 9))
    assert uiqi_sliding(np.zeros((4, 4)), np.zeros((4, 4)), 4) == 1.0
    varying = np.arange(16, dtype=float).reshape(4, 4)
    assert uiqi_sliding(np.full((4, 4), 5.0), varying, 4) == 0.0


def test_uiqi_blocks_averages_non_overlapping_tiles():
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 2047, (2, 64, 96))
    y = x + rng.normal(0, 300, x.shape)
    got = uiqi_blocks(x, y, 32)
    assert got.shape == (2,)
    for b in range(2):
        expected = np.mean([_q_straight(x[b, r:r + 32, c:c + 32], y[b, r:r + 32, c:c + 32])
                            for r in range(0, 64, 32) for c in range(0, 96, 32)])            # 2 x 3 tiles
        assert got[b] == pytest.approx(expected, rel=1e-12)


def test_uiqi_blocks_gives_nan_on_a_constant_tile_as_the_toolbox():
    x = np.ones((4, 4))
    assert np.isnan(uiqi_blocks(x, x, 4))


def test_uiqi_blocks_requires_a_block_multiple():
    with pytest.raises(ValueError, match="multiples of the block size 32"):
        uiqi_blocks(np.ones((40, 64)), np.ones((40, 64)), 32)


def test_q_avg_is_the_mean_of_the_per_band_sliding_uiqi():
    rng = np.random.default_rng(3)
    reference = rng.uniform(0, 2047, (3, 35, 33))
    fused = reference + rng.normal(0, 150, reference.shape)
    per_band = [uiqi_sliding(fused[b], reference[b], 32) for b in range(3)]
    assert q_avg(fused, reference) == pytest.approx(np.mean(per_band), rel=1e-14)
    assert q_avg(reference, reference) == pytest.approx(1.0, rel=1e-12)
    assert len(set(np.round(per_band, 12))) == 3                      # the bands differ: a real average


def test_uiqi_sliding_rejects_a_window_larger_than_the_image():
    with pytest.raises(ValueError, match="larger than the image"):
        uiqi_sliding(np.ones((20, 40)), np.ones((20, 40)), 32)
