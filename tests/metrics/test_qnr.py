"""Full-resolution metrics (D_lambda.m, D_s.m, QNR.m, D_lambda_K.m, HQNR.m) against loops over tiles written here,
and their wiring to the sensor MTF and the 23-tap interpolator."""

from __future__ import annotations

import numpy as np
import pytest

from rsinfer.metrics import d_lambda, d_lambda_khan, d_s, full_resolution, hqnr, q2n, qnr
from rsinfer.metrics.qnr import pan_low_pass
from rsinfer.metrics.resize import imresize_shrink
from rsinfer.pansharpening import interp23tap, mtf_filter
from rsinfer.sensors import sensor

S = 32


def _tile_q(x: np.ndarray, y: np.ndarray) -> float:
    """uqi of D_lambda.m / D_s.m: means and the sample covariance matrix of two tiles."""
    c = np.cov(x.ravel(), y.ravel())
    mx, my = x.mean(), y.mean()
    return float(4 * c[0, 1] * mx * my / (c[0, 0] + c[1, 1]) / (mx ** 2 + my ** 2))


def _mean_tile_q(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean([_tile_q(x[r:r + S, c:c + S], y[r:r + S, c:c + S])
                          for r in range(0, x.shape[0], S) for c in range(0, x.shape[1], S)]))


def _scene(bands: int, seed: int, rows: int = 64, cols: int = 96):
    """An MS at low resolution, its upsampling, a PAN correlated with it, and a 'fused' image in between."""
    rng = np.random.default_rng(seed)
    ms_lr = rng.uniform(300, 1500, (bands, rows // 4, cols // 4))
    ms_up = interp23tap(ms_lr, 4)
    detail = rng.normal(0, 80, (rows, cols))
    pan = ms_up.mean(axis=0) + detail
    fused = ms_up + rng.uniform(0.5, 1.0, (bands, 1, 1)) * detail + rng.normal(0, 20, ms_up.shape)
    return fused, ms_lr, ms_up, pan


def test_d_lambda_is_the_mean_pairwise_uiqi_difference():
    fused, _, ms_up, _ = _scene(4, 0)
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    expected = np.mean([abs(_mean_tile_q(fused[i], fused[j]) - _mean_tile_q(ms_up[i], ms_up[j])) for i, j in pairs])
    assert d_lambda(fused, ms_up) == pytest.approx(expected, rel=1e-10)
    assert d_lambda(ms_up, ms_up) == 0.0


def test_d_s_compares_against_the_pan_and_its_low_pass_version():
    fused, _, ms_up, pan = _scene(3, 1)
    pan_lp = interp23tap(imresize_shrink(pan, 4)[None], 4)[0]          # interp23tap(imresize(PAN, 1/4), 4)
    np.testing.assert_array_equal(pan_low_pass(pan, 4), pan_lp)
    expected = np.mean([abs(_mean_tile_q(fused[b], pan) - _mean_tile_q(ms_up[b], pan_lp)) for b in range(3)])
    assert d_s(fused, ms_up, pan, 4) == pytest.approx(expected, rel=1e-10)
    assert d_s(fused, ms_up, pan[None], 4) == d_s(fused, ms_up, pan, 4)        # (1, H, W) PAN accepted


def test_the_low_pass_pan_of_a_smooth_pan_is_it_shifted_by_half_a_pixel():
    # imresize centres low-resolution pixel i at 4i + 1.5, interp23tap puts sample i back at 4i + 2: the toolbox's
    # P_LP is the PAN blurred and shifted by +0.5 pixel on both axes, and we keep that.
    rows, cols = np.mgrid[0:64, 0:64].astype(float)

    def smooth(r, c):
        return 1000 + 300 * np.sin(r / 9.0) * np.cos(c / 11.0)

    low_pass = pan_low_pass(smooth(rows, cols), 4)[12:-12, 12:-12]
    shifted = smooth(rows - 0.5, cols - 0.5)[12:-12, 12:-12]
    assert np.abs(low_pass - shifted).max() < 3.0
    assert np.abs(low_pass - smooth(rows, cols)[12:-12, 12:-12]).max() > 10.0


def test_qnr_combines_the_two_distortions():
    fused, _, ms_up, pan = _scene(4, 2)
    assert qnr(fused, ms_up, pan, 4) == pytest.approx(
        (1 - d_lambda(fused, ms_up)) * (1 - d_s(fused, ms_up, pan, 4)), rel=1e-15)


def test_d_lambda_khan_filters_the_fused_image_with_the_sensor_mtf():
    fused, _, ms_up, pan = _scene(8, 3)
    gnyq = [b.gnyq for b in sensor("wv3").bands]
    assert d_lambda_khan(fused, ms_up, gnyq, 4) == pytest.approx(1 - q2n(mtf_filter(fused, gnyq, 4), ms_up), rel=1e-15)
    # if the upsampled MS is exactly the MTF-filtered fused image, there is no spectral distortion
    assert d_lambda_khan(fused, mtf_filter(fused, gnyq, 4), gnyq, 4) == pytest.approx(0.0, abs=1e-12)
    assert d_lambda_khan(fused, mtf_filter(fused, 0.15, 4), gnyq, 4) > 1e-3        # a different MTF is seen
    assert hqnr(fused, ms_up, pan, gnyq, 4) == pytest.approx(
        (1 - d_lambda_khan(fused, ms_up, gnyq, 4)) * (1 - d_s(fused, ms_up, pan, 4)), rel=1e-15)


def test_full_resolution_report():
    fused, ms_lr, ms_up, pan = _scene(4, 4)
    report = full_resolution(fused, ms_lr, None, pan, "quickbird")
    gnyq = [0.34, 0.32, 0.30, 0.22]                                   # genMTF.m, QB
    assert report == pytest.approx({
        "D_lambda": d_lambda(fused, ms_up), "D_s": d_s(fused, ms_up, pan, 4),
        "QNR": qnr(fused, ms_up, pan, 4), "D_lambda_K": d_lambda_khan(fused, ms_up, gnyq, 4),
        "HQNR": hqnr(fused, ms_up, pan, gnyq, 4)}, rel=1e-14)
    assert full_resolution(fused, ms_lr, ms_up, pan, sensor("qb")) == report      # ms_up None = interp23tap(ms_lr)


def test_full_resolution_selects_sensor_bands_by_name():
    fused, ms_lr, ms_up, pan = _scene(3, 5, rows=64, cols=64)
    landsat = full_resolution(fused, ms_lr, ms_up, pan, "landsat-8", ratio=4, bands=["B2", "B3", "B4"])
    assert landsat["D_lambda_K"] == pytest.approx(d_lambda_khan(fused, ms_up, [0.3] * 3, 4), rel=1e-15)
    with pytest.raises(ValueError, match="the image has 3 bands but landsat-8 gives 8"):
        full_resolution(fused, ms_lr, ms_up, pan, "landsat-8")


def test_full_resolution_threshold_clips_the_fused_image():
    fused, ms_lr, ms_up, pan = _scene(4, 6)
    fused[0, :5] = -50.0
    fused[1, 10:20] = 5000.0
    clipped = full_resolution(np.clip(fused, 0, 2048), ms_lr, ms_up, pan, "qb")
    assert full_resolution(fused, ms_lr, ms_up, pan, "qb", threshold=True, bits=11) == clipped
    assert full_resolution(fused, ms_lr, ms_up, pan, "qb") != clipped


def test_full_resolution_input_errors():
    fused, ms_lr, ms_up, pan = _scene(4, 7)
    with pytest.raises(ValueError, match="upsampled by the ratio 2"):
        full_resolution(fused, ms_lr, ms_up, pan, "qb", ratio=2)
    with pytest.raises(ValueError, match="multiples of the block size 32"):
        d_lambda(fused[:, :48], ms_up[:, :48])
    with pytest.raises(ValueError, match="pan .* must have the fused image's rows and cols"):
        d_s(fused, ms_up, pan[:32], 4)
    with pytest.raises(ValueError, match="at least 2 bands"):
        d_lambda(fused[:1], ms_up[:1])
