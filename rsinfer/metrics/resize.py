"""MATLAB's imresize(image, 1/ratio) for an integer ratio: bicubic with antialiasing, as the toolbox's D_s.m uses
to make the low-pass PAN (PAN_LP = interp23tap(imresize(PAN, 1/ratio), ratio)).

The cubic kernel (Keys, a = −0.5) is k(t) = 1.5|t|³ − 2.5|t|² + 1 for |t| ≤ 1, −0.5|t|³ + 2.5|t|² − 4|t| + 2 for
1 < |t| ≤ 2, else 0. Shrinking by s = 1/ratio stretches it for antialiasing: h(t) = s·k(s·t), 4·ratio pixels wide.
Output pixel u (1-based) sits at input coordinate x_u = u·ratio + (1 − ratio)/2, the centre of its ratio input pixels;
its weights h(x_u − j) over input pixels j are normalised to sum to 1, and indices outside the image are mirrored
symmetrically (the edge pixel repeated). The output has ceil(n / ratio) samples per axis; rows are resized first,
then columns.
"""

from __future__ import annotations

import numpy as np


def imresize_shrink(image: np.ndarray, ratio: int) -> np.ndarray:
    """Shrink the last two axes of (..., rows, cols) by the integer `ratio`, as MATLAB's imresize(·, 1/ratio)."""
    if not isinstance(ratio, (int, np.integer)) or ratio < 1:
        raise ValueError(f"ratio must be a positive integer, got {ratio!r}")
    image = np.asarray(image, dtype=np.float64)
    rows, cols = image.shape[-2:]
    along_rows = shrink_matrix(rows, ratio)                     # (ceil(rows/ratio), rows)
    along_cols = shrink_matrix(cols, ratio)                     # (ceil(cols/ratio), cols)
    return along_rows @ image @ along_cols.T


def shrink_matrix(length: int, ratio: int) -> np.ndarray:
    """The (ceil(length/ratio), length) matrix of imresize's antialiased bicubic weights along one axis."""
    out = -(-length // ratio)
    centres = np.arange(1, out + 1) * ratio + 0.5 * (1 - ratio)                   # 1-based input coordinates
    width = 4 * ratio
    first = np.floor(centres - width / 2)
    taps = first[:, None] + np.arange(width + 2)[None, :]                          # (out, width + 2), 1-based
    weights = _cubic((centres[:, None] - taps) / ratio) / ratio
    weights /= weights.sum(axis=1, keepdims=True)
    mirrored = np.concatenate([np.arange(length), np.arange(length)[::-1]])        # symmetric index extension
    columns = mirrored[(taps.astype(np.int64) - 1) % (2 * length)]
    matrix = np.zeros((out, length))
    np.add.at(matrix, (np.repeat(np.arange(out), taps.shape[1]), columns.ravel()), weights.ravel())
    return matrix


def _cubic(t: np.ndarray) -> np.ndarray:
    a = np.abs(t)
    return np.where(a <= 1, 1.5 * a ** 3 - 2.5 * a ** 2 + 1,
                    np.where(a <= 2, -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2, 0.0))
