"""Pansharpening baselines, each on a property that pins its injection rule, plus a real-data Wald check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rsinfer.pansharpening.baselines import (
    BASELINES,
    brovey,
    exp_interp,
    gs,
    gsa,
    gsa_weights,
    mtf_glp,
    mtf_glp_hpm,
    spline_lowpass_decimate,
)
from rsinfer.pansharpening.interpolation import interp23tap
from rsinfer.pansharpening.mtf import filter_same, mtf_filter, windowed_gaussian
from rsinfer.pansharpening.wald import degrade
from rsinfer.sensors import sensor

RATIO = 4


def _smooth_scene(bands: int, rows: int, cols: int, seed: int) -> np.ndarray:
    """LR bands made of a few low-frequency cosines (periods ≥ 12 LR pixels), 400–1600 DN."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    out = np.empty((bands, rows, cols))
    for k in range(bands):
        waves = sum(np.cos(2 * np.pi * (fy * y + fx * x) + phase)
                    for fy, fx, phase in zip(*rng.uniform(-1, 1, (2, 4)) / 12, rng.uniform(0, 6.3, 4), strict=True))
        out[k] = 1000 + 150 * waves
    return out


def _random_pair(seed: int, bands: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(100, 2000, (bands, 11, 13)), rng.uniform(100, 2000, (44, 52))


def _sam_degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cos = (a * b).sum(0) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0))
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def test_table_names_every_baseline() -> None:
    assert set(BASELINES) == {"exp", "brovey", "gs", "gsa", "mtf-glp", "mtf-glp-hpm"}


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_constant_scene_comes_back(name: str) -> None:
    levels = np.array([312.0, 480.0, 655.0, 1220.0])
    ms = np.broadcast_to(levels[:, None, None], (4, 7, 9))
    out = BASELINES[name](ms, np.full((28, 36), 903.0), RATIO, gnyq=sensor("qb"))
    assert out.shape == (4, 28, 36)
    np.testing.assert_allclose(out, np.broadcast_to(levels[:, None, None], out.shape), rtol=1e-8)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_shapes_and_bad_inputs(name: str) -> None:
    ms, pan = _random_pair(0)
    method = BASELINES[name]
    out = method(ms.astype(np.uint16), pan.astype(np.uint16), RATIO)  # DN as stored
    assert out.shape == (4, 44, 52) and out.dtype == np.float64 and np.isfinite(out).all()
    with pytest.raises(ValueError, match=r"PAN \(44, 48\) is not 4× MS \(11, 13\): expected \(44, 52\)"):
        method(ms, pan[:, :48], RATIO)
    with pytest.raises(ValueError, match="power of 2"):
        method(ms, pan, 3)
    with pytest.raises(ValueError, match=r"PAN must be \(rows, cols\)"):
        method(ms, pan[None], RATIO)


def test_exp_is_the_23_tap_interpolation() -> None:
    ms, pan = _random_pair(1)
    np.testing.assert_array_equal(exp_interp(ms, pan, RATIO), interp23tap(ms, RATIO))


def test_brovey_keeps_the_band_ratios_of_exp() -> None:
    ms, pan = _random_pair(2)
    up = interp23tap(ms, RATIO)
    out = brovey(ms, pan, RATIO)
    np.testing.assert_allclose(out[1:] / out[0], up[1:] / up[0], rtol=1e-12)  # same spectral direction per pixel
    assert _sam_degrees(out, up).max() < 1e-5
    # the common factor is the PAN moment-matched to the intensity I = band mean, over I
    intensity = up.mean(0)
    matched = (pan - pan.mean()) * intensity.std() / pan.std() + intensity.mean()
    np.testing.assert_allclose(out.mean(0), matched, rtol=1e-10)


def test_gs_returns_exp_when_the_pan_is_the_intensity() -> None:
    ms, _ = _random_pair(3)
    up = interp23tap(ms, RATIO)
    for pan in (up.mean(0), 3.0 * up.mean(0) - 250.0):  # any affine copy: the moment matching undoes it
        np.testing.assert_allclose(gs(ms, pan, RATIO), up, rtol=1e-10)


def test_gs_injects_regressed_detail() -> None:
    ms, pan = _random_pair(4)
    up = interp23tap(ms, RATIO)
    intensity = up.mean(0)
    matched = (pan - pan.mean()) * intensity.std() / pan.std() + intensity.mean()
    gains = [np.cov(up[k].ravel(), intensity.ravel())[0, 1] / intensity.var(ddof=1) for k in range(4)]
    expected = up + np.array(gains)[:, None, None] * (matched - intensity)
    np.testing.assert_allclose(gs(ms, pan, RATIO), expected, rtol=1e-10)


def test_gsa_weights_solve_the_lr_regression() -> None:
    ms = np.random.default_rng(5).uniform(100, 2000, (4, 12, 10))
    weights = np.array([0.4, 0.1, 0.3, 0.2])
    np.testing.assert_allclose(gsa_weights(ms, np.tensordot(weights, ms, axes=1) + 37.0), weights, rtol=1e-10)


def test_gsa_learns_the_pan_composition_and_gs_does_not() -> None:
    ms = _smooth_scene(3, 32, 40, seed=6)
    up = interp23tap(ms, RATIO)
    weights = np.array([0.5, 0.3, 0.2])
    pan = np.tensordot(weights, up, axes=1) + 50.0  # a PAN that is exactly this combination of MS_up
    np.testing.assert_allclose(gsa_weights(ms, spline_lowpass_decimate(pan, RATIO)), weights, rtol=0.05)
    assert np.abs(gsa(ms, pan, RATIO) - up).max() < 0.1 * up.std()  # nearly nothing to inject
    assert np.abs(gs(ms, pan, RATIO) - up).max() > 0.5 * up.std()  # GS assumes equal weights


def test_spline_lowpass_is_the_b3_cascade() -> None:
    # interior of LPfilterPlusDec at ratio 4: two wavelet levels = [1 4 6 4 1]/16 convolved 4 times (17 taps) per
    # axis, then the pixels 4i + 2
    kernel = np.ones(1)
    for _ in range(4):
        kernel = np.convolve(kernel, np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16)
    pan = np.zeros((64, 64))
    pan[30, 33] = 1.0

    def response(offsets: np.ndarray) -> np.ndarray:
        index = offsets + 8
        inside = (index >= 0) & (index < 17)
        return np.where(inside, kernel[index.clip(0, 16)], 0.0)

    kept = np.arange(2, 64, 4)
    expected = np.outer(response(kept - 30), response(kept - 33))
    np.testing.assert_allclose(spline_lowpass_decimate(pan, 4), expected, atol=1e-15)
    # on the first row: half-point symmetric extension mirrors it to row −1 (the toolbox's 'sym' mode)
    border = np.zeros((64, 64))
    border[0, 33] = 1.0
    expected = np.outer(response(kept) + response(kept + 1), response(kept - 33))
    np.testing.assert_allclose(spline_lowpass_decimate(border, 4), expected, atol=1e-15)


def test_mtf_glp_adds_pan_detail_with_regression_gains() -> None:
    ms, pan = _random_pair(7)
    gnyq = [0.34, 0.32, 0.30, 0.22]
    up = interp23tap(ms, RATIO)
    expected = np.empty_like(up)
    for k, g in enumerate(gnyq):  # the PAN as band k's sensor would see it, back at PAN size
        pan_lp = interp23tap(mtf_filter(pan[None], g, RATIO)[:, 2::4, 2::4], RATIO)[0]
        gain = np.cov(up[k].ravel(), pan_lp.ravel())[0, 1] / pan_lp.var(ddof=1)
        expected[k] = up[k] + gain * (pan - pan_lp)
    np.testing.assert_allclose(mtf_glp(ms, pan, RATIO, gnyq=gnyq), expected, rtol=1e-10)
    np.testing.assert_allclose(mtf_glp(ms, pan, RATIO, gnyq=sensor("qb")), expected, rtol=1e-10)


@pytest.mark.parametrize("method", [mtf_glp, mtf_glp_hpm])
def test_glp_returns_exp_when_the_pan_has_no_detail(method) -> None:
    ms, _ = _random_pair(8)
    np.testing.assert_allclose(method(ms, np.full((44, 52), 777.0), RATIO), interp23tap(ms, RATIO), rtol=1e-8)


def test_hpm_modulates_exp_by_the_pan_over_its_lowpass() -> None:
    ms = _smooth_scene(2, 16, 20, seed=9)
    up = interp23tap(ms, RATIO)
    pan = up.mean(0) + np.random.default_rng(9).normal(0, 40, up.shape[1:])  # smooth intensity + fine detail
    out = mtf_glp_hpm(ms, pan, RATIO, gnyq=[0.3, 0.2])
    modulation = out / up  # P_k / P_LP,k
    assert np.abs(modulation - 1).max() > 0.05  # the PAN does modulate ...
    assert np.abs(modulation.mean(axis=(1, 2)) - 1).max() < 0.01  # ... around 1
    # multiplicative: scaling the MS scales the result (the moment-matched PAN follows the band's mean and σ)
    np.testing.assert_allclose(mtf_glp_hpm(2.5 * ms, pan, RATIO, gnyq=[0.3, 0.2]), 2.5 * out, rtol=1e-9)


def test_hpm_follows_the_toolbox_recipe() -> None:
    ms = _smooth_scene(2, 12, 14, seed=11)
    up = interp23tap(ms, RATIO)
    pan = up.mean(0) + np.random.default_rng(11).normal(0, 30, up.shape[1:])
    # LPfilterGauss.m: GNyq 0.3 designed with N (not N − 1), so its gain is 0.3 at exactly 1/(2·ratio)
    lowpass = windowed_gaussian(41 / (2 * RATIO) / np.sqrt(-2 * np.log(0.3)), 41)
    offsets = np.arange(41) - 20
    assert (lowpass * np.cos(2 * np.pi * offsets / (2 * RATIO))[None, :]).sum() == pytest.approx(0.3, abs=2e-3)
    pan_spread = filter_same(pan, lowpass).std()
    expected = np.empty_like(up)
    for k, g in enumerate((0.33, 0.25)):
        pan_k = (pan - pan.mean()) * up[k].std() / pan_spread + up[k].mean()
        pan_lp = interp23tap(mtf_filter(pan_k[None], g, RATIO)[:, 2::4, 2::4], RATIO)[0]
        expected[k] = up[k] * pan_k / (pan_lp + np.finfo(np.float64).eps)
    np.testing.assert_allclose(mtf_glp_hpm(ms, pan, RATIO, gnyq=[0.33, 0.25]), expected, rtol=1e-10)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_invariant_to_pan_gain_and_offset(name: str) -> None:
    # moment matching (Brovey, GS, HPM), regression (GSA weights, GLP gains): a PAN in other units gives the same result
    ms, pan = _random_pair(10)
    method = BASELINES[name]
    # (atol: the 12-digit taps interpolate a constant to 1 − 4e-10 of itself, so an offset leaves ~1e-7 DN behind)
    np.testing.assert_allclose(method(ms, 0.37 * pan + 412.0, RATIO), method(ms, pan, RATIO), rtol=1e-9, atol=1e-5)


def test_wald_on_landsat8(data_dir: Path) -> None:
    rasterio = pytest.importorskip("rasterio")
    paths = sorted((data_dir / "landsat").glob("LC08_*_B[234].TIF"))
    assert [p.name[-6:] for p in paths] == ["B2.TIF", "B3.TIF", "B4.TIF"]
    window = ((616, 616 + 512), (1528, 1528 + 512))  # inside the scene, away from the nodata collar
    reference = np.stack([rasterio.open(p).read(1, window=window) for p in paths]).astype(np.float64)
    pair = degrade(reference, None, 0.3, RATIO)  # synthetic PAN: mean of B2, B3, B4 at 30 m
    inner = (slice(None), slice(21, -21), slice(21, -21))  # the toolbox's dim_cut border

    def rmse(name: str) -> float:
        return float(np.sqrt(((BASELINES[name](pair.ms, pair.pan, RATIO, gnyq=0.3) - reference)[inner] ** 2).mean()))

    errors = {name: rmse(name) for name in BASELINES}
    assert errors["mtf-glp-hpm"] < 0.5 * errors["exp"]
    assert all(errors[name] < 0.7 * errors["exp"] for name in BASELINES if name != "exp")
