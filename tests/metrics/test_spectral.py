"""SAM and ERGAS against hand-computed cases and straight-line formulas (SAM.m, ERGAS.m)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rsinfer.metrics import ergas, sam


def _random_pair(seed: int, shape=(4, 19, 23)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    reference = rng.uniform(50, 2047, shape)
    return reference + rng.normal(0, 80, shape), reference


def test_sam_of_two_hand_made_pixels_in_degrees():
    # pixel 1: (1, 0) vs (1, 1) -> 45°; pixel 2: (0, 2) vs (0, 5) -> 0°; mean 22.5°
    fused = np.array([[[1.0, 0.0]], [[0.0, 2.0]]])
    reference = np.array([[[1.0, 0.0]], [[1.0, 5.0]]])
    assert sam(fused, reference) == pytest.approx(22.5, abs=1e-12)


def test_sam_drops_zero_spectra_as_the_toolbox():
    fused = np.array([[[1.0, 0.0, 3.0]], [[0.0, 0.0, 3.0]]])
    reference = np.array([[[1.0, 4.0, 0.0]], [[1.0, 4.0, 3.0]]])   # pixel 2 of fused is zero: not counted
    assert sam(fused, reference) == pytest.approx((45.0 + 45.0) / 2, abs=1e-12)


def test_sam_is_invariant_to_per_pixel_scaling():
    fused, reference = _random_pair(0)
    scale = np.random.default_rng(1).uniform(0.1, 10.0, fused.shape[1:])    # one positive factor per pixel
    assert sam(fused * scale, reference) == pytest.approx(sam(fused, reference), rel=1e-12)
    assert sam(fused, reference / scale) == pytest.approx(sam(fused, reference), rel=1e-12)


def test_sam_matches_a_pixel_loop():
    fused, reference = _random_pair(2)
    angles = []
    for r in range(fused.shape[1]):
        for c in range(fused.shape[2]):
            x, y = fused[:, r, c], reference[:, r, c]
            angles.append(math.acos(min(1.0, float(x @ y) / math.sqrt(float(x @ x) * float(y @ y)))))
    assert sam(fused, reference) == pytest.approx(math.degrees(sum(angles) / len(angles)), rel=1e-12)


def test_sam_of_identical_images_is_zero_despite_rounding():
    _, reference = _random_pair(3)
    assert sam(reference, reference) == pytest.approx(0.0, abs=1e-5)   # cosines above 1 are clipped, never NaN


def test_ergas_of_an_image_with_itself_is_zero():
    _, reference = _random_pair(4)
    assert ergas(reference, reference, 4) == 0.0


def test_ergas_of_a_constant_bias_follows_the_formula():
    # fused = reference + k per band: MSE_b = k_b², so ERGAS = (100/ratio) sqrt(mean_b (k_b/μ_b)²)
    _, reference = _random_pair(5)
    bias = np.array([10.0, -20.0, 5.0, 40.0])
    means = reference.mean(axis=(1, 2))
    for ratio in (2, 4):
        expected = (100 / ratio) * math.sqrt(float(np.mean((bias / means) ** 2)))
        assert ergas(reference + bias[:, None, None], reference, ratio) == pytest.approx(expected, rel=1e-12)


def test_ergas_normalises_by_the_reference_means():
    fused, reference = _random_pair(6)
    total = sum(float(np.mean((fused[b] - reference[b]) ** 2)) / float(np.mean(reference[b])) ** 2 for b in range(4))
    assert ergas(fused, reference, 4) == pytest.approx(25 * math.sqrt(total / 4), rel=1e-12)
    assert ergas(fused, reference, 4) != pytest.approx(ergas(reference, fused, 4), rel=1e-6)


@pytest.mark.parametrize("bad", [np.zeros((5, 5)), np.zeros((2, 0, 4))])
def test_metrics_reject_arrays_that_are_not_bands_rows_cols(bad):
    with pytest.raises(ValueError, match="bands, rows, cols"):
        sam(bad, bad)


def test_metrics_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        ergas(np.ones((3, 4, 4)), np.ones((3, 4, 5)))
