"""Classical pansharpening baselines, with the semantics of Vivone's toolbox (DLPan-Toolbox MATLAB files named below).

Every method takes the LR MS (B, h, w) and the PAN (h·r, w·r) in DN and returns the sharpened MS (B, h·r, w·r)
float64. All start from MS_up = EXP(MS), the 23-tap interpolation (`interpolation.py`), and add PAN detail:

    component substitution   F_k = MS_up_k + g_k · (P − I)            I: an intensity made from MS_up
    multiresolution (GLP)    F_k = MS_up_k + g_k · (P − P_LP,k)       P_LP,k: the PAN through band k's MTF

- EXP: MS_up alone (no PAN).
- Brovey (Vivone's `Brovey.m`): I = mean_k MS_up_k; the PAN is moment-matched to I (P' = (P − μ_P)·σ_I/σ_P + μ_I);
  F_k = MS_up_k · P' / (I + eps). Every pixel is MS_up scaled by one factor: spectral angles are those of EXP.
- GS, Gram–Schmidt mode "mean" (`GS/GS.m`): I = mean_k MS_up_k; P moment-matched to I; g_k = cov(MS_up_k, I)/var(I);
  F_k = MS_up_k + g_k·(P' − I). (The toolbox re-adds each band's mean at the end; P' − I has zero mean, so that step
  changes nothing.)
- GSA, adaptive GS (`GS/GSA.m`): the intensity weights come from a least-squares regression of the degraded PAN on the
  LR MS, P_lr − μ ≈ Σ_k α_k (MS_k − μ_k) + α_0 (`estimation_alpha.m`, 'global'); I = Σ_k α_k MS_up_k;
  F_k = MS_up_k + g_k·((P − μ_P) − (I − μ_I)), g_k = cov(MS_up_k, I)/var(I). The PAN is degraded as the toolbox's
  `LPfilterPlusDec.m` does: the approximation of an undecimated wavelet transform with the B3-spline pair
  h = h̃ = [1 4 6 4 1]/16 over ⌈log2 r⌉ levels (in the interior a convolution with h ∗ h ∗ … , 2⌈log2 r⌉ factors, per
  axis), then nearest decimation. At the borders we extend symmetrically (the toolbox's 'sym' decomposition mode;
  its reconstruction crops a zero-extended convolution, so the outer 4⌈log2 r⌉ pixels differ slightly).
- MTF-GLP with regression gains (`GLP/GS2_GLP.m`, MTF-GLP-CBD in Vivone et al. 2015): P_LP,k =
  EXP(decimate(MTF_k ∗ P)); g_k = cov(MS_up_k, P_LP,k)/var(P_LP,k); F_k = MS_up_k + g_k·(P − P_LP,k).
- MTF-GLP-HPM (`GLP/MTF_GLP_HPM.m`): per band the PAN is moment-matched to MS_up_k, with σ taken from the PAN after the
  toolbox's fixed Gaussian low-pass `LPfilterGauss.m` (GNyq 0.3, designed with N instead of N − 1, so 0.3 falls exactly
  on 1/(2r)): P_k = (P − μ_P)·σ(MS_up_k)/σ(LPG ∗ P) + μ(MS_up_k); P_LP,k = EXP(decimate(MTF_k ∗ P_k));
  F_k = MS_up_k · P_k / (P_LP,k + eps).

Statistics are global over the image (the toolbox's mean2/std2/cov; the N − 1 normalisations cancel in every ratio).
A flat PAN or intensity (σ ≤ 1e-8·|μ|) has no detail to match or regress: its scale and gains are taken as 0, so a
constant scene comes back as EXP instead of 0/0. eps = 2.2e-16 (MATLAB's eps), as in the toolbox's divisions.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from rsinfer.pansharpening.interpolation import interp23tap
from rsinfer.pansharpening.mtf import DEFAULT_SIZE, GainSpec, band_gains, filter_same, mtf_filter, windowed_gaussian
from rsinfer.pansharpening.wald import decimate
from rsinfer.sensors import DEFAULT_MS_GNYQ

EPS = float(np.finfo(np.float64).eps)
FLAT_RTOL = 1e-8  # a σ below this fraction of |μ| is rounding noise of a constant image
B3_SPLINE = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
HISTOGRAM_LOWPASS_GNYQ = 0.3  # LPfilterGauss.m


class Baseline(Protocol):
    """method(ms (B, h, w), pan (h·r, w·r), ratio, gnyq=...) -> (B, h·r, w·r), all DN."""

    def __call__(self, ms: np.ndarray, pan: np.ndarray, ratio: int, gnyq: GainSpec = DEFAULT_MS_GNYQ) -> np.ndarray:
        ...


def exp_interp(ms: np.ndarray, pan: np.ndarray, ratio: int, gnyq: GainSpec = DEFAULT_MS_GNYQ) -> np.ndarray:
    """EXP: the MS upsampled by the 23-tap interpolator; the PAN is only checked. `gnyq` is not used."""
    ms, _ = _checked(ms, pan, ratio)
    return interp23tap(ms, ratio)


def brovey(ms: np.ndarray, pan: np.ndarray, ratio: int, gnyq: GainSpec = DEFAULT_MS_GNYQ) -> np.ndarray:
    """Brovey: MS_up · P'/I with I the band mean and P' the PAN moment-matched to I. `gnyq` is not used."""
    ms, pan = _checked(ms, pan, ratio)
    ms_up = interp23tap(ms, ratio)  # (B, H, W)
    intensity = ms_up.mean(axis=0)  # (H, W)
    pan_eq = _match_moments(pan, intensity.mean(), _std(intensity), _std(pan))
    return ms_up * (pan_eq / (intensity + EPS))[None]


def gs(ms: np.ndarray, pan: np.ndarray, ratio: int, gnyq: GainSpec = DEFAULT_MS_GNYQ) -> np.ndarray:
    """Gram–Schmidt (intensity = band mean, PAN moment-matched to it). `gnyq` is not used."""
    ms, pan = _checked(ms, pan, ratio)
    ms_up = interp23tap(ms, ratio)
    intensity = ms_up.mean(axis=0)
    pan_eq = _match_moments(pan, intensity.mean(), _std(intensity), _std(pan))
    return _inject(ms_up, pan_eq - intensity, _gains(ms_up, intensity[None]))


def gsa(ms: np.ndarray, pan: np.ndarray, ratio: int, gnyq: GainSpec = DEFAULT_MS_GNYQ) -> np.ndarray:
    """Adaptive Gram–Schmidt: intensity weights regressed from the degraded PAN on the LR MS. `gnyq` is not used."""
    ms, pan = _checked(ms, pan, ratio)
    ms_up = interp23tap(ms, ratio)
    weights = gsa_weights(ms, spline_lowpass_decimate(pan, ratio))
    intensity = np.tensordot(weights, ms_up, axes=1)  # (H, W)
    detail = (pan - pan.mean()) - (intensity - intensity.mean())
    return _inject(ms_up, detail, _gains(ms_up, intensity[None]))


def mtf_glp(ms: np.ndarray, pan: np.ndarray, ratio: int, gnyq: GainSpec = DEFAULT_MS_GNYQ) -> np.ndarray:
    """MTF-GLP with regression gains g_k = cov(MS_up_k, P_LP,k)/var(P_LP,k); `gnyq`: the MS bands' MTF gains."""
    ms, pan = _checked(ms, pan, ratio)
    ms_up = interp23tap(ms, ratio)
    pan_lp = np.stack([_glp_lowpass(pan, g, ratio) for g in band_gains(gnyq, ms.shape[0])])  # (B, H, W)
    return _inject(ms_up, pan[None] - pan_lp, _gains(ms_up, pan_lp))


def mtf_glp_hpm(ms: np.ndarray, pan: np.ndarray, ratio: int, gnyq: GainSpec = DEFAULT_MS_GNYQ) -> np.ndarray:
    """MTF-GLP with high-pass modulation: MS_up_k · P_k / P_LP,k; `gnyq`: the MS bands' MTF gains."""
    ms, pan = _checked(ms, pan, ratio)
    ms_up = interp23tap(ms, ratio)
    sigma = DEFAULT_SIZE / (2.0 * ratio) / math.sqrt(-2.0 * math.log(HISTOGRAM_LOWPASS_GNYQ))
    pan_spread = _std(filter_same(pan, windowed_gaussian(sigma, DEFAULT_SIZE)))
    fused = np.empty_like(ms_up)
    for k, g in enumerate(band_gains(gnyq, ms.shape[0])):
        pan_k = _match_moments(pan, ms_up[k].mean(), _std(ms_up[k]), pan_spread)
        fused[k] = ms_up[k] * pan_k / (_glp_lowpass(pan_k, g, ratio) + EPS)
    return fused


BASELINES: dict[str, Baseline] = {
    "exp": exp_interp,
    "brovey": brovey,
    "gs": gs,
    "gsa": gsa,
    "mtf-glp": mtf_glp,
    "mtf-glp-hpm": mtf_glp_hpm,
}


def gsa_weights(ms_lr: np.ndarray, pan_lr: np.ndarray) -> np.ndarray:
    """Least-squares weights α (B,) of P_lr − μ ≈ Σ_k α_k (MS_k − μ_k) + α_0 (`estimation_alpha.m`, 'global')."""
    bands = ms_lr.shape[0]
    design = np.concatenate([(ms_lr - ms_lr.mean(axis=(1, 2), keepdims=True)).reshape(bands, -1),
                             np.ones((1, pan_lr.size))]).T  # (h·w, B + 1)
    alpha, *_ = np.linalg.lstsq(design, (pan_lr - pan_lr.mean()).ravel(), rcond=None)
    return alpha[:bands]


def spline_lowpass_decimate(pan: np.ndarray, ratio: int) -> np.ndarray:
    """The toolbox's `LPfilterPlusDec`: B3-spline wavelet approximation over ⌈log2 r⌉ levels, then decimation."""
    kernel = np.ones(1)
    for _ in range(2 * math.ceil(math.log2(ratio))):
        kernel = np.convolve(kernel, B3_SPLINE)
    smooth = _filter_axis_symmetric(_filter_axis_symmetric(pan, kernel, 0), kernel, 1)
    return decimate(smooth, ratio)


def _filter_axis_symmetric(image: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """Same-size filtering of a 2-D image along one axis by a symmetric odd kernel, half-point symmetric border."""
    half = len(kernel) // 2
    size = image.shape[axis]
    padding = [(0, 0), (0, 0)]
    padding[axis] = (half, half)
    padded = np.moveaxis(np.pad(image, padding, mode="symmetric"), axis, 0)
    return np.moveaxis(sum(t * padded[i:i + size] for i, t in enumerate(kernel)), 0, axis)


def _glp_lowpass(pan: np.ndarray, gnyq: float, ratio: int) -> np.ndarray:
    """P_LP = EXP(decimate(MTF ∗ P)): the PAN as the MS sensor would have seen it, back at PAN size."""
    return interp23tap(decimate(mtf_filter(pan[None], gnyq, ratio), ratio), ratio)[0]


def _inject(ms_up: np.ndarray, detail: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """F_k = MS_up_k + g_k · detail (detail (H, W) shared or (B, H, W) per band)."""
    return ms_up + gains[:, None, None] * detail


def _gains(ms_up: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Regression gains cov(MS_up_k, R_k)/var(R_k) (R (1, H, W) shared or (B, H, W)); 0 where R is flat."""
    reference = np.broadcast_to(reference, ms_up.shape)
    x = ms_up - ms_up.mean(axis=(1, 2), keepdims=True)
    r = reference - reference.mean(axis=(1, 2), keepdims=True)
    variance = (r * r).mean(axis=(1, 2))
    covariance = (x * r).mean(axis=(1, 2))
    flat = np.array([_is_flat(band) for band in reference])
    return np.where(flat, 0.0, covariance / np.where(flat, 1.0, variance))


def _match_moments(image: np.ndarray, mean: float, std: float, image_std: float) -> np.ndarray:
    """(X − μ_X)·std/image_std + mean; the scale is 0 for a flat image (its deviations are rounding noise)."""
    flat = image_std <= FLAT_RTOL * abs(image.mean())
    return (image - image.mean()) * (0.0 if flat else std / image_std) + mean


def _is_flat(image: np.ndarray) -> bool:
    return _std(image) <= FLAT_RTOL * abs(image.mean())


def _std(image: np.ndarray) -> float:
    return float(image.std())


def _checked(ms: np.ndarray, pan: np.ndarray, ratio: int) -> tuple[np.ndarray, np.ndarray]:
    ms = np.asarray(ms, dtype=np.float64)
    pan = np.asarray(pan, dtype=np.float64)
    if ms.ndim != 3:
        raise ValueError(f"the MS must be (bands, rows, cols), got shape {ms.shape}")
    if pan.ndim != 2:
        raise ValueError(f"the PAN must be (rows, cols), got shape {pan.shape}")
    if ratio < 2 or ratio & (ratio - 1):
        raise ValueError(f"the PAN/MS ratio must be a power of 2 (2, 4, 8, …), got {ratio}")
    if pan.shape != (ms.shape[1] * ratio, ms.shape[2] * ratio):
        raise ValueError(f"PAN {pan.shape} is not {ratio}× MS {ms.shape[1:]}: expected "
                         f"{(ms.shape[1] * ratio, ms.shape[2] * ratio)}")
    return ms, pan
