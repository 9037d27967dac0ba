"""Spatial correlation coefficient, the DLPan-Toolbox variant (SCC.m).

Variant: Sobel gradient magnitudes and an UNCENTRED correlation pooled over all bands. Other codes call a
Laplacian-high-pass Pearson correlation "sCC" (Zhou et al. 1998); that is a different number.

Per band, the image is cropped by one pixel on every side, and the Sobel responses of the crop are taken with zero
padding outside it (imfilter's default), so the crop's own border counts as an edge:

    G = sqrt((S ⋆ I)² + (Sᵀ ⋆ I)²),   S = [[1, 2, 1], [0, 0, 0], [−1, −2, −1]],
    sCC = Σ G_F·G_R / sqrt(Σ G_F² · Σ G_R²),   the sums over pixels and bands together.
"""

from __future__ import annotations

import numpy as np

from rsinfer.metrics.inputs import as_bands, check_same_shape


def scc(fused: np.ndarray, reference: np.ndarray) -> float:
    """The toolbox's sCC of two (bands, rows, cols) images (at least 3 × 3)."""
    fused, reference = as_bands(fused, "fused"), as_bands(reference, "reference")
    check_same_shape(fused, reference, ("fused", "reference"))
    if min(fused.shape[1:]) < 3:
        raise ValueError(f"sCC needs images of at least 3 x 3 pixels, got {fused.shape[1:]}")
    g_fused, g_reference = sobel_magnitude(fused[:, 1:-1, 1:-1]), sobel_magnitude(reference[:, 1:-1, 1:-1])
    return float((g_fused * g_reference).sum() / np.sqrt((g_fused ** 2).sum()) / np.sqrt((g_reference ** 2).sum()))


def sobel_magnitude(image: np.ndarray) -> np.ndarray:
    """|∇| from the two 3 × 3 Sobel kernels, zero padding outside the image: (B, H, W) -> (B, H, W)."""
    p = np.pad(image, ((0, 0), (1, 1), (1, 1)))
    h, w = image.shape[1:]

    def at(dr: int, dc: int) -> np.ndarray:   # the neighbour at row offset dr, col offset dc (each in 0..2)
        return p[:, dr:dr + h, dc:dc + w]

    across_rows = at(0, 0) + 2 * at(0, 1) + at(0, 2) - at(2, 0) - 2 * at(2, 1) - at(2, 2)
    across_cols = at(0, 0) + 2 * at(1, 0) + at(2, 0) - at(0, 2) - 2 * at(1, 2) - at(2, 2)
    return np.sqrt(across_rows ** 2 + across_cols ** 2)
