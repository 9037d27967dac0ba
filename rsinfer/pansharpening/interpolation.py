"""The toolbox's 23-tap polynomial interpolator ("EXP"), `Tools/interp23tap.m` of Vivone's / DLPan-Toolbox.

Each stage doubles both axes: the samples go on every other pixel of a zero grid, then the grid is filtered along
rows and columns with the symmetric 23-tap half-band filter

    f[0] = 1,  f[±1, ±3, …, ±11] = 2·(0.305334091185, −0.072698593239, 0.021809577942, −0.005192756653,
                                      0.000807762146, −0.000060081482),  f[even ≠ 0] = 0,

(the interpolating filter of the Cohen–Daubechies–Feauveau 23-tap family: it keeps the samples and fills the gaps).
The toolbox filters with `imfilter(·, f, 'circular')`: the borders wrap around. In the first stage the samples land
on the odd pixels (0-based; MATLAB `2:2:end`), in later stages on the even ones (`1:2:end`), so after s stages sample i
sits at pixel ratio·i + ratio/2, the pixel that nearest-neighbour decimation (`imresize(·, 1/ratio, 'nearest')`)
picks back out.

Stages: log2(ratio). The toolbox's loop runs `for z = 1 : ratio/2`, which equals log2(ratio) for ratios 2 and 4
(the only ones it is used with) and would over-upsample at 8; we run log2(ratio) stages.

A gap pixel is Σ_m f[m]·(sample at m pixels away), m odd; with samples at the odd pixels, gap 2i gets
Σ_m f[m]·x[i + (m − 1)/2] and with samples at the even pixels gap 2i + 1 gets Σ_m f[m]·x[i + (m + 1)/2], indices mod
the sample count (circular). That polyphase form is what we evaluate.
"""

from __future__ import annotations

import numpy as np

HALF_TAPS = 2.0 * np.array([0.305334091185, -0.072698593239, 0.021809577942, -0.005192756653, 0.000807762146,
                            -0.000060081482])  # f[1], f[3], …, f[11]
ODD_OFFSETS = np.arange(1, 2 * len(HALF_TAPS), 2)  # 1, 3, …, 11


def interp23tap_taps() -> np.ndarray:
    """The 23 taps f[−11 … 11]."""
    taps = np.zeros(23)
    taps[11] = 1.0
    taps[11 + ODD_OFFSETS] = HALF_TAPS
    taps[11 - ODD_OFFSETS] = HALF_TAPS
    return taps


def interp23tap(image: np.ndarray, ratio: int) -> np.ndarray:
    """Upsample (B, h, w) by `ratio` (a power of 2) with the 23-tap interpolator: (B, h·ratio, w·ratio) float64."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 3:
        raise ValueError(f"interp23tap takes a (bands, rows, cols) image, got shape {image.shape}")
    if ratio < 1 or ratio & (ratio - 1):
        raise ValueError(f"interp23tap needs a power-of-2 ratio, got {ratio}")
    stages = ratio.bit_length() - 1
    for stage in range(stages):
        samples_on_odd = stage == 0
        image = _upsample2(_upsample2(image, -2, samples_on_odd), -1, samples_on_odd)
    return image


def _upsample2(x: np.ndarray, axis: int, samples_on_odd: bool) -> np.ndarray:
    """Double one axis: samples kept on the odd (or even) pixels, the gaps filled by the circular 23-tap filter."""
    n = x.shape[axis]
    reach = len(HALF_TAPS)  # a gap reads samples up to 6 away on either side
    wrapped = np.take(x, np.arange(-reach, n + reach) % n, axis=axis)  # circular border: (…, n + 12, …)
    # the gap next to sample i reads x[i + shift + (m − 1)/2] for each odd tap offset m (±1 … ±11)
    shift = 0 if samples_on_odd else 1
    gaps, term = np.zeros(x.shape), np.empty(x.shape)
    for tap, m in zip(HALF_TAPS, ODD_OFFSETS, strict=True):
        for offset in (m, -m):
            start = reach + shift + (offset - 1) // 2
            gaps += np.multiply(_along(wrapped, axis, slice(start, start + n)), tap, out=term)
    shape = list(x.shape)
    shape[axis] *= 2
    out = np.empty(shape)
    sample_slot, gap_slot = (slice(1, None, 2), slice(0, None, 2)) if samples_on_odd else (
        slice(0, None, 2), slice(1, None, 2))
    out[_index(x.ndim, axis, sample_slot)] = x
    out[_index(x.ndim, axis, gap_slot)] = gaps
    return out


def _index(ndim: int, axis: int, part: slice) -> tuple[slice, ...]:
    index = [slice(None)] * ndim
    index[axis] = part
    return tuple(index)


def _along(x: np.ndarray, axis: int, part: slice) -> np.ndarray:
    return x[_index(x.ndim, axis, part)]
