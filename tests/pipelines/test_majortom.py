"""Major TOM thumbnail renderings against independent numpy re-derivations of the published recipes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rsinfer.pipelines.majortom import dem_rendering, rendering_to_raster, s1_rendering, s2_rendering


def test_s2_rendering_matches_recipe() -> None:
    dn = torch.randint(-50, 14000, (3, 37, 41)).float()
    expected = (np.clip(1.3 * (np.clip(dn.numpy(), 0, None) / 10000.0) ** 0.6, 0, 1) * 255).astype(np.uint8)
    got = s2_rendering(dn) * 255
    assert np.abs(got.numpy() - expected).max() <= 1.0 + 1e-4  # the same 8-bit level, up to a rounding boundary
    assert (np.abs(got.numpy() - expected) > 1e-3).mean() < 0.01


def _majortom_s1(vv: np.ndarray, vh: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The published S1 RTC thumbnail: linear → dB, per-band min-max over valid pixels, (VV, VV+VH, VH)."""
    def band(b):
        b = b.copy()
        b[b < 0] = b[(b >= 0) & valid].min()
        db = 10 * np.log10(b)
        scaled = (db - db[valid].min()) / (db[valid].max() - db[valid].min()) * 255
        scaled[~valid] = 0
        return scaled
    v, h = band(vv), band(vh)
    return np.stack([v, 255 * (v + h) / np.max(v + h), h]).astype(np.uint8)


def test_s1_rendering_matches_recipe_for_linear_and_db_inputs() -> None:
    g = torch.Generator().manual_seed(0)
    linear = torch.rand(2, 33, 29, generator=g).double() ** 3 * 0.5 + 1e-4
    linear[0, 3, 4] = -0.01  # a negative value (noise floor)
    valid = torch.ones(33, 29, dtype=torch.bool)
    valid[:5, :7] = False
    expected = _majortom_s1(linear[0].numpy(), linear[1].numpy(), valid.numpy())
    from_linear = s1_rendering(linear.float(), "linear", valid) * 255
    assert np.abs(from_linear.numpy() - expected).max() <= 1.0 + 1e-3
    assert (from_linear[:, ~valid] == 0).all()
    db = 10 * torch.log10(linear.clamp_min(1e-4)).float()
    db[:, ~valid] = float("nan")  # nodata as NaN, no mask given
    clean = linear.clone()
    clean[0, 3, 4] = 1e-4
    expected_db = _majortom_s1(clean[0].numpy(), clean[1].numpy(), valid.numpy())
    for scale in ("dB", "auto"):
        got = s1_rendering(db, scale) * 255
        assert np.abs(got.numpy() - expected_db).max() <= 1.0 + 1e-3


def _hillshade(z: np.ndarray) -> np.ndarray:
    """Hillshade with light from azimuth 315°, altitude 45°, unit pixel spacing, min-max stretched."""
    e_dy, e_dx = np.gradient(z, -1.0, 1.0)
    normal = np.stack([-e_dx, -e_dy, np.ones_like(z)], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    az, alt = np.radians(90 - 315), np.radians(45)
    intensity = normal @ np.array([np.cos(az) * np.cos(alt), np.sin(az) * np.cos(alt), np.sin(alt)])
    return np.clip((intensity - intensity.min()) / (intensity.max() - intensity.min()), 0, 1)


def test_dem_hillshade() -> None:
    rows, cols = np.mgrid[0:40, 0:50]
    z = 30 * np.sin(rows / 7.0) * np.cos(cols / 9.0) + 0.5 * rows
    got = dem_rendering(torch.from_numpy(z)[None])
    assert got.shape == (3, 40, 50) and torch.equal(got[0], got[2])
    assert np.abs(got[0].numpy() - _hillshade(z)).max() <= 1 / 255 + 1e-6
    # A plane facing the light is brighter than one facing away; a flat plane shades uniformly.
    plane = dem_rendering(torch.zeros(8, 8))
    assert float(plane.std()) == 0.0
    slope = 2.0  # z rises to the east: the surface faces west, towards the north-west light
    expected = (0.5 * slope + math.sqrt(0.5)) / math.sqrt(1 + slope ** 2)
    east = dem_rendering(torch.from_numpy(slope * cols[:8, :8].astype(np.float64)))
    assert abs(float(east[0, 4, 4]) - expected) <= 1 / 255


def test_rendering_to_raster() -> None:
    image = torch.rand(3, 9, 11)
    bands, descriptions = rendering_to_raster(image, "s2_l2a")
    assert bands.dtype == torch.uint8 and torch.equal(bands, torch.round(image * 255).to(torch.uint8))
    assert len(descriptions) == 3 and "rendering" in descriptions[0]
    dem, _ = rendering_to_raster(image, "dem")
    assert dem.shape == (1, 9, 11) and torch.equal(dem[0], torch.round(image.mean(0) * 255).to(torch.uint8))


@pytest.mark.parametrize("call, message", [
    (lambda: s2_rendering(torch.rand(4, 5, 5)), "B4, B3, B2"),
    (lambda: s1_rendering(torch.rand(3, 5, 5)), "VV, VH"),
    (lambda: s1_rendering(torch.rand(2, 5, 5), "decibel"), "unknown S1 scale"),
    (lambda: s1_rendering(torch.full((2, 5, 5), float("nan"))), "no valid pixel"),
    (lambda: dem_rendering(torch.rand(2, 5, 5)), r"\(H, W\)"),
    (lambda: rendering_to_raster(torch.rand(3, 5, 5), "sar"), "unknown modality"),
])
def test_bad_inputs_raise(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call()
