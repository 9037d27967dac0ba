"""Wald-protocol degradation (resize_images.m): MTF filter, nearest decimation offset, PAN MTF, synthetic PAN."""

from __future__ import annotations

import numpy as np
import pytest

from rsinfer.pansharpening.interpolation import interp23tap
from rsinfer.pansharpening.mtf import mtf_filter
from rsinfer.pansharpening.wald import decimate, degrade, synthetic_pan
from rsinfer.sensors import sensor


@pytest.mark.parametrize("ratio, first", [(2, 1), (4, 2), (8, 4), (3, 1)])
def test_decimate_keeps_matlab_nearest_pixels(ratio: int, first: int) -> None:
    # imresize(·, 1/r, 'nearest'): output u (1-based) reads input round-up(r·u + (1 − r)/2) → 0-based r·i + ⌊r/2⌋
    image = np.arange(4 * ratio * 5 * ratio, dtype=np.float64).reshape(4 * ratio, 5 * ratio)
    out = decimate(image, ratio)
    assert out.shape == (4, 5)
    rows, cols = np.meshgrid(np.arange(4), np.arange(5), indexing="ij")
    np.testing.assert_array_equal(out, image[ratio * rows + first, ratio * cols + first])


def test_decimation_is_aligned_with_interp23tap() -> None:
    lr = np.random.default_rng(1).uniform(0, 2047, (2, 6, 9))
    np.testing.assert_array_equal(decimate(interp23tap(lr, 4), 4), lr)


def test_degrade_is_mtf_then_decimation() -> None:
    rng = np.random.default_rng(2)
    ms = rng.uniform(0, 2047, (4, 24, 32))
    pan = rng.uniform(0, 2047, (96, 128))
    qb = sensor("quickbird")
    pair = degrade(ms, pan, qb, 4)
    assert pair.ms.shape == (4, 6, 8) and pair.pan.shape == (24, 32)
    np.testing.assert_allclose(pair.ms, mtf_filter(ms, [0.34, 0.32, 0.30, 0.22], 4)[:, 2::4, 2::4], rtol=1e-12)
    np.testing.assert_allclose(pair.pan, mtf_filter(pan[None], 0.15, 4)[0, 2::4, 2::4], rtol=1e-12)  # QB PAN GNyq
    wv3 = degrade(ms[:1].repeat(8, 0), pan, sensor("wv3"), 4)
    np.testing.assert_allclose(wv3.pan, mtf_filter(pan[None], 0.14, 4)[0, 2::4, 2::4], rtol=1e-12)
    explicit = degrade(ms, pan, [0.3] * 4, 4, pan_gnyq=0.2)
    np.testing.assert_allclose(explicit.pan, mtf_filter(pan[None], 0.2, 4)[0, 2::4, 2::4], rtol=1e-12)


def test_impulse_stays_on_its_lr_pixel() -> None:
    # a bright HR pixel at r·i + r/2 is the centre of LR pixel i: after the symmetric blur it stays the maximum there
    ms = np.zeros((1, 32, 32))
    ms[0, 4 * 3 + 2, 4 * 5 + 2] = 1000.0
    lr = degrade(ms, None, 0.3, 4).ms[0]
    assert np.unravel_index(lr.argmax(), lr.shape) == (3, 5)
    np.testing.assert_allclose(lr[3, 4], lr[3, 6])  # symmetric neighbours, so no half-pixel shift
    np.testing.assert_allclose(lr[2, 5], lr[4, 5])


def test_constant_scene_stays_constant() -> None:
    ms = np.stack([np.full((16, 20), v) for v in (300.0, 420.0, 515.0)])
    pair = degrade(ms, np.full((64, 80), 700.0), [0.3, 0.25, 0.2], 4)
    np.testing.assert_allclose(pair.ms, np.broadcast_to(np.array([300.0, 420.0, 515.0])[:, None, None], (3, 4, 5)))
    np.testing.assert_allclose(pair.pan, 700.0)


def test_synthetic_pan_is_the_mean_of_the_visible_bands() -> None:
    rng = np.random.default_rng(4)
    ms = rng.uniform(0, 65535, (3, 8, 12))
    landsat = sensor("landsat-8")
    np.testing.assert_allclose(synthetic_pan(ms, landsat.select(["B2", "B3", "B4"])), ms.mean(axis=0))
    np.testing.assert_allclose(synthetic_pan(ms, landsat.select(["B2", "B5", "B4"])), (ms[0] + ms[2]) / 2)  # no NIR
    np.testing.assert_allclose(synthetic_pan(ms), ms.mean(axis=0))
    with pytest.raises(ValueError, match="no visible band"):
        synthetic_pan(ms, landsat.select(["B5", "B6", "B7"]))
    with pytest.raises(ValueError, match="no visible band"):
        synthetic_pan(ms[:2], sensor("sentinel-1").bands)
    with pytest.raises(ValueError, match="2 band descriptions for an MS with 3 bands"):
        synthetic_pan(ms, landsat.select(["B2", "B3"]))


def test_degrade_without_pan_synthesises_it_at_the_reference_scale() -> None:
    ms = np.random.default_rng(5).uniform(0, 2047, (4, 16, 16))
    pair = degrade(ms, None, sensor("qb"), 4)
    assert pair.ms.shape == (4, 4, 4)
    np.testing.assert_allclose(pair.pan, ms[:3].mean(axis=0))  # QB blue, green, red are visible; NIR is not


def test_bad_inputs() -> None:
    ms = np.zeros((3, 16, 16))
    with pytest.raises(ValueError, match="multiples of it; crop to 16×12"):
        degrade(np.zeros((3, 16, 14)), None, 0.3, 4)
    with pytest.raises(ValueError, match=r"needs PAN \(64, 64\), got \(64, 60\)"):
        degrade(ms, np.zeros((64, 60)), 0.3, 4)
    with pytest.raises(ValueError, match="no MTF gains"):
        degrade(ms, None, sensor("sentinel-2"), 4)
    with pytest.raises(ValueError, match="4 MS bands, the image has 3"):
        degrade(ms, None, sensor("qb"), 4)
    with pytest.raises(ValueError, match="ratio must be an integer ≥ 2"):
        degrade(ms, None, 0.3, 1)
