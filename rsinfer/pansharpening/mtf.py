"""Gaussian MTF filters matched to a sensor's gain at Nyquist, as the pansharpening toolbox builds them.

A sensor's modulation transfer function is modelled as a Gaussian whose gain at the MS Nyquist frequency is GNyq
(Vivone's toolbox / DLPan-Toolbox `Tools/genMTF.m`, `MTF.m`, `MTF_PAN.m`). The filter is designed in the frequency
domain on the `size`-point DFT grid (size = N = 41):

    Hd(k1, k2) = exp(−(k1² + k2²) / (2 σ²)),   k ∈ {−(N−1)/2 … (N−1)/2} (DFT bins),
    σ = ((N − 1) · fcut / 2) / sqrt(−2 ln GNyq),  fcut = 1 / ratio,

so the gain is GNyq at bin (N − 1) / (2·ratio) (bin 5 of 41 at ratio 4: 5/41 = 0.122 cycles/pixel, the toolbox's
discretisation of the MS Nyquist 1/(2·ratio) = 0.125). The spatial kernel is the inverse DFT of Hd (MATLAB's
`fspecial('gaussian')` then `fwind1`), multiplied by a circularly symmetric window made from the 1-D Kaiser window of
N points, β = 0.5 (MATLAB `kaiser(N)`), by Huang's method: w(x, y) = kaiser(r) interpolated at the radius r, zero
outside the disc. We then divide by the kernel sum so a constant image passes unchanged: the toolbox's MS kernel
sums to 0.9987 (GNyq 0.3, ratio 4) and darkens the image by that factor; the Python ports of the same authors' group
(Scarpa, Ciotola) normalise as we do. Consequence of the DFT-grid design: at exactly 1/(2·ratio) the gain is
GNyq^((N/(N−1))²) (0.282 for GNyq 0.3, N = 41), not GNyq.

Filtering (`MTF.m`: `imfilter(I, h, 'replicate')`) is a same-size correlation with the border replicated, one
kernel per band.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rsinfer.sensors import Sensor

KAISER_BETA = 0.5  # MATLAB kaiser(N) default
DEFAULT_SIZE = 41

GainSpec = float | Sequence[float] | Sensor


def windowed_gaussian(sigma: float, size: int) -> np.ndarray:
    """`fwind1(Hd, kaiser(size))` for a Gaussian frequency response of std `sigma` DFT bins: (size, size) float64."""
    if size < 3 or size % 2 == 0:
        raise ValueError(f"the kernel size must be odd and at least 3, got {size}")
    t = np.arange(size, dtype=np.float64) - (size - 1) / 2
    response = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2.0 * sigma * sigma))
    response[response < np.finfo(np.float64).eps * response.max()] = 0.0  # fspecial's truncation
    response /= response.max()
    spatial = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(response))).real  # (size, size), centred
    radius_axis = t / (size - 1)  # the 1-D window's abscissa, [−1/2, 1/2]
    radius = np.hypot(radius_axis[:, None], radius_axis[None, :])
    window = np.interp(radius, radius_axis, np.kaiser(size, KAISER_BETA))
    window[radius > radius_axis[-1]] = 0.0
    kernel = spatial * window
    return kernel / kernel.sum()


def mtf_sigma(gnyq: float, ratio: int, size: int = DEFAULT_SIZE) -> float:
    """σ (in DFT bins) of the Gaussian response with gain `gnyq` at bin (size − 1)/(2·ratio)."""
    if not 0.0 < gnyq < 1.0:
        raise ValueError(f"GNyq must lie in (0, 1), got {gnyq}")
    if ratio < 1:
        raise ValueError(f"the ratio must be a positive integer, got {ratio}")
    return (size - 1) / (2.0 * ratio) / math.sqrt(-2.0 * math.log(gnyq))


def mtf_kernel(gnyq: float, ratio: int, size: int = DEFAULT_SIZE) -> np.ndarray:
    """The (size, size) MTF kernel of `genMTF.m` for one band, normalised to sum 1."""
    return windowed_gaussian(mtf_sigma(gnyq, ratio, size), size)


def band_gains(spec: GainSpec, bands: int) -> tuple[float, ...]:
    """GNyq per band from one value, one value per band, or a registry sensor (its MS bands' GNyq)."""
    if isinstance(spec, Sensor):
        gains = [b.gnyq for b in spec.bands]
        if any(g is None for g in gains):
            raise ValueError(f"sensor {spec.name!r} has no MTF gains (GNyq) in the registry; pass the values")
        if len(gains) != bands:
            raise ValueError(f"sensor {spec.name!r} has {len(gains)} MS bands, the image has {bands}; "
                             f"pass the GNyq of the bands present, e.g. [b.gnyq for b in sensor.select(names)]")
        return tuple(float(g) for g in gains)
    if np.ndim(spec) == 0:
        return (float(spec),) * bands
    gains = tuple(float(g) for g in spec)
    if len(gains) != bands:
        raise ValueError(f"{len(gains)} GNyq values for {bands} bands")
    return gains


def filter_same(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Same-size correlation of a 2-D image with an odd square kernel, border replicated (imfilter 'replicate').

    Computed by FFT on the edge-padded image: the circular wrap-around only reaches the discarded margin.
    """
    half = kernel.shape[0] // 2
    rows, cols = image.shape
    padded = np.pad(image, half, mode="edge")  # (rows + 2·half, cols + 2·half)
    shape = (_fft_size(padded.shape[0]), _fft_size(padded.shape[1]))
    spectrum = np.fft.rfft2(padded, shape) * np.fft.rfft2(kernel[::-1, ::-1], shape)
    full = np.fft.irfft2(spectrum, shape)
    return full[2 * half:2 * half + rows, 2 * half:2 * half + cols]


def mtf_filter(image: np.ndarray, gnyq: GainSpec, ratio: int, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Filter each band of `image` (B, H, W) with its MTF kernel; same size, border replicated: (B, H, W) float64."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 3:
        raise ValueError(f"mtf_filter takes a (bands, rows, cols) image, got shape {image.shape}")
    gains = band_gains(gnyq, image.shape[0])
    kernels = {g: mtf_kernel(g, ratio, size) for g in set(gains)}
    return np.stack([filter_same(band, kernels[g]) for band, g in zip(image, gains, strict=True)])


def _fft_size(n: int) -> int:
    """The smallest 2^a·3^b·5^c ≥ n (fast FFT lengths)."""
    best = 1 << max(n - 1, 0).bit_length()
    fives = 1
    while fives < best:
        threes = fives
        while threes < best:
            size = threes
            while size < n:
                size *= 2
            best = min(best, size)
            threes *= 3
        fives *= 5
    return best
