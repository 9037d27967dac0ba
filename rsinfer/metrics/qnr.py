"""Full-resolution quality without a reference: Dλ, Ds, QNR, Dλ_K and HQNR, as DLPan-Toolbox's
D_lambda.m, D_s.m, QNR.m, D_lambda_K.m and HQNR.m ("Toolbox 1.0" flavour, flag_orig_paper = 0).

Inputs are at PAN size, (bands, rows, cols) in DN: the fused image F, the MS upsampled to PAN size M̃ (the toolbox's
I_MS, interp23tap of the low-resolution MS), and the PAN P. Q̄(x, y) is the UIQI of two bands averaged over
non-overlapping block × block tiles (`uiqi_blocks`); rows and cols must be multiples of the block, as the toolbox
requires. All exponents (p, q, α, β) are 1, the toolbox defaults.

- Spectral distortion (Alparone et al. 2008), over the B(B−1)/2 band pairs i < j:
      Dλ = mean_{i<j} |Q̄(F_i, F_j) − Q̄(M̃_i, M̃_j)|
- Spatial distortion, with the low-pass PAN P_LP = interp23tap(imresize(P, 1/ratio), ratio) (MATLAB's antialiased
  bicubic shrink, `imresize_shrink`, then the 23-tap interpolator):
      Ds = mean_b |Q̄(F_b, P) − Q̄(M̃_b, P_LP)|
- QNR = (1 − Dλ)(1 − Ds).
- Khan's spectral distortion: the fused image filtered by the sensor's per-band MTF (Gaussian with the band's gain at
  Nyquist, at the same size, no decimation) against M̃ with Q2n:
      Dλ_K = 1 − Q2n(MTF(F), M̃)     (reference M̃; Q2n's uint16 cast and padding conventions apply)
- HQNR = (1 − Dλ_K)(1 − Ds).

The MTF filter and the 23-tap interpolator are rsinfer.pansharpening's, shared with the Wald protocol and the
baselines.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rsinfer.metrics.inputs import as_bands, as_pan, check_block, check_same_shape
from rsinfer.metrics.q2n import q2n
from rsinfer.metrics.resize import imresize_shrink
from rsinfer.metrics.uiqi import uiqi_blocks
from rsinfer.pansharpening.interpolation import interp23tap
from rsinfer.pansharpening.mtf import mtf_filter


def d_lambda(fused: np.ndarray, ms_up: np.ndarray, block: int = 32) -> float:
    """Dλ: how much the between-band UIQIs of the fused image differ from those of the upsampled MS."""
    fused, ms_up = _fused_and_ms(fused, ms_up, block)
    if fused.shape[0] < 2:
        raise ValueError(f"D_lambda compares band pairs and needs at least 2 bands, got {fused.shape[0]}")
    first, second = np.triu_indices(fused.shape[0], k=1)
    q_fused = uiqi_blocks(fused[first], fused[second], block)       # (pairs,)
    q_ms = uiqi_blocks(ms_up[first], ms_up[second], block)
    return float(np.abs(q_fused - q_ms).mean())


def d_s(fused: np.ndarray, ms_up: np.ndarray, pan: np.ndarray, ratio: int = 4, block: int = 32) -> float:
    """Ds: how much each band's UIQI with the PAN differs from the upsampled MS band's UIQI with the low-pass PAN."""
    fused, ms_up = _fused_and_ms(fused, ms_up, block)
    pan = _pan_like(pan, fused)
    q_high = uiqi_blocks(fused, np.broadcast_to(pan, fused.shape), block)                   # (B,)
    q_low = uiqi_blocks(ms_up, np.broadcast_to(pan_low_pass(pan, ratio), ms_up.shape), block)
    return float(np.abs(q_high - q_low).mean())


def qnr(fused: np.ndarray, ms_up: np.ndarray, pan: np.ndarray, ratio: int = 4, block: int = 32) -> float:
    """QNR = (1 − Dλ)(1 − Ds)."""
    return (1 - d_lambda(fused, ms_up, block)) * (1 - d_s(fused, ms_up, pan, ratio, block))


def d_lambda_khan(fused: np.ndarray, ms_up: np.ndarray, gnyq: Sequence[float], ratio: int = 4,
                  block: int = 32) -> float:
    """Dλ_K = 1 − Q2n(MTF-filtered fused, upsampled MS), with the MTF gain at Nyquist `gnyq` per band."""
    fused, ms_up = _fused_and_ms(fused, ms_up, block)
    if len(gnyq) != fused.shape[0]:
        raise ValueError(f"gnyq has {len(gnyq)} values for {fused.shape[0]} bands; give one per band")
    return 1 - q2n(mtf_filter(fused, gnyq, ratio), ms_up, block)


def hqnr(fused: np.ndarray, ms_up: np.ndarray, pan: np.ndarray, gnyq: Sequence[float], ratio: int = 4,
         block: int = 32) -> float:
    """HQNR = (1 − Dλ_K)(1 − Ds)."""
    return (1 - d_lambda_khan(fused, ms_up, gnyq, ratio, block)) * (1 - d_s(fused, ms_up, pan, ratio, block))


def pan_low_pass(pan: np.ndarray, ratio: int) -> np.ndarray:
    """P_LP = interp23tap(imresize(P, 1/ratio), ratio): (rows, cols) -> (rows, cols) for rows, cols divisible by
    the ratio."""
    pan = as_pan(pan)
    if pan.shape[0] % ratio or pan.shape[1] % ratio:
        raise ValueError(f"PAN shape {pan.shape} must be divisible by the ratio {ratio}")
    return interp23tap(imresize_shrink(pan, ratio)[None], ratio)[0]


def _fused_and_ms(fused: np.ndarray, ms_up: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    fused, ms_up = as_bands(fused, "fused"), as_bands(ms_up, "ms_up")
    check_same_shape(fused, ms_up, ("fused", "ms_up"))
    check_block(block, *fused.shape[1:], divides=True)
    return fused, ms_up


def _pan_like(pan: np.ndarray, fused: np.ndarray) -> np.ndarray:
    pan = as_pan(pan)
    if pan.shape != fused.shape[1:]:
        raise ValueError(f"pan {pan.shape} must have the fused image's rows and cols {fused.shape[1:]}")
    return pan
