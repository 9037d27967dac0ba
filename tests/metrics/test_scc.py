"""sCC, the toolbox variant (SCC.m): Sobel magnitudes of the 1-pixel-cropped bands, zero padded, uncentred
correlation pooled over bands. Reference: scipy.ndimage.sobel."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from rsinfer.metrics import scc


def _sobel_magnitude_scipy(band: np.ndarray) -> np.ndarray:
    crop = band[1:-1, 1:-1]
    return np.hypot(ndimage.sobel(crop, axis=0, mode="constant", cval=0.0),
                    ndimage.sobel(crop, axis=1, mode="constant", cval=0.0))


def _pair(seed: int, shape=(3, 29, 34)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    reference = rng.uniform(0, 2047, shape)
    return reference + rng.normal(0, 300, shape), reference


def test_scc_matches_scipy_sobel_pooled_over_bands():
    fused, reference = _pair(0)
    g_f = np.stack([_sobel_magnitude_scipy(b) for b in fused])
    g_r = np.stack([_sobel_magnitude_scipy(b) for b in reference])
    expected = (g_f * g_r).sum() / np.sqrt((g_f ** 2).sum() * (g_r ** 2).sum())
    assert scc(fused, reference) == pytest.approx(expected, rel=1e-12)


def test_scc_pools_bands_rather_than_averaging_them():
    fused, reference = _pair(1)
    per_band = np.mean([scc(fused[b:b + 1], reference[b:b + 1]) for b in range(3)])
    fused[2] *= 10                                  # a band with ten times the gradients dominates the pooled sums
    reference[2] *= 10
    assert scc(fused, reference) != pytest.approx(per_band, rel=1e-4)


def test_scc_is_one_for_identical_images_and_for_a_positive_gain():
    _, reference = _pair(2)
    assert scc(reference, reference) == pytest.approx(1.0, rel=1e-14)
    assert scc(3.5 * reference, reference) == pytest.approx(1.0, rel=1e-14)   # uncentred, magnitudes: scale-free


def test_scc_sees_an_offset_through_the_zero_padded_border():
    # Zero padding outside the crop makes its border an edge whose strength grows with the level, so a constant
    # offset lowers sCC; with replicated borders the gradients, and so sCC, would not change at all.
    _, reference = _pair(3)
    assert scc(reference + 1000, reference) < 0.99
    crop = reference[0, 1:-1, 1:-1]
    replicated = [ndimage.sobel(crop + k, axis=0, mode="nearest") for k in (0, 1000)]
    np.testing.assert_allclose(replicated[0], replicated[1], atol=1e-9)


def test_scc_needs_three_by_three():
    with pytest.raises(ValueError, match="at least 3 x 3"):
        scc(np.ones((1, 2, 5)), np.ones((1, 2, 5)))
