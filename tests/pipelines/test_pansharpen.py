"""The ``pansharpen`` pipeline (`rsinfer.pipelines.pansharpen`) on a real-data Wald pair: grids, exactness against
CrossDiff run directly, tiles against the whole image, DN scale and its warning, weights directories, bad input.

The pair: a crop of the bundled Landsat 8 scene (B2, B3, B4, uint16 DN) is the reference; the MS is that crop
MTF-degraded and decimated by 4 (`rsinfer.pansharpening.degrade`), the PAN is SYNTHETIC (the mean of the three
bands at the reference scale). Both are written as GeoTIFFs with the crop's transform (PAN, 30 m) and that transform
with 4x larger pixels (MS, 120 m), same origin.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from rasterio.windows import Window as RioWindow

from rsinfer import models
from rsinfer.io import OutputOptions
from rsinfer.pansharpening import degrade
from rsinfer.pipelines import CrossDiff, PipelineSpec, Tiling, build, run
from rsinfer.pipelines.pansharpen import Pansharpen, random_networks
from rsinfer.sensors import sensor
from tests.models.test_crossdiff import (official_fusion_shapes, official_unet_shapes, random_state_dict,
                                         wrapper_state_dict)

LANDSAT = "landsat/LC08_L1TP_224078_20200518_20200518_01_RT_{}.TIF"
BANDS = ("B2", "B3", "B4")
ORIGIN = (600, 700)  # rows, cols of the crop, inside the scene's valid area
SMALL = {"channels": [8, 32, 32, 64], "inner_channel": 8}  # the smallest widths the official GroupNorms allow
L8_SCALE = 65535.0


@dataclasses.dataclass(frozen=True)
class WaldPair:
    pan_path: Path
    ms_path: Path
    pan: np.ndarray  # (H, W) float32
    ms: np.ndarray  # (3, H/4, W/4) float32
    reference: np.ndarray  # (3, H, W) float64 DN


def landsat_reference(data_dir: Path, size: int, origin: tuple[int, int] = ORIGIN) -> tuple[np.ndarray, Affine, object]:
    """(3, size, size) float64 DN of B2, B3, B4 at `origin`, with the crop's transform and CRS."""
    bands = []
    for band in BANDS:
        with rasterio.open(data_dir / LANDSAT.format(band)) as src:
            window = RioWindow(origin[1], origin[0], size, size)
            bands.append(src.read(1, window=window).astype(np.float64))
            transform, crs = src.window_transform(window), src.crs
    return np.stack(bands), transform, crs


def landsat_subset():
    l8 = sensor("landsat-8")
    return dataclasses.replace(l8, bands=l8.select(BANDS))


def write_raster(path: Path, values: np.ndarray, transform: Affine, crs, dtype: str = "float32",
                 nodata: float | None = None) -> Path:
    with rasterio.open(path, "w", driver="GTiff", count=values.shape[0], height=values.shape[1],
                       width=values.shape[2], dtype=dtype, crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(values.astype(dtype))
    return path


def write_wald_pair(data_dir: Path, directory: Path, size: int, dtype: str = "float32") -> WaldPair:
    """The Landsat Wald pair (see the module docstring) as GeoTIFFs in `directory`."""
    reference, transform, crs = landsat_reference(data_dir, size)
    pair = degrade(reference, None, landsat_subset())
    pan, ms = (np.rint(a) if np.dtype(dtype).kind in "iu" else a for a in (pair.pan, pair.ms))
    pan, ms = pan.astype(np.float32), ms.astype(np.float32)
    return WaldPair(write_raster(directory / "pan.tif", pan[None], transform, crs, dtype),
                    write_raster(directory / "ms.tif", ms, transform @ Affine.scale(4), crs, dtype),
                    pan, ms, reference)


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> WaldPair:
    from tests.conftest import DATA

    return write_wald_pair(DATA, tmp_path_factory.mktemp("wald"), 128)


def small_pipeline(**options) -> Pansharpen:
    return build(PipelineSpec("pansharpen", "random:3", {"sensor": "landsat-8", "seed": 5, "network": SMALL,
                                                         **options}))


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read().astype(np.float64)


def direct(pipe: Pansharpen, pan: np.ndarray, ms: np.ndarray) -> np.ndarray:
    return pipe.sharpen_dn(torch.from_numpy(pan)[None, None], torch.from_numpy(ms)[None])[0].double().numpy()


# ---- the scene against CrossDiff itself ----------------------------------------------------------------------------

def test_one_tile_scene_equals_crossdiff_on_the_arrays(pair, tmp_path) -> None:
    """The whole scene as one tile: the MS footprint read at 1/4 and the window-seeded noise give exactly what
    `CrossDiff.sharpen` gives on the arrays, with plain (not engine-served) networks seeded like the pipeline's."""
    pipe = small_pipeline()
    out = tmp_path / "sharp.tif"
    summary = run(pipe, {"pan": pair.pan_path, "ms": pair.ms_path}, out, tiling=Tiling(128, 0, "cosine", 1),
                  progress=False)
    assert summary.tiles_run == 1 and summary.shape == (3, 128, 128)
    p2m, m2p, fusion = random_networks(3, 3, SMALL)
    result = CrossDiff(p2m, m2p, fusion, dn_scale=L8_SCALE, seed=5).sharpen(
        torch.from_numpy(pair.pan)[None, None], torch.from_numpy(pair.ms)[None])
    expected = (result.sr[0] * L8_SCALE).double().numpy()
    written = read(out)
    np.testing.assert_allclose(written, expected, rtol=1e-6, atol=1e-6 * L8_SCALE)
    # the networks did something: the output is not the bicubic MS alone
    assert np.abs(expected - result.ms_up[0].double().numpy() * L8_SCALE).mean() > 10
    with rasterio.open(pair.pan_path) as pan, rasterio.open(out) as sharp:
        assert (sharp.crs, sharp.transform, sharp.shape, sharp.count) == (pan.crs, pan.transform, pan.shape, 3)
        assert sharp.dtypes == ("float32",) * 3 and np.isnan(sharp.nodata)
        tags = sharp.tags()
    assert tags["RSINFER_PIPELINE"] == "pansharpen" and tags["RSINFER_MODEL"] == "CrossDiff"
    assert (tags["RSINFER_SEED"], tags["RSINFER_DN_SCALE"], tags["RSINFER_SENSOR"]) == ("5", "65535", "landsat-8")
    assert tags["RSINFER_ENGINE"] == "torch" and tags["RSINFER_PRECISION"] == "float32"


def test_tiles_agree_with_the_whole_image(pair, tmp_path) -> None:
    """cSE pools over the whole tile, so tiles cannot reproduce the whole image exactly. Measured (small random
    networks, 64² tiles on the 128² pair; seeds 3 / 4): with a 16-pixel cosine overlap the residual sr − MS_up
    changes by 5.3e-3 / 1.7e-3 of its norm, without overlap by 4.1e-2 / 3.5e-2 (the convolutions' zero padding at the
    tile edges); a 24-pixel crop overlap leaves 4.8e-3 / 1.1e-3, the part the tiles' own cSE statistics cause. The
    test allows 1e-2 with overlap and requires the overlap to remove most of the edge error (3x)."""
    pipe = small_pipeline()
    whole = direct(pipe, pair.pan, pair.ms)
    ms_up = pipe.crossdiff(3).sharpen(torch.from_numpy(pair.pan)[None, None],
                                      torch.from_numpy(pair.ms)[None]).ms_up[0].double().numpy() * L8_SCALE
    changes = {}
    for overlap in (0, 16):
        out = tmp_path / f"tiled_{overlap}.tif"
        summary = run(pipe, {"pan": pair.pan_path, "ms": pair.ms_path}, out,
                      tiling=Tiling(64, overlap, "cosine", 2), progress=False)
        assert summary.tiles_run == (4 if overlap == 0 else 9)
        changes[overlap] = np.linalg.norm(read(out) - whole) / np.linalg.norm(whole - ms_up)
    assert changes[16] < 1e-2
    assert changes[0] > 3 * changes[16]


def test_batch_size_does_not_change_the_output(pair, tmp_path) -> None:
    pipe = small_pipeline()
    outputs = []
    for batch in (1, 3):
        out = tmp_path / f"b{batch}.tif"
        run(pipe, {"pan": pair.pan_path, "ms": pair.ms_path}, out, tiling=Tiling(64, 16, "cosine", batch),
            progress=False)
        outputs.append(read(out))
    np.testing.assert_allclose(*outputs, rtol=1e-6)  # convolutions round differently per batch size


# ---- DN scale, data types ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("options, scale", [({}, 2047.0), ({"sensor": "WorldView-3"}, 2047.0),
                                            ({"sensor": "gf2"}, 1023.0), ({"sensor": "pleiades"}, 4095.0),
                                            ({"dn_scale": 1000}, 1000.0)])
def test_dn_scale_comes_from_the_sensor_or_the_option(options, scale) -> None:
    pipe = build(PipelineSpec("pansharpen", "random:0", {"network": SMALL, **options}))
    assert pipe.dn_scale == scale
    assert pipe.crossdiff(4).dn_scale == scale


@pytest.mark.parametrize("options, message", [
    ({"sensor": "wv3", "dn_scale": 2047}, "not both"),
    ({"sensor": "sentinel-1"}, "no PAN band"),
    ({"sensor": "spot-42"}, "unknown sensor"),
    ({"dn_scale": 0}, "positive"),
    ({"network": {"width": 8}}, "unknown CrossDiff network option"),
    ({"engine": "tvm"}, "choose one of"),
])
def test_bad_options_are_named(options, message) -> None:
    with pytest.raises(ValueError, match=message):
        build(PipelineSpec("pansharpen", "random:0", options)).crossdiff(3)


def test_dn_above_the_scale_is_warned_with_the_fraction(pair, tmp_path, caplog) -> None:
    """Landsat DN (~6000-9000) against the default 2047: the warning states the fractions above the scale, computed
    here from the arrays (the images are under the 512-pixel overview size, so the estimate is exact)."""
    pipe = build(PipelineSpec("pansharpen", "random:0", {"network": SMALL, "dn_scale": 7500}))
    with caplog.at_level(logging.WARNING, logger="rsinfer.pipelines"):
        run(pipe, {"pan": pair.pan_path, "ms": pair.ms_path}, tmp_path / "o.tif", tiling=Tiling(128, 0),
            progress=False)
    message = next(r.getMessage() for r in caplog.records if "above the scale" in r.getMessage())
    ms_percent, pan_percent = (float(v) for v in re.findall(r"([\d.]+) % of the", message))
    assert ms_percent == pytest.approx(100 * (pair.ms > 7500).mean(), rel=5e-3)  # printed to 3 digits
    assert pan_percent == pytest.approx(100 * (pair.pan > 7500).mean(), rel=5e-3)
    assert 0 < ms_percent < 100 and "clipped" in message
    assert read(tmp_path / "o.tif").max() <= 7500


def test_no_warning_within_the_scale(pair, tmp_path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="rsinfer.pipelines"):
        run(small_pipeline(), {"pan": pair.pan_path, "ms": pair.ms_path}, tmp_path / "o.tif",
            tiling=Tiling(128, 0), progress=False)
    assert not any("above the scale" in r.getMessage() for r in caplog.records)


def test_integer_ms_gives_its_type_and_nodata(data_dir, tmp_path) -> None:
    """uint16 MS with nodata 0: the output is uint16 DN (the float output rounded) with nodata 0, and a hole in the
    MS is nodata in the output under its 4x4 PAN footprint."""
    pair = write_wald_pair(data_dir, tmp_path, 64, dtype="uint16")
    with rasterio.open(pair.ms_path, "r+") as ms:
        ms.nodata = 0
        values = ms.read()
        values[:, 5, 7] = 0
        ms.write(values)
    pipe = small_pipeline()
    run(pipe, {"pan": pair.pan_path, "ms": pair.ms_path}, tmp_path / "int.tif", tiling=Tiling(64, 0),
        progress=False)
    run(pipe, {"pan": pair.pan_path, "ms": pair.ms_path}, tmp_path / "float.tif", tiling=Tiling(64, 0),
        output_options=OutputOptions(dtype="float32"), progress=False)
    with rasterio.open(tmp_path / "int.tif") as out:
        assert out.dtypes == ("uint16",) * 3 and out.nodata == 0
        written = out.read()
    unrounded = read(tmp_path / "float.tif")
    hole = np.zeros((64, 64), bool)
    hole[20:24, 28:32] = True
    assert (written[:, hole] == 0).all() and (unrounded[:, hole] == 0).all()
    assert (written[:, ~hole] > 0).all()
    np.testing.assert_array_equal(written[:, ~hole], np.rint(unrounded[:, ~hole]))


def test_uint8_ms_beyond_its_range_is_written_as_float32(data_dir, tmp_path) -> None:
    pair = write_wald_pair(data_dir, tmp_path, 64)
    with rasterio.open(pair.ms_path) as src:
        profile, values = src.profile, src.read()
    write_raster(tmp_path / "ms8.tif", np.clip(values / 40, 0, 255), profile["transform"], profile["crs"], "uint8")
    pipe = build(PipelineSpec("pansharpen", "random:0", {"network": SMALL}))  # scale 2047 > 255
    plan = pipe.plan({"pan": _info(pair.pan_path), "ms": _info(tmp_path / "ms8.tif")}, Tiling(64, 0))
    assert plan.output.dtype == "float32"


def _info(path):
    from rsinfer.io import raster_info

    return raster_info(path)


# ---- weights -------------------------------------------------------------------------------------------------------

def write_official_runs(root: Path, bands: int = 3, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """The official experiments/ layout with small networks: PAN2MS_* and MS2PAN_* (wrapper form, with the schedule
    buffers) and a fusion run, each checkpoint/I8_E1_gen.pth. Returns the bare state dicts."""
    channels = tuple(SMALL["channels"])
    states = {"p2m": random_state_dict(official_unet_shapes("p2m", channels, bands), seed),
              "m2p": random_state_dict(official_unet_shapes("m2p", channels, bands), seed + 1),
              "fusion": random_state_dict(official_fusion_shapes(bands, channels, SMALL["inner_channel"]), seed + 2)}
    runs = {"p2m": "PAN2MS_L8_230101_000000", "m2p": "MS2PAN_L8_230101_000001",
            "fusion": "ddpm_fusion_l8_230102_000000"}
    for part, run_name in runs.items():
        folder = root / run_name / "checkpoint"
        folder.mkdir(parents=True)
        state = states[part] if part == "fusion" else wrapper_state_dict(states[part])
        torch.save(state, folder / "I8_E1_gen.pth")
    return states


def crossdiff_from(states: dict[str, dict[str, torch.Tensor]], bands: int = 3, scale: float = L8_SCALE,
                   seed: int = 0) -> CrossDiff:
    nets = {}
    for part in ("p2m", "m2p"):
        nets[part] = models.build("crossdiff-unet", direction=part, channels=SMALL["channels"], spectrun_num=bands)
        nets[part].load_state_dict(states[part])
    nets["fusion"] = models.build("crossdiff-fusion", spectral_num=bands, channel_multiplier=SMALL["channels"],
                                  inner_channel=SMALL["inner_channel"])
    nets["fusion"].load_state_dict(states["fusion"])
    return CrossDiff(nets["p2m"], nets["m2p"], nets["fusion"], dn_scale=scale, seed=seed)


def test_official_experiments_directory_is_read_and_recorded(pair, tmp_path) -> None:
    states = write_official_runs(tmp_path / "experiments")
    pipe = build(PipelineSpec("pansharpen", str(tmp_path / "experiments"), {"sensor": "landsat-8", "seed": 2}))
    assert pipe.bands == 3
    out = tmp_path / "sharp.tif"
    run(pipe, {"pan": pair.pan_path, "ms": pair.ms_path}, out, tiling=Tiling(128, 0), progress=False)
    expected = crossdiff_from(states, seed=2).sharpen(torch.from_numpy(pair.pan)[None, None],
                                                      torch.from_numpy(pair.ms)[None]).sr[0] * L8_SCALE
    np.testing.assert_allclose(read(out), expected.double().numpy(), rtol=1e-6, atol=1e-6 * L8_SCALE)

    def digest(run_name: str) -> str:
        data = (tmp_path / "experiments" / run_name / "checkpoint" / "I8_E1_gen.pth").read_bytes()
        return hashlib.sha256(data).hexdigest()

    with rasterio.open(out) as src:
        assert src.tags()["RSINFER_WEIGHTS"] == (f"fusion=sha256:{digest('ddpm_fusion_l8_230102_000000')} "
                                                 f"m2p=sha256:{digest('MS2PAN_L8_230101_000001')} "
                                                 f"p2m=sha256:{digest('PAN2MS_L8_230101_000000')}")


def test_several_matches_are_listed_and_a_part_picks_one(tmp_path) -> None:
    root = tmp_path / "experiments"
    write_official_runs(root)
    later = root / "PAN2MS_L8_230101_000000" / "checkpoint" / "I16_E2_gen.pth"
    later.write_bytes((root / "PAN2MS_L8_230101_000000" / "checkpoint" / "I8_E1_gen.pth").read_bytes())
    with pytest.raises(ValueError, match=r"several p2m checkpoints .*I16_E2_gen.pth.*I8_E1_gen.pth.*p2m=FILE"):
        build(PipelineSpec("pansharpen", str(root)))
    pipe = build(PipelineSpec("pansharpen", {"": str(root), "p2m": str(later)}))
    assert dict(pipe.weights.files)["p2m"] == str(later)


@pytest.mark.parametrize("case, message", [
    ("no fusion run", r"no fusion checkpoint in .*\*/checkpoint/I\*_E\*_gen.pth"),
    ("a file", "must be a directory"),
    ("unknown part", r"parts \['p2m', 'm2p', 'fusion'\]"),
    ("missing part", r"missing \['fusion'\]"),
    ("swapped", "checkpoint is a m2p U-Net"),
])
def test_weights_errors_are_named(tmp_path, case, message) -> None:
    root = tmp_path / "experiments"
    write_official_runs(root)
    p2m = str(root / "PAN2MS_L8_230101_000000" / "checkpoint" / "I8_E1_gen.pth")
    m2p = str(root / "MS2PAN_L8_230101_000001" / "checkpoint" / "I8_E1_gen.pth")
    weights = {
        "no fusion run": str(root),
        "a file": p2m,
        "unknown part": {"p2m": p2m, "unet": m2p},
        "missing part": {"p2m": p2m, "m2p": m2p},
        "swapped": {"p2m": m2p, "m2p": p2m, "fusion": str(root / "ddpm_fusion_l8_230102_000000" / "checkpoint" /
                                                             "I8_E1_gen.pth")},
    }[case]
    if case == "no fusion run":
        (root / "ddpm_fusion_l8_230102_000000" / "checkpoint" / "I8_E1_gen.pth").unlink()
    with pytest.raises(ValueError, match=message):
        build(PipelineSpec("pansharpen", weights))


def test_network_overrides_apply_to_random_weights_only(tmp_path) -> None:
    write_official_runs(tmp_path / "experiments")
    with pytest.raises(ValueError, match="apply to random weights"):
        build(PipelineSpec("pansharpen", str(tmp_path / "experiments"), {"network": SMALL}))


# ---- bad input -----------------------------------------------------------------------------------------------------

def _plan(pipe: Pansharpen, pan: Path, ms: Path, tiling: Tiling = Tiling(64, 16)):
    return pipe.plan({"pan": _info(pan), "ms": _info(ms)}, tiling)


def test_footprints_that_do_not_overlap(pair, tmp_path) -> None:
    with rasterio.open(pair.ms_path) as src:
        values, transform, crs = src.read(), src.transform, src.crs
    far = write_raster(tmp_path / "far.tif", values, Affine.translation(100_000, 0) @ transform, crs)
    with pytest.raises(ValueError, match=r"do not overlap: PAN footprint .* MS footprint"):
        _plan(small_pipeline(), pair.pan_path, far)


def test_a_ratio_that_is_not_4(pair, tmp_path) -> None:
    with rasterio.open(pair.ms_path) as src:
        values, transform, crs = src.read(), src.transform, src.crs
    ratio2 = write_raster(tmp_path / "ratio2.tif", values, transform @ Affine.scale(0.5), crs)
    with pytest.raises(ValueError, match=r"the MS pixel is 2 x 2 PAN pixels .*ratio of exactly 4"):
        _plan(small_pipeline(), pair.pan_path, ratio2)


def test_a_pan_with_more_than_one_band(pair, tmp_path) -> None:
    with rasterio.open(pair.pan_path) as src:
        values, transform, crs = src.read(), src.transform, src.crs
    three = write_raster(tmp_path / "pan3.tif", np.concatenate([values] * 3), transform, crs)
    with pytest.raises(ValueError, match=r"input 'pan' .* has 3 bands; this pipeline needs exactly 1"):
        _plan(small_pipeline(), three, pair.ms_path)


def test_a_band_count_the_weights_do_not_take(pair, tmp_path) -> None:
    write_official_runs(tmp_path / "experiments", bands=4)
    pipe = build(PipelineSpec("pansharpen", str(tmp_path / "experiments")))
    with pytest.raises(ValueError, match=r"has 3 band\(s\) but the CrossDiff weights are for 4"):
        _plan(pipe, pair.pan_path, pair.ms_path)


def test_grids_tiles_and_crs_that_break_whole_ms_pixels(pair, tmp_path) -> None:
    with rasterio.open(pair.pan_path) as src:
        values, transform, crs = src.read(), src.transform, src.crs
    odd = write_raster(tmp_path / "odd.tif", values[:, :126, :127], transform, crs)
    with pytest.raises(ValueError, match=r"126 x 127 pixels.*crop it to 124 x 124"):
        _plan(small_pipeline(), odd, pair.ms_path)
    with pytest.raises(ValueError, match=r"tile 62 and overlap 16 must be multiples of 4"):
        _plan(small_pipeline(), pair.pan_path, pair.ms_path, Tiling(62, 16))
    other_crs = write_raster(tmp_path / "utm20.tif", values, transform, "EPSG:32620")
    with pytest.raises(ValueError, match="must share a CRS"):
        _plan(small_pipeline(), other_crs, pair.ms_path)


def test_an_ms_off_the_pan_lattice_is_warned(pair, tmp_path, caplog) -> None:
    with rasterio.open(pair.ms_path) as src:
        values, transform, crs = src.read(), src.transform, src.crs
    shifted = write_raster(tmp_path / "shifted.tif", values, transform @ Affine.translation(0.5, 0), crs)
    with caplog.at_level(logging.WARNING, logger="rsinfer.pipelines"):
        _plan(small_pipeline(), pair.pan_path, shifted)
    assert any("offset by (0.500, 0.000) MS pixels" in r.getMessage() for r in caplog.records)
