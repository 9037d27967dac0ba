"""`rsinfer pansharpen` on a real-data Wald pair (Landsat 8 crop: MS = degraded B2, B3, B4; PAN = SYNTHETIC, see
tests/pipelines/test_pansharpen.py): a georeferenced output that gdalinfo reads, provenance, exactness against the
pipeline on the arrays, and every bad-input error."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine

from rsinfer.cli import main
from rsinfer.pipelines import PipelineSpec, build
from rsinfer.pipelines.provenance import weights_tag
from rsinfer.pipelines.spec import Weights
from tests.pipelines.test_pansharpen import write_official_runs, write_raster, write_wald_pair
from tests.scene.scene_data import gdalinfo, metadata_item


@pytest.fixture
def pair(data_dir, tmp_path):
    return write_wald_pair(data_dir, tmp_path, 96)


def test_writes_a_georeferenced_sharpened_scene(pair, tmp_path, capsys) -> None:
    """Official-size random networks, one 96² tile: the raster equals `Pansharpen.sharpen_dn` on the arrays, lies on
    the PAN grid (read back by GDAL's own gdalinfo) and carries the provenance tags."""
    out = tmp_path / "sharp.tif"
    code = main(["pansharpen", "--pan", str(pair.pan_path), "--ms", str(pair.ms_path), "--out", str(out),
                 "--random-weights", "--seed", "4", "--sensor", "landsat-8", "--tile", "96", "--overlap", "0"])
    assert code == 0
    assert "[RANDOM WEIGHTS]" in capsys.readouterr().out
    info = gdalinfo(out)
    with rasterio.open(pair.pan_path) as pan:
        assert info["size"] == [pan.width, pan.height]
        np.testing.assert_allclose(info["geoTransform"], pan.transform.to_gdal(), rtol=1e-12)
    assert len(info["bands"]) == 3 and {b["type"] for b in info["bands"]} == {"Float32"}
    assert metadata_item(info, "", "RSINFER_PIPELINE") == "pansharpen"
    assert metadata_item(info, "", "RSINFER_WEIGHTS") == weights_tag(Weights(seed=4))
    assert metadata_item(info, "", "RSINFER_DN_SCALE") == "65535"
    assert metadata_item(info, "", "RSINFER_SENSOR") == "landsat-8"
    assert metadata_item(info, "", "RSINFER_SEED") == "4"
    assert metadata_item(info, "", "RSINFER_COMMAND").startswith("rsinfer pansharpen --pan")
    inputs = metadata_item(info, "", "RSINFER_INPUTS")
    assert hashlib.sha256(pair.ms_path.read_bytes()).hexdigest() in inputs
    pipe = build(PipelineSpec("pansharpen", "random:4", {"sensor": "landsat-8", "seed": 4}))
    expected = pipe.sharpen_dn(torch.from_numpy(pair.pan)[None, None], torch.from_numpy(pair.ms)[None])[0]
    with rasterio.open(out) as src:
        np.testing.assert_allclose(src.read(), expected.numpy(), rtol=1e-6, atol=1e-6 * 65535)


def test_tiled_run_with_a_weights_directory(pair, tmp_path) -> None:
    write_official_runs(tmp_path / "experiments")
    out = tmp_path / "sharp.tif"
    assert main(["pansharpen", "--pan", str(pair.pan_path), "--ms", str(pair.ms_path), "--out", str(out),
                 "--weights", str(tmp_path / "experiments"), "--dn-scale", "65535", "--tile", "64", "--overlap",
                 "16", "--quiet"]) == 0
    with rasterio.open(out) as src:
        tags = src.tags()
        assert src.count == 3 and src.shape == (96, 96)
    assert tags["RSINFER_WEIGHTS"].count("sha256:") == 3 and tags["RSINFER_DN_SCALE"] == "65535"
    assert "RSINFER_SENSOR" not in tags


def _bad(args: list[str], capsys, status: int = 2) -> str:
    """The command fails with `status` (2: a usage error; 3: unusable input data) and one line on stderr."""
    assert main(args) == status
    return capsys.readouterr().err


def test_bad_inputs_are_clear_errors(pair, tmp_path, capsys) -> None:
    out = str(tmp_path / "o.tif")
    common = ["--out", out, "--random-weights"]
    with rasterio.open(pair.ms_path) as src:
        ms, ms_transform, crs = src.read(), src.transform, src.crs
    with rasterio.open(pair.pan_path) as src:
        pan, pan_transform = src.read(), src.transform
    far = write_raster(tmp_path / "far.tif", ms, Affine.translation(50_000, 0) @ ms_transform, crs)
    err = _bad(["pansharpen", "--pan", str(pair.pan_path), "--ms", str(far), *common], capsys)
    assert "do not overlap" in err and "MS footprint" in err
    ratio2 = write_raster(tmp_path / "ratio2.tif", ms, ms_transform @ Affine.scale(0.5), crs)
    err = _bad(["pansharpen", "--pan", str(pair.pan_path), "--ms", str(ratio2), *common], capsys)
    assert "the MS pixel is 2 x 2 PAN pixels" in err and "exactly 4" in err
    pan3 = write_raster(tmp_path / "pan3.tif", np.concatenate([pan] * 3), pan_transform, crs)
    err = _bad(["pansharpen", "--pan", str(pan3), "--ms", str(pair.ms_path), *common], capsys, status=3)
    assert "has 3 bands; this pipeline needs exactly 1" in err
    write_official_runs(tmp_path / "experiments4", bands=4)
    err = _bad(["pansharpen", "--pan", str(pair.pan_path), "--ms", str(pair.ms_path), "--out", out, "--weights",
                str(tmp_path / "experiments4")], capsys)
    assert "has 3 band(s) but the CrossDiff weights are for 4" in err
    err = _bad(["pansharpen", "--pan", str(pair.pan_path), "--ms", str(pair.ms_path), "--out", out], capsys)
    assert "--random-weights" in err and "--weights DIR" in err
    assert not (tmp_path / "o.tif").exists()


def test_sensor_and_dn_scale_exclude_each_other(pair, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["pansharpen", "--pan", str(pair.pan_path), "--ms", str(pair.ms_path), "--out",
              str(tmp_path / "o.tif"), "--random-weights", "--sensor", "wv3", "--dn-scale", "2047"])
    assert "not allowed with argument" in capsys.readouterr().err
