"""Per-band image fidelity: RMSE, PSNR, SSIM and CC, for translation and any prediction against a reference.

All take (bands, rows, cols) arrays on one stated data scale and return one value per band (B,):

- RMSE_b = sqrt(mean((X_b − Y_b)²)), in the units of the data.
- PSNR_b = 10 log10(R² / MSE_b) with an explicit data range R (inf where MSE_b = 0).
- SSIM_b per Wang, Bovik, Sheikh and Simoncelli (2004): local statistics under an 11 × 11 Gaussian window with
  σ = 1.5 (normalised), K1 = 0.01, K2 = 0.03, C1 = (K1 R)², C2 = (K2 R)², population (1/N) variances,

      SSIM = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)),

  averaged over the windows that lie entirely inside the image ('valid': no padding, as Wang's ssim_index.m). This
  equals skimage's structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=R), which filters with padding and then discards the 5-pixel border. R must be given: guessing it from
  the data is the usual SSIM pitfall.
- CC_b = the Pearson correlation over pixels (NaN for a constant band, where it is undefined).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from rsinfer.metrics.inputs import as_bands, check_same_shape

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def rmse(predicted: np.ndarray, reference: np.ndarray) -> np.ndarray:
    predicted, reference = _pair(predicted, reference)
    return np.sqrt(((predicted - reference) ** 2).mean(axis=(1, 2)))


def psnr(predicted: np.ndarray, reference: np.ndarray, data_range: float) -> np.ndarray:
    predicted, reference = _pair(predicted, reference)
    _check_range(data_range)
    mse = ((predicted - reference) ** 2).mean(axis=(1, 2))
    with np.errstate(divide="ignore"):
        return 10 * np.log10(data_range ** 2 / mse)


def ssim(predicted: np.ndarray, reference: np.ndarray, data_range: float) -> np.ndarray:
    predicted, reference = _pair(predicted, reference)
    _check_range(data_range)
    if min(predicted.shape[1:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW} x {SSIM_WINDOW} pixels, "
                         f"got {predicted.shape[1:]}")
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    mu_x, mu_y = _gaussian_valid(predicted), _gaussian_valid(reference)
    var_x = _gaussian_valid(predicted * predicted) - mu_x ** 2
    var_y = _gaussian_valid(reference * reference) - mu_y ** 2
    cov = _gaussian_valid(predicted * reference) - mu_x * mu_y
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return index.mean(axis=(1, 2))


def cc(predicted: np.ndarray, reference: np.ndarray) -> np.ndarray:
    predicted, reference = _pair(predicted, reference)
    dx = predicted - predicted.mean(axis=(1, 2), keepdims=True)
    dy = reference - reference.mean(axis=(1, 2), keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (dx * dy).sum(axis=(1, 2)) / np.sqrt((dx * dx).sum(axis=(1, 2)) * (dy * dy).sum(axis=(1, 2)))


def gaussian_window() -> np.ndarray:
    """The normalised 1-D Gaussian taps of the SSIM window; the 2-D window is their outer product."""
    offsets = np.arange(SSIM_WINDOW) - SSIM_WINDOW // 2
    taps = np.exp(-offsets ** 2 / (2 * SSIM_SIGMA ** 2))
    return taps / taps.sum()


def _gaussian_valid(image: np.ndarray) -> np.ndarray:
    """Separable Gaussian weighted means over every full window: (B, H, W) -> (B, H − 10, W − 10)."""
    taps = gaussian_window()
    along_cols = sliding_window_view(image, SSIM_WINDOW, axis=2) @ taps
    return sliding_window_view(along_cols, SSIM_WINDOW, axis=1) @ taps


def _pair(predicted: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    predicted, reference = as_bands(predicted, "predicted"), as_bands(reference, "reference")
    check_same_shape(predicted, reference, ("predicted", "reference"))
    return predicted, reference


def _check_range(data_range: float) -> None:
    if not np.isfinite(data_range) or data_range <= 0:
        raise ValueError(f"data_range must be a positive finite number (e.g. 1.0 for [0, 1] data, 2047 for 11-bit "
                         f"DN), got {data_range}")
