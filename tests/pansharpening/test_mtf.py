"""MTF kernels (genMTF.m) and per-band MTF filtering (MTF.m), checked against closed forms and direct correlation."""

from __future__ import annotations

import numpy as np
import pytest

from rsinfer.pansharpening.mtf import band_gains, mtf_filter, mtf_kernel, mtf_sigma
from rsinfer.sensors import sensor

N = 41


def _dtft(kernel: np.ndarray, frequency: float) -> float:
    """Response of a centred kernel at (f, 0) cycles/pixel, evaluated as a plain sum (no FFT)."""
    offsets = np.arange(kernel.shape[1]) - kernel.shape[1] // 2
    return float((kernel * np.cos(2 * np.pi * frequency * offsets)[None, :]).sum())


@pytest.mark.parametrize("gnyq, ratio", [(0.3, 4), (0.15, 4), (0.34, 4), (0.22, 2), (0.11, 4), (0.35, 2)])
def test_kernel_gain_at_nyquist(gnyq: float, ratio: int) -> None:
    kernel = mtf_kernel(gnyq, ratio)
    assert kernel.shape == (N, N)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(kernel, kernel.T, atol=1e-15)
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-15)
    # the toolbox designs on the 41-point DFT grid: GNyq sits at bin (N − 1)/(2·ratio), the MS Nyquist bin
    spectrum = np.fft.fft2(np.fft.ifftshift(kernel))
    assert abs(spectrum[0, (N - 1) // (2 * ratio)]) == pytest.approx(gnyq, abs=2e-3)
    assert abs(spectrum[(N - 1) // (2 * ratio), 0]) == pytest.approx(gnyq, abs=2e-3)
    # at exactly 1/(2·ratio) cycles/pixel the Gaussian is one N/(N − 1) step further out: GNyq^((N/(N−1))²)
    assert _dtft(kernel, 1 / (2 * ratio)) == pytest.approx(gnyq ** ((N / (N - 1)) ** 2), abs=2e-3)
    assert _dtft(kernel, 0.0) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("gnyq", [0.3, 0.15, 0.11])
def test_kernel_is_a_kaiser_windowed_gaussian(gnyq: float) -> None:
    # independent closed form: the inverse DFT of a Gaussian of σ bins is a Gaussian of N/(2πσ) pixels; the window is
    # the continuous Kaiser I0(β·sqrt(1 − ρ²))/I0(β), β = 0.5, of the radius ρ = r / ((N − 1)/2), zero outside
    t = np.arange(N) - N // 2
    x, y = np.meshgrid(t, t)
    spatial_std = N / (2 * np.pi * mtf_sigma(gnyq, 4))
    rho = np.hypot(x, y) / (N // 2)
    window = np.where(rho <= 1, np.i0(0.5 * np.sqrt(np.clip(1 - rho**2, 0, None))) / np.i0(0.5), 0.0)
    expected = np.exp(-(x**2 + y**2) / (2 * spatial_std**2)) * window
    expected /= expected.sum()
    kernel = mtf_kernel(gnyq, 4)
    assert np.abs(kernel - expected).max() <= 1e-4 * kernel.max()


def _correlate_replicate(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    half = kernel.shape[0] // 2
    padded = np.pad(image, half, mode="edge")
    out = np.zeros_like(image)
    for i in range(kernel.shape[0]):
        for j in range(kernel.shape[1]):
            out += kernel[i, j] * padded[i:i + image.shape[0], j:j + image.shape[1]]
    return out


def test_filter_is_a_same_size_correlation_with_replicated_border() -> None:
    rng = np.random.default_rng(3)
    image = rng.uniform(0, 2047, (2, 37, 53))  # smaller than the kernel's reach on purpose
    out = mtf_filter(image, [0.34, 0.22], 4)
    assert out.shape == image.shape
    for band, gnyq in enumerate((0.34, 0.22)):
        expected = _correlate_replicate(image[band], mtf_kernel(gnyq, 4))
        np.testing.assert_allclose(out[band], expected, rtol=1e-12, atol=1e-9)


def test_filter_respects_kernel_orientation() -> None:
    # an asymmetric image near the border: replicate padding (not zero, not circular) decides these values
    image = np.zeros((1, 30, 30))
    image[0, :, :3] = 1000.0
    out = mtf_filter(image, 0.3, 4)
    np.testing.assert_allclose(out[0], _correlate_replicate(image[0], mtf_kernel(0.3, 4)), atol=1e-9)
    np.testing.assert_allclose(out[0, :, 0], out[0, 0, 0])  # no row dependence: the border is replicated


def test_constant_image_passes_unchanged() -> None:
    image = np.full((3, 20, 24), 517.0)
    np.testing.assert_allclose(mtf_filter(image, sensor("qb").bands[0].gnyq, 4), image, rtol=1e-12)


def test_band_gains() -> None:
    assert band_gains(0.3, 3) == (0.3, 0.3, 0.3)
    assert band_gains([0.1, 0.2], 2) == (0.1, 0.2)
    assert band_gains(sensor("WV3"), 8)[0] == 0.325
    with pytest.raises(ValueError, match="8 MS bands, the image has 4"):
        band_gains(sensor("wv3"), 4)
    with pytest.raises(ValueError, match="no MTF gains"):
        band_gains(sensor("sentinel-2"), 13)
    with pytest.raises(ValueError, match="2 GNyq values for 3 bands"):
        band_gains([0.3, 0.3], 3)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="GNyq must lie in"):
        mtf_kernel(1.2, 4)
    with pytest.raises(ValueError, match="odd"):
        mtf_kernel(0.3, 4, size=40)
    with pytest.raises(ValueError, match=r"\(bands, rows, cols\)"):
        mtf_filter(np.zeros((8, 8)), 0.3, 4)
