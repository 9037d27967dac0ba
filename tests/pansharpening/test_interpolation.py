"""interp23tap (EXP): exactness on the sample grid, polynomial reproduction, and the toolbox's taps and borders."""

from __future__ import annotations

import numpy as np
import pytest

from rsinfer.pansharpening.interpolation import interp23tap, interp23tap_taps

# interp23tap.m: CDF23 = 2·[0.5 0.305334091185 0 −0.072698593239 0 0.021809577942 0 −0.005192756653 0 0.000807762146 0
# −0.000060081482], mirrored; the odd taps f[1], f[3], …, f[11]
F1, F3, F5 = 0.61066818237, -0.145397186478, 0.043619155884
F7, F9, F11 = -0.010385513306, 0.001615524292, -0.000120162964


def _toolbox(image: np.ndarray, ratio: int) -> np.ndarray:
    """The toolbox loop written out: zero grid, samples at 2:2:end then 1:2:end, circular 23-tap filter, by FFT."""
    taps = np.zeros(23)
    taps[11] = 1.0
    for m, f in zip((1, 3, 5, 7, 9, 11), (F1, F3, F5, F7, F9, F11), strict=True):
        taps[11 + m] = taps[11 - m] = f
    for stage in range(int(np.log2(ratio))):
        bands, rows, cols = image.shape
        grid = np.zeros((bands, 2 * rows, 2 * cols))
        first = 1 if stage == 0 else 0
        grid[:, first::2, first::2] = image
        for axis in (1, 2):
            n = grid.shape[axis]
            kernel = np.zeros(n)
            for m in range(-11, 12):
                kernel[m % n] += taps[m + 11]
            shape = [1, 1, 1]
            shape[axis] = n  # circular correlation: out[p] = Σ_m f[m]·grid[p + m]
            grid = np.fft.ifft(np.fft.fft(grid, axis=axis) * np.conj(np.fft.fft(kernel)).reshape(shape), axis=axis).real
        image = grid
    return image


def test_taps_are_the_toolbox_ones() -> None:
    taps = interp23tap_taps()
    assert taps.shape == (23,)
    np.testing.assert_array_equal(taps, taps[::-1])
    assert taps[11] == 1.0 and not taps[11 + 2::2].any()
    np.testing.assert_allclose(taps[12::2], [F1, F3, F5, F7, F9, F11], rtol=1e-11)


def test_impulse_response_with_circular_border() -> None:
    # ratio 2, one bright LR pixel at (row 3, col 14) of a 16×16 band: samples go to pixel 2i + 1, the gap at 2i reads
    # x[i + (m − 1)/2]; along columns the support of sample 14 wraps past the right edge into pixels 0 … 8
    image = np.zeros((1, 16, 16))
    image[0, 3, 14] = 1.0
    out = interp23tap(image, 2)[0]
    row_profile = np.zeros(32)
    row_profile[[0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 28, 30]] = [F7, F5, F3, F1, F1, F3, F5, F7, F9, F11, F11, F9]
    row_profile[7] = 1.0
    col_profile = np.zeros(32)
    col_profile[29] = 1.0
    for pixel, f in zip((28, 30, 26, 0, 24, 2, 22, 4, 20, 6, 18, 8),
                        (F1, F1, F3, F3, F5, F5, F7, F7, F9, F9, F11, F11), strict=True):
        col_profile[pixel] = f
    np.testing.assert_allclose(out, np.outer(row_profile, col_profile), atol=1e-15)


@pytest.mark.parametrize("ratio", [2, 4, 8])
def test_matches_the_toolbox_loop(ratio: int) -> None:
    image = np.random.default_rng(ratio).uniform(0, 2047, (2, 13, 30))
    np.testing.assert_allclose(interp23tap(image, ratio), _toolbox(image, ratio), rtol=0, atol=1e-9)


@pytest.mark.parametrize("ratio", [2, 4, 8])
def test_exact_on_the_sample_grid(ratio: int) -> None:
    image = np.random.default_rng(0).uniform(0, 2047, (3, 11, 7))
    out = interp23tap(image, ratio)
    assert out.shape == (3, 11 * ratio, 7 * ratio)
    np.testing.assert_array_equal(out[:, ratio // 2::ratio, ratio // 2::ratio], image)  # decimation gives it back


@pytest.mark.parametrize("ratio", [2, 4])
def test_constants(ratio: int) -> None:
    # the published taps are rounded to 12 digits: the odd ones sum to 1 − 4e-10, not 1
    out = interp23tap(np.full((2, 9, 10), 1500.0), ratio)
    np.testing.assert_allclose(out, 1500.0, rtol=2e-9)


@pytest.mark.parametrize("degree", [1, 3, 7])
def test_reproduces_polynomials_away_from_the_wrap(degree: int) -> None:
    n, ratio = 64, 4
    i = np.arange(n, dtype=np.float64)
    image = np.broadcast_to(((i - 32) / 10) ** degree, (1, 6, n))
    out = interp23tap(image, ratio)[0, 0]
    position = (np.arange(n * ratio) - ratio // 2) / ratio  # LR coordinate of each output pixel
    expected = ((position - 32) / 10) ** degree
    interior = slice(15 * ratio, (n - 15) * ratio)  # circular wrap reaches 12 LR pixels in over two stages
    np.testing.assert_allclose(out[interior], expected[interior], atol=2e-9 * np.abs(expected[interior]).max())


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="power-of-2 ratio, got 3"):
        interp23tap(np.zeros((1, 4, 4)), 3)
    with pytest.raises(ValueError, match=r"\(bands, rows, cols\)"):
        interp23tap(np.zeros((4, 4)), 2)
