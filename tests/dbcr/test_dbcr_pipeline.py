"""DB-CR preprocessing, the pipeline's sampling loop, a real Sen1Floods11 scene, and the `decloud` CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
import torch
from rasterio.warp import Resampling, calculate_default_transform, reproject
from rasterio.windows import Window

from rsinfer.cli import main
from rsinfer.models.dbcr import build
from rsinfer.pipelines.dbcr import DbCr, SamplingPlan
from rsinfer.pipelines.sentinel import (L1C_BANDS, L2A_B10_FILL, canonical_band, denormalise_s2, detect_s1_scale,
                                        normalise_s1, normalise_s2, s2_layout)

MICRO = dict(widths=(4, 8, 16, 32), encoder_blocks=(1, 1, 1, 1), decoder_blocks=(1, 1, 1, 1), time_dim=8,
             time_pe_dim=8)
S2_NAME, S1_NAME = "Spain_7370579_S2Hand.tif", "Spain_7370579_S1Hand.tif"


# --- preprocessing -------------------------------------------------------------------------------------------------

def test_band_names_are_canonicalised() -> None:
    assert [canonical_band(n) for n in ("B02", "b2", "B8a", "B8A", "B10", "B02 (490 nm)", "VV", None, "")] == \
        ["B2", "B2", "B8A", "B8A", "B10", "B2", None, None, None]


def test_l1c_and_l2a_layouts() -> None:
    assert s2_layout(13).slots == tuple(range(13))
    shuffled = ["B12", "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11"]
    layout = s2_layout(12, shuffled)
    assert layout.level == "L2A" and layout.input_bands == tuple(canonical_band(b) for b in shuffled)
    assert 10 not in layout.slots  # B10 has no input band
    assert s2_layout(12).input_bands == tuple(b for b in L1C_BANDS if b != "B10")
    with pytest.raises(ValueError, match="13 .L1C. or 12"):
        s2_layout(11)
    with pytest.raises(ValueError, match="exactly once"):
        s2_layout(12, shuffled[:-1] + ["B10"])


def test_s2_normalisation_round_trip_and_b10_fill() -> None:
    layout = s2_layout(12, ["B12", "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11"])
    dn = torch.randint(-500, 12000, (2, 12, 5, 6)).float()
    x = normalise_s2(dn, layout)
    assert x.shape == (2, 13, 5, 6)
    assert torch.equal(x[:, 10], torch.full((2, 5, 6), L2A_B10_FILL))
    assert torch.equal(x[:, 12], dn[:, 0].clamp(0, 10000) / 10000)  # B12 came first in the file
    torch.testing.assert_close(denormalise_s2(x, layout), dn.clamp(0, 10000), rtol=0, atol=1e-3)


def test_s1_normalisation_known_values_and_linear_input() -> None:
    db = torch.tensor([[-25.0, -12.5, 0.0, 3.0], [-32.5, -16.25, 0.0, -40.0]])[None, :, None, :]  # (1, 2, 1, 4)
    expected = torch.tensor([[0.0, 0.5, 1.0, 1.0], [0.0, 0.5, 1.0, 0.0]])[None, :, None, :]
    torch.testing.assert_close(normalise_s1(db, "dB"), expected)
    torch.testing.assert_close(normalise_s1(10 ** (db / 10), "linear"), expected, rtol=0, atol=1e-6)


def test_s1_scale_is_detected_on_real_data(data_dir) -> None:
    with rasterio.open(data_dir / "sen1floods11" / S1_NAME) as src:
        vv = torch.from_numpy(src.read(1))
    assert detect_s1_scale(vv) == "dB"
    assert detect_s1_scale(10 ** (vv / 10)) == "linear"
    with pytest.raises(ValueError, match="no valid pixel in VV"):
        detect_s1_scale(torch.full((4, 4), float("nan")))


# --- the sampling loop -------------------------------------------------------------------------------------------

class RecordingNet(torch.nn.Module):
    """Wraps a network and records the times it is called at."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net, self.config, self.times = net, net.config, []

    def forward(self, x_t, sar, t):
        self.times.append(t.clone())
        return self.net(x_t, sar, t)


def test_one_step_is_the_network_at_t_max() -> None:
    net = build(**MICRO).eval()
    y, sar = torch.rand(2, 13, 20, 12), torch.rand(2, 2, 20, 12)
    with torch.no_grad():
        expected = net(y, sar, torch.full((2,), 1000.0))
    assert torch.equal(DbCr(net, tile=32).restore(y, sar), expected)


@pytest.mark.parametrize("sampler", ["alpha-ratio", "i2sb-ode", "dbim"])
def test_network_time_carries_the_schedules_alpha(sampler: str) -> None:
    recorder = RecordingNet(build(**MICRO).eval())
    pipe = DbCr(recorder, SamplingPlan(sampler, 3), tile=32)
    y, sar = torch.rand(1, 13, 16, 16), torch.rand(1, 2, 16, 16)
    pipe.restore(y, sar)
    times = torch.cat(pipe.engine.net.times).double()  # the engine runs its own copy of the network
    grid = torch.tensor([1.0, 2 / 3, 1 / 3], dtype=torch.float64)
    torch.testing.assert_close(torch.sin(math.pi * times / 2000), pipe.schedule.alpha(grid), rtol=0, atol=1e-6)
    if sampler == "alpha-ratio":
        torch.testing.assert_close(times, grid * 1000, rtol=0, atol=1e-3)


def test_alpha_ratio_loop_matches_the_update_by_hand() -> None:
    net = build(**MICRO).eval()
    y, sar = torch.rand(1, 13, 16, 24), torch.rand(1, 2, 16, 24)
    x = y
    with torch.no_grad():
        for t, s in ((1.0, 0.5), (0.5, 0.0)):
            x0 = net(x, sar, torch.tensor([1000 * t]))
            ratio = math.sin(math.pi * s / 2) / math.sin(math.pi * t / 2)
            x = (1 - ratio) * x0 + ratio * x
    torch.testing.assert_close(DbCr(net, SamplingPlan("alpha-ratio", 2), tile=32).restore(y, sar), x, rtol=1e-5,
                               atol=1e-6)


def test_sampling_plan_is_validated() -> None:
    with pytest.raises(ValueError, match="unknown sampler"):
        SamplingPlan("ddim")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="steps"):
        SamplingPlan(steps=0)
    with pytest.raises(ValueError, match="dbim sampler only"):
        SamplingPlan("alpha-ratio", eta=0.5)


# --- whole scenes ------------------------------------------------------------------------------------------------

def identity_network() -> torch.nn.Module:
    """A network whose head is zero, so x̂0 = x_t (the global residual): the scene output must equal the input DN."""
    net = build(**MICRO).eval()
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
    return net


def _expected_dn(s2_path, valid_extra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    with rasterio.open(s2_path) as src:
        dn = src.read().astype(np.float64)
        valid = (dn != src.nodata).all(axis=0)
    if valid_extra is not None:
        valid &= valid_extra
    return np.clip(dn, 0, 10000), valid


def test_real_scene_writes_13_bands_on_the_s2_grid(data_dir, tmp_path) -> None:
    s2, s1 = data_dir / "sen1floods11" / S2_NAME, data_dir / "sen1floods11" / S1_NAME
    pipe = DbCr(identity_network(), SamplingPlan("alpha-ratio", 2), tile=256, batch_size=4)
    summary = pipe.run_scene(s2, s1, tmp_path / "clear.tif", preview=tmp_path / "clear.png", progress=False)
    assert summary.tiles_run == 9
    with rasterio.open(s2) as src, rasterio.open(tmp_path / "clear.tif") as out:
        assert (out.count, out.crs, out.transform, out.shape) == (13, src.crs, src.transform, src.shape)
        assert out.dtypes == src.dtypes and out.nodata == src.nodata
        assert out.descriptions == L1C_BANDS
        assert out.tags()["weights"] == "random" and out.tags()["s1_scale"] == "dB"
        written = out.read().astype(np.float64)
    expected, valid = _expected_dn(s2)
    assert valid.mean() > 0.5
    np.testing.assert_array_equal(written[:, valid], expected[:, valid])
    assert (tmp_path / "clear.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_s1_on_another_crs_is_resampled_onto_the_s2_grid(data_dir, tmp_path) -> None:
    s2, s1 = data_dir / "sen1floods11" / S2_NAME, data_dir / "sen1floods11" / S1_NAME
    window = Window(100, 150, 96, 80)
    small_s2, utm_s1 = tmp_path / "s2.tif", tmp_path / "s1_utm.tif"
    with rasterio.open(s2) as src:
        profile = {**src.profile, "width": 96, "height": 80, "transform": src.window_transform(window)}
        with rasterio.open(small_s2, "w", **profile) as dst:
            dst.write(src.read(window=window))
            dst.descriptions = src.descriptions
    with rasterio.open(s1) as src:
        transform, width, height = calculate_default_transform(src.crs, "EPSG:32630", src.width, src.height,
                                                               *src.bounds)
        with rasterio.open(utm_s1, "w", **{**src.profile, "crs": "EPSG:32630", "transform": transform,
                                           "width": width, "height": height}) as dst:
            for band in (1, 2):
                reproject(rasterio.band(src, band), rasterio.band(dst, band), resampling=Resampling.bilinear)
    pipe = DbCr(identity_network(), tile=128, batch_size=2)
    pipe.run_scene(small_s2, utm_s1, tmp_path / "out.tif", progress=False)
    with rasterio.open(small_s2) as src, rasterio.open(tmp_path / "out.tif") as out:
        assert (out.crs, out.transform, out.shape, out.count) == (src.crs, src.transform, src.shape, 13)
        written = out.read().astype(np.float64)
    expected, valid = _expected_dn(small_s2)
    covered = written[0] != 0  # S1 covers the whole crop except possibly a rim left as nodata
    assert covered[valid].mean() > 0.95
    np.testing.assert_array_equal(written[:, valid & covered], expected[:, valid & covered])


def test_decloud_cli_with_random_weights(data_dir, tmp_path, monkeypatch, capsys) -> None:
    s2, s1 = data_dir / "sen1floods11" / S2_NAME, data_dir / "sen1floods11" / S1_NAME
    crops = {}
    for name, path in (("s2", s2), ("s1", s1)):
        with rasterio.open(path) as src:
            window = Window(200, 200, 40, 56)
            crops[name] = tmp_path / f"{name}.tif"
            with rasterio.open(crops[name], "w", **{**src.profile, "width": 40, "height": 56,
                                                    "transform": src.window_transform(window)}) as dst:
                dst.write(src.read(window=window))
    monkeypatch.setenv("RSINFER_CACHE_DIR", str(tmp_path / "cache"))
    code = main(["declould", "--s2", str(crops["s2"]), "--s1", str(crops["s1"]), "--out", str(tmp_path / "c.tif"),
                 "--random-weights", "--steps", "2", "--tile", "64", "--overlap", "16", "--batch-size", "1"])
    assert code == 0 and "RANDOM WEIGHTS" in capsys.readouterr().out
    with rasterio.open(tmp_path / "c.tif") as out:
        values = out.read()
        assert out.count == 13 and out.shape == (56, 40) and out.tags()["steps"] == "2"
    assert values.min() >= 0 and values.max() <= 10000 and values.std() > 0
    assert main(["decloud", "--s2", str(crops["s2"]), "--s1", str(crops["s1"]), "--out", str(tmp_path / "d.tif")]) == 2
    assert "no published weights" in capsys.readouterr().err
