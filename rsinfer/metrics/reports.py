"""The three metric reports, each a dict of numbers, with the toolbox's evaluation protocol around the metrics.

- `reduced_resolution` is indexes_evaluation.m: a fused image against its reference (Wald protocol).
  Border cut (flag_cut_bounds = 1, dim_cut = 21): both images keep rows and cols dim_cut..end−dim_cut in MATLAB's
  1-based inclusive indexing, i.e. [cut − 1 : n − cut] in Python. The cut is asymmetric: 20 pixels go from the
  top and left, 21 from the bottom and right (a 256² image keeps 215²). cut = 0 switches it off.
  th_values (threshold=True): the fused image is clipped to [0, 2^bits] before the metrics; off by default, as the
  toolbox's demos set thvalues = 0. bits is the radiometric resolution L (11 for most VHR sensors, 10 for GF-2);
  the toolbox passes it to Q.m as well, which ignores it.
- `full_resolution` is indexes_evaluation_FS.m, both of its branches: QNR (flagQNR = 1) and HQNR. No border cut.
- `image_quality` is the per-band RMSE, PSNR, SSIM and CC of a prediction against a reference (translation).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rsinfer.metrics.image import cc, psnr, rmse, ssim
from rsinfer.metrics.inputs import as_bands, check_same_shape
from rsinfer.metrics.q2n import q2n
from rsinfer.metrics.qnr import d_lambda, d_lambda_khan, d_s
from rsinfer.metrics.scc import scc
from rsinfer.metrics.spectral import ergas, sam
from rsinfer.metrics.uiqi import q_avg
from rsinfer.pansharpening.interpolation import interp23tap
from rsinfer.sensors import Sensor
from rsinfer.sensors import sensor as lookup_sensor


def reduced_resolution(fused: np.ndarray, reference: np.ndarray, ratio: int = 4, bits: int = 11, block: int = 32,
                       cut: int = 21, threshold: bool = False) -> dict[str, float]:
    """SAM (degrees), ERGAS, Q2n (Q4 / Q8), Q_avg and SCC of `fused` against `reference`, (bands, rows, cols) in DN."""
    fused, reference = as_bands(fused, "fused"), as_bands(reference, "reference")
    check_same_shape(fused, reference, ("fused", "reference"))
    fused, reference = cut_borders(fused, cut), cut_borders(reference, cut)
    if threshold:
        fused = np.clip(fused, 0, 2.0 ** bits)
    return {
        "SAM": sam(fused, reference),
        "ERGAS": ergas(fused, reference, ratio),
        "Q2n": q2n(fused, reference, block),
        "Q_avg": q_avg(fused, reference, block),
        "SCC": scc(fused, reference),
    }


def full_resolution(fused: np.ndarray, ms_lr: np.ndarray, ms_up: np.ndarray | None, pan: np.ndarray,
                    sensor: str | Sensor, ratio: int = 4, bands: Sequence[str] | None = None, block: int = 32,
                    bits: int = 11, threshold: bool = False) -> dict[str, float]:
    """Dλ, Ds, QNR, Dλ_K and HQNR of a fused image (bands, rows, cols) in DN.

    ms_lr: the low-resolution MS (bands, rows/ratio, cols/ratio); ms_up: the MS at PAN size the toolbox compares
    against (None = interp23tap(ms_lr, ratio), the toolbox's I_MS); pan: (rows, cols) or (1, rows, cols).
    sensor: a registry name or Sensor, whose bands' GNyq shape the MTF filters of Dλ_K; bands: which of its bands
    the image holds, in order (None = all of the sensor's MS bands).
    """
    fused, ms_lr = as_bands(fused, "fused"), as_bands(ms_lr, "ms_lr")
    expected = (fused.shape[0], *(n * ratio for n in ms_lr.shape[1:]))
    if fused.shape != expected or ms_lr.shape[0] != fused.shape[0]:
        raise ValueError(f"fused {fused.shape} must be ms_lr {ms_lr.shape} upsampled by the ratio {ratio}, "
                         f"i.e. {(ms_lr.shape[0], *expected[1:])}")
    ms_up = interp23tap(ms_lr, ratio) if ms_up is None else ms_up
    gnyq = sensor_gnyq(sensor, bands, fused.shape[0])
    if threshold:
        fused = np.clip(fused, 0, 2.0 ** bits)
    spectral = d_lambda(fused, ms_up, block)
    spatial = d_s(fused, ms_up, pan, ratio, block)
    khan = d_lambda_khan(fused, ms_up, gnyq, ratio, block)
    return {
        "D_lambda": spectral,
        "D_s": spatial,
        "QNR": (1 - spectral) * (1 - spatial),
        "D_lambda_K": khan,
        "HQNR": (1 - khan) * (1 - spatial),
    }


def image_quality(predicted: np.ndarray, reference: np.ndarray, data_range: float) -> dict[str, np.ndarray | float]:
    """Per-band RMSE, PSNR, SSIM and CC ("RMSE" etc., arrays (B,)) and their means over bands ("RMSE_mean" etc.).

    The PSNR mean is the mean of the per-band PSNRs (inf if any band is exact)."""
    per_band = {"RMSE": rmse(predicted, reference), "PSNR": psnr(predicted, reference, data_range),
                "SSIM": ssim(predicted, reference, data_range), "CC": cc(predicted, reference)}
    return {**per_band, **{f"{name}_mean": float(values.mean()) for name, values in per_band.items()}}


def cut_borders(image: np.ndarray, cut: int) -> np.ndarray:
    """The toolbox's border cut I(cut:end−cut, cut:end−cut, :) on (bands, rows, cols); cut = 0 keeps everything."""
    if cut < 0:
        raise ValueError(f"cut must be >= 0 (0 = no border cut), got {cut}")
    if cut == 0:
        return image
    rows, cols = image.shape[-2:]
    if rows - 2 * cut + 1 < 1 or cols - 2 * cut + 1 < 1:
        raise ValueError(f"a border cut of {cut} leaves nothing of a {rows} x {cols} image")
    return image[..., cut - 1: rows - cut, cut - 1: cols - cut]


def sensor_gnyq(sensor: str | Sensor, bands: Sequence[str] | None, count: int) -> list[float]:
    """The MTF gains at Nyquist of the image's bands, from the sensor registry."""
    spec = lookup_sensor(sensor) if isinstance(sensor, str) else sensor
    selected = spec.select(bands)
    if len(selected) != count:
        raise ValueError(f"the image has {count} bands but {spec.name} gives {len(selected)} "
                         f"({', '.join(b.name for b in selected)}); name the image's bands with `bands`")
    missing = [b.name for b in selected if b.gnyq is None]
    if missing:
        raise ValueError(f"{spec.name} has no MTF gain at Nyquist for bands {', '.join(missing)}")
    return [float(b.gnyq) for b in selected]
