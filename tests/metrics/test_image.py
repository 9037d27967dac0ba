"""Per-band RMSE, PSNR, SSIM, CC against skimage, numpy and the formulas written out."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from rsinfer.metrics import cc, image_quality, psnr, rmse, ssim


def _pair(seed: int, shape=(3, 37, 45), scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    reference = rng.uniform(0, scale, shape)
    smooth = np.cumsum(reference, axis=2) / np.arange(1, shape[2] + 1)    # some structure beyond white noise
    reference = 0.5 * reference + 0.5 * smooth
    return reference + rng.normal(0, 0.08 * scale, shape), reference


@pytest.mark.parametrize("data_range", [1.0, 2047.0])
def test_ssim_matches_skimage_wang_2004_settings(data_range):
    predicted, reference = _pair(0, scale=data_range)
    expected = [structural_similarity(predicted[b], reference[b], gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False, data_range=data_range) for b in range(3)]
    np.testing.assert_allclose(ssim(predicted, reference, data_range), expected, rtol=1e-10)


def test_ssim_depends_on_the_stated_data_range():
    predicted, reference = _pair(1)
    assert ssim(predicted, reference, 1.0)[0] != pytest.approx(ssim(predicted, reference, 255.0)[0], rel=1e-3)
    np.testing.assert_allclose(ssim(reference, reference, 1.0), 1.0, rtol=1e-12)


def test_ssim_of_a_constant_offset_follows_the_luminance_term():
    # y = x + k: σ terms are equal, so SSIM = (2 μx μy + C1) / (μx² + μy² + C1) per window; with a constant
    # image x = c, every window has μx = c, μy = c + k.
    c, k, r = 0.3, 0.1, 1.0
    c1 = (0.01 * r) ** 2
    expected = (2 * c * (c + k) + c1) / (c ** 2 + (c + k) ** 2 + c1)
    x = np.full((1, 20, 14), c)
    np.testing.assert_allclose(ssim(x + k, x, r), expected, rtol=1e-12)


def test_cc_matches_numpy_corrcoef_per_band():
    predicted, reference = _pair(2)
    expected = [np.corrcoef(predicted[b].ravel(), reference[b].ravel())[0, 1] for b in range(3)]
    np.testing.assert_allclose(cc(predicted, reference), expected, rtol=1e-12)


def test_cc_of_a_constant_band_is_nan():
    assert np.isnan(cc(np.ones((1, 4, 4)), np.arange(16.0).reshape(1, 4, 4)))[0]


def test_rmse_and_psnr_follow_their_formulas():
    predicted, reference = _pair(3, scale=2047.0)
    for b in range(3):
        mse = sum((float(p) - float(r)) ** 2 for p, r in zip(predicted[b].ravel(), reference[b].ravel())) \
            / predicted[b].size
        assert rmse(predicted, reference)[b] == pytest.approx(math.sqrt(mse), rel=1e-12)
        assert psnr(predicted, reference, 2047.0)[b] == pytest.approx(10 * math.log10(2047.0 ** 2 / mse), rel=1e-12)
    assert psnr(reference, reference, 1.0)[0] == math.inf


def test_image_quality_reports_per_band_values_and_their_means():
    predicted, reference = _pair(4)
    report = image_quality(predicted, reference, data_range=1.0)
    assert set(report) == {"RMSE", "PSNR", "SSIM", "CC", "RMSE_mean", "PSNR_mean", "SSIM_mean", "CC_mean"}
    np.testing.assert_array_equal(report["SSIM"], ssim(predicted, reference, 1.0))
    np.testing.assert_array_equal(report["CC"], cc(predicted, reference))
    for name in ("RMSE", "PSNR", "SSIM", "CC"):
        assert report[name].shape == (3,)
        assert report[f"{name}_mean"] == pytest.approx(float(np.mean(report[name])), rel=1e-15)


@pytest.mark.parametrize("data_range", [0.0, -1.0, float("nan")])
def test_data_range_must_be_positive(data_range):
    predicted, reference = _pair(5)
    with pytest.raises(ValueError, match="data_range"):
        ssim(predicted, reference, data_range)


def test_ssim_needs_an_eleven_pixel_window():
    with pytest.raises(ValueError, match="at least 11 x 11"):
        ssim(np.ones((1, 10, 30)), np.ones((1, 10, 30)), 1.0)
