"""The universal image quality index (UIQI, Wang and Bovik 2002) in the two flavours the toolbox uses.

For two equally sized windows x, y with means μ, variances σ² and covariance σ_xy,

    Q = 4 σ_xy μ_x μ_y / ((σ_x² + σ_y²)(μ_x² + μ_y²)),

the product of correlation, luminance closeness and contrast closeness; Q = 1 only for x = y. Whether σ is taken
with 1/N or 1/(N−1) does not matter: the factor cancels.

- `uiqi_sliding` is `img_qi.m`, used by Q_avg: a block × block window slides by ONE pixel over the valid region
  (MATLAB's filter2 'valid'), and the map is averaged. The window sums follow img_qi's formula, including its two
  special cases: where the summed variances are 0 but the means are not, Q = 2 μ_x μ_y / (μ_x² + μ_y²); where both
  are 0, Q = 1.
- `uiqi_blocks` is the `uqi` of `D_lambda.m` and `D_s.m`, used by QNR: non-overlapping block × block tiles
  (MATLAB's blockproc), averaged. It has no special cases: a tile that is constant in both images gives NaN, as in the
  toolbox.

`q_avg` is `Q.m`: `uiqi_sliding` per band with 32 × 32 windows, averaged over bands.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from rsinfer.metrics.inputs import as_bands, check_block, check_same_shape


def uiqi(x: np.ndarray, y: np.ndarray) -> float:
    """Q of two equally shaped arrays taken as one window (NaN where it is undefined)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    check_same_shape(x, y, ("x", "y"))
    return float(_window_q(x.reshape(1, -1), y.reshape(1, -1))[0])


def uiqi_blocks(x: np.ndarray, y: np.ndarray, block: int = 32) -> np.ndarray:
    """Mean Q over the non-overlapping block × block tiles of (..., rows, cols) arrays (rows and cols multiples of
    `block`, as blockproc in the toolbox's QNR code requires). Returns the leading shape (...)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    check_same_shape(x, y, ("x", "y"))
    rows, cols = x.shape[-2:]
    check_block(block, rows, cols, divides=True)
    lead = x.shape[:-2]

    def tiles(image: np.ndarray) -> np.ndarray:  # (..., rows, cols) -> (..., tiles, block²)
        image = image.reshape(*lead, rows // block, block, cols // block, block)
        return np.moveaxis(image, -3, -2).reshape(*lead, -1, block * block)

    return _window_q(tiles(x), tiles(y)).mean(axis=-1)


def uiqi_sliding(x: np.ndarray, y: np.ndarray, block: int = 32) -> float:
    """Mean Q over every block × block window at a one-pixel step (img_qi.m) of two (rows, cols) arrays."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    check_same_shape(x, y, ("x", "y"))
    if x.ndim != 2:
        raise ValueError(f"uiqi_sliding takes (rows, cols) arrays, got shape {x.shape}")
    check_block(block, *x.shape, divides=False)
    n = block * block
    sum_x, sum_y = _window_sums(x, block), _window_sums(y, block)
    sum_xx, sum_yy, sum_xy = _window_sums(x * x, block), _window_sums(y * y, block), _window_sums(x * y, block)
    means_product = sum_x * sum_y                                  # N² μx μy
    means_squares = sum_x * sum_x + sum_y * sum_y                  # N² (μx² + μy²)
    variances = n * (sum_xx + sum_yy) - means_squares              # N² (σx² + σy²)
    numerator = 4 * (n * sum_xy - means_product) * means_product   # N⁴ · 4 σxy μx μy
    denominator = variances * means_squares
    quality = np.ones_like(denominator)
    flat = (variances == 0) & (means_squares != 0)
    quality[flat] = 2 * means_product[flat] / means_squares[flat]
    defined = denominator != 0
    quality[defined] = numerator[defined] / denominator[defined]
    return float(quality.mean())


def q_avg(fused: np.ndarray, reference: np.ndarray, block: int = 32) -> float:
    """Q_avg of Q.m: the sliding-window UIQI of each band, averaged over bands."""
    fused, reference = as_bands(fused, "fused"), as_bands(reference, "reference")
    check_same_shape(fused, reference, ("fused", "reference"))
    return float(np.mean([uiqi_sliding(r, f, block) for r, f in zip(reference, fused)]))


def _window_q(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Q of each window along the last axis; (..., N) -> (...). Centred two-pass moments, no special cases."""
    mean_x, mean_y = x.mean(axis=-1), y.mean(axis=-1)
    dx, dy = x - mean_x[..., None], y - mean_y[..., None]
    var_x, var_y, cov = (dx * dx).mean(axis=-1), (dy * dy).mean(axis=-1), (dx * dy).mean(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 4 * cov * mean_x * mean_y / (var_x + var_y) / (mean_x ** 2 + mean_y ** 2)


def _window_sums(image: np.ndarray, block: int) -> np.ndarray:
    """Sums over every block × block window inside the image: (rows, cols) -> (rows−block+1, cols−block+1)."""
    rows_summed = sliding_window_view(image, block, axis=0).sum(axis=-1)
    return sliding_window_view(rows_summed, block, axis=1).sum(axis=-1)
