"""Spectral fidelity: SAM and ERGAS, as DLPan-Toolbox's SAM.m and ERGAS.m compute them.

SAM, the spectral angle mapper, is the mean over pixels of the angle between the fused and the reference spectra,

    SAM = mean_p arccos(<x_p, y_p> / (‖x_p‖ ‖y_p‖))   in degrees,

over the pixels where ‖x_p‖‖y_p‖ ≠ 0 (the toolbox drops the others). The toolbox takes the real part of MATLAB's
complex arccos, which equals clipping the cosine to [−1, 1]. SAM ignores the length of each spectrum: scaling a pixel
by any positive factor leaves it unchanged.

ERGAS, "erreur relative globale adimensionnelle de synthèse", with μ_b the mean of reference band b:

    ERGAS = (100 / ratio) · sqrt((1/B) Σ_b MSE_b / μ_b²)
"""

from __future__ import annotations

import numpy as np

from rsinfer.metrics.inputs import as_bands, check_same_shape


def sam(fused: np.ndarray, reference: np.ndarray) -> float:
    """Spectral angle in degrees, averaged over the pixels where neither spectrum is zero (the toolbox's SAM.m)."""
    fused, reference = as_bands(fused, "fused"), as_bands(reference, "reference")
    check_same_shape(fused, reference, ("fused", "reference"))
    inner = np.einsum("bhw,bhw->hw", fused, reference)
    norms = np.sqrt(np.einsum("bhw,bhw->hw", fused, fused) * np.einsum("bhw,bhw->hw", reference, reference))
    valid = norms != 0
    if not valid.any():
        raise ValueError("SAM is undefined: every pixel of fused or reference is a zero spectrum")
    angles = np.arccos(np.clip(inner[valid] / norms[valid], -1.0, 1.0))
    return float(np.degrees(angles.mean()))


def ergas(fused: np.ndarray, reference: np.ndarray, ratio: int = 4) -> float:
    """ERGAS with the reference band means as the normalisation and 100/ratio in front (the toolbox's ERGAS.m)."""
    fused, reference = as_bands(fused, "fused"), as_bands(reference, "reference")
    check_same_shape(fused, reference, ("fused", "reference"))
    if ratio <= 0:
        raise ValueError(f"ratio must be positive (the PAN/MS scale ratio, e.g. 4), got {ratio}")
    mse = ((fused - reference) ** 2).mean(axis=(1, 2))          # (B,)
    mean_squared = reference.mean(axis=(1, 2)) ** 2              # (B,)
    return float((100.0 / ratio) * np.sqrt(np.mean(mse / mean_squared)))
