"""The toolbox protocol around the metrics (indexes_evaluation.m): border cut, th_values, and the reduced-resolution
report on a real Landsat 8 Wald pair."""

from __future__ import annotations

import numpy as np
import pytest

from rsinfer.metrics import ergas, q2n, q_avg, reduced_resolution, sam, scc
from rsinfer.metrics.reports import cut_borders
from rsinfer.pansharpening import interp23tap
from rsinfer.pansharpening.wald import degrade


def _pair(seed: int, shape=(4, 100, 90)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    reference = np.round(rng.uniform(100, 2000, shape))
    return np.round(reference + rng.normal(0, 100, shape)), reference


def test_the_border_cut_keeps_matlab_rows_cut_to_end_minus_cut():
    # MATLAB I(21:end-21, 21:end-21): 1-based rows 21..N-21, i.e. 0-based 20..N-22 — 20 off the top, 21 off the bottom
    image = np.arange(256 * 200, dtype=float).reshape(1, 256, 200)
    kept = cut_borders(image, 21)
    assert kept.shape == (1, 215, 159)
    assert kept[0, 0, 0] == image[0, 20, 20]
    assert kept[0, -1, -1] == image[0, 256 - 22, 200 - 22]
    assert cut_borders(image, 0) is image


def test_reduced_resolution_ignores_pixels_outside_the_cut():
    fused, reference = _pair(0)
    base = reduced_resolution(fused, reference)
    for row in (19, 100 - 21):                          # last row cut at the top, first row cut at the bottom
        touched = fused.copy()
        touched[:, row, :] += 500
        assert reduced_resolution(touched, reference) == base
    for row in (20, 100 - 22):                          # first and last rows kept
        touched = fused.copy()
        touched[:, row, :] += 500
        assert reduced_resolution(touched, reference)["ERGAS"] > base["ERGAS"]


def test_reduced_resolution_is_the_metrics_on_the_cut_images():
    fused, reference = _pair(1)
    f, r = fused[:, 20:79, 20:69], reference[:, 20:79, 20:69]         # 59 x 49: Q2n mirror-pads to 64 x 64
    assert reduced_resolution(fused, reference) == {
        "SAM": sam(f, r), "ERGAS": ergas(f, r, 4), "Q2n": q2n(f, r, 32), "Q_avg": q_avg(f, r, 32), "SCC": scc(f, r)}
    no_cut = reduced_resolution(fused, reference, cut=0, ratio=2)
    assert no_cut["ERGAS"] == pytest.approx(ergas(fused, reference, 2), rel=1e-15)
    assert no_cut["Q2n"] == q2n(fused, reference)


def test_threshold_clips_the_fused_image_to_two_to_the_bits():
    fused, reference = _pair(2)
    fused[:, 40:50] = -300.0
    fused[:, 60:70] = 3000.0
    for bits in (10, 11):
        assert reduced_resolution(fused, reference, bits=bits, threshold=True) == \
            reduced_resolution(np.clip(fused, 0, 2 ** bits), reference)
    assert reduced_resolution(fused, reference)["ERGAS"] != \
        reduced_resolution(fused, reference, threshold=True)["ERGAS"]


def test_reduced_resolution_errors_name_the_problem():
    fused, reference = _pair(3, shape=(4, 40, 40))
    with pytest.raises(ValueError, match="border cut of 21 leaves nothing of a 40 x 40"):
        reduced_resolution(fused, reference)
    with pytest.raises(ValueError, match="same shape"):
        reduced_resolution(fused, reference[:3])


def test_reduced_resolution_on_a_real_landsat_wald_pair(data_dir):
    rasterio = pytest.importorskip("rasterio")
    window = rasterio.windows.Window(900, 700, 256, 256)
    bands = []
    for name in ("B2", "B3", "B4"):
        with rasterio.open(data_dir / "landsat" / f"LC08_L1TP_224078_20200518_20200518_01_RT_{name}.TIF") as src:
            bands.append(src.read(1, window=window).astype(np.float64))
    reference = np.stack(bands)                                           # (3, 256, 256) DN, 16-bit scale
    exp = interp23tap(degrade(reference, None, 0.3, 4).ms, 4)             # EXP of the reduced-resolution MS

    perfect = reduced_resolution(reference, reference)
    assert perfect == pytest.approx({"SAM": 0.0, "ERGAS": 0.0, "Q2n": 1.0, "Q_avg": 1.0, "SCC": 1.0}, abs=1e-6)
    blurred = reduced_resolution(exp, reference)
    halfway = reduced_resolution(0.5 * (exp + reference), reference)      # half the missing detail restored
    assert 0 < halfway["SAM"] < blurred["SAM"]
    assert 0 < halfway["ERGAS"] < blurred["ERGAS"]
    for name in ("Q2n", "Q_avg", "SCC"):
        assert blurred[name] < halfway[name] < 1
