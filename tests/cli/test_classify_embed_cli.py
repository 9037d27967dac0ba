"""`rsinfer classify` and `rsinfer embed` on a BigEarthNet S2 example patch and a Landsat 8 crop: georeferenced,
gdalinfo-readable outputs equal to the pipelines run through the Python API, checkpoints with their training config
(JSON and YAML), and the errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import rasterio
import torch

from rsinfer.cli import main
from rsinfer.pipelines import PipelineSpec, Tiling, build, run
from rsinfer.pipelines.atomizer_scene import CLASSES, RANDOM_ANCHORS, RANDOM_CONFIG
from tests.pipelines.test_atomizer_scene import (_seeded_lightning_checkpoint, extract_bigearthnet, stack_landsat,
                                                 stack_patch)
from tests.scene.scene_data import DATA, gdalinfo, metadata_item


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("scenes")
    folder = extract_bigearthnet(DATA, directory)[4]
    return {"patch": str(stack_patch(folder, directory / "patch.tif")),
            "landsat": str(stack_landsat(directory / "landsat.tif", 1200, 600, 150, 170))}


def _read(path) -> tuple[np.ndarray, rasterio.Affine, dict]:
    with rasterio.open(path) as ds:
        return ds.read(), ds.transform, ds.tags()


def test_classify_a_bigearthnet_patch(scenes, tmp_path, capsys) -> None:
    out = tmp_path / "probs.tif"
    code = main(["classify", "--model", "atomizer", "--random-weights", "--seed", "3", "--input",
                 f"s2={scenes['patch']}", "--out", str(out)])
    assert code == 0
    assert "[RANDOM WEIGHTS]" in capsys.readouterr().out
    info = gdalinfo(out)
    assert [b["description"] for b in info["bands"]] == list(CLASSES)
    assert {b["type"] for b in info["bands"]} == {"Float32"} and info["size"] == [120, 120]
    assert metadata_item(info, "", "RSINFER_PIPELINE") == "classify"
    assert metadata_item(info, "", "RSINFER_SEED") == "3"
    assert metadata_item(info, "", "RSINFER_COMMAND").startswith("rsinfer classify --model atomizer")
    with rasterio.open(scenes["patch"]) as src:
        np.testing.assert_allclose(info["geoTransform"], src.transform.to_gdal(), rtol=1e-12)
    api = tmp_path / "api.tif"
    run(build(PipelineSpec("classify", "random:3")), {"s2": scenes["patch"]}, api, progress=False)
    values = _read(out)[0]
    np.testing.assert_array_equal(values, _read(api)[0])
    assert 0 < values.min() and values.max() < 1


def test_embed_a_landsat_crop_with_a_band_subset(scenes, tmp_path) -> None:
    out = tmp_path / "emb.tif"
    assert main(["embed", "--random-weights", "--s2", scenes["landsat"], "--sensor", "landsat-8", "--bands",
                 "B4,B3,B2", "--tile", "48", "--out", str(out), "--quiet"]) == 0
    info = gdalinfo(out)
    assert info["size"] == [4, 4] and len(info["bands"]) == RANDOM_CONFIG["latent_dim"]
    assert info["bands"][0]["description"] == "embedding_000"
    with rasterio.open(scenes["landsat"]) as src:
        expected_transform = src.transform * src.transform.scale(48)
    np.testing.assert_allclose(info["geoTransform"], expected_transform.to_gdal(), rtol=1e-12)
    assert metadata_item(info, "", "RSINFER_BANDS") == "B4,B3,B2"
    assert metadata_item(info, "", "RSINFER_RESOLUTION_FACTOR") == repr(1 / 3)
    api = tmp_path / "api.tif"
    pipe = build(PipelineSpec("embed", "random:0", {"sensor": "landsat-8", "bands": ["B4", "B3", "B2"]}))
    run(pipe, {"s2": scenes["landsat"]}, api, tiling=Tiling(48, 0, "constant", 4), progress=False)
    values = _read(out)[0]
    np.testing.assert_array_equal(values, _read(api)[0])
    assert np.isfinite(values).all()


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_checkpoint_with_its_official_training_config(scenes, tmp_path, capsys, suffix) -> None:
    config = {**RANDOM_CONFIG, "depth": 1, "num_latents": 8, "latent_dim": 32}
    ckpt = tmp_path / "atomizer.ckpt"
    state = _seeded_lightning_checkpoint(ckpt, config, 21)
    document = {"Atomiser": {**config, "attn_dropout": 0.0}, "wavelengths_encoding": RANDOM_ANCHORS,
                "trainer": {"epochs": 3}}
    config_file = tmp_path / f"config{suffix}"
    if suffix == ".json":
        config_file.write_text(json.dumps(document))
    else:
        yaml = pytest.importorskip("yaml")
        config_file.write_text(yaml.safe_dump(document, sort_keys=False))  # anchors count in file order
    out = tmp_path / "probs.tif"
    assert main(["classify", "--weights", str(ckpt), "--config", str(config_file), "--s2", scenes["landsat"],
                 "--sensor", "landsat-8", "--bands", "B2,B3,B4", "--out", str(out), "--quiet"]) == 0
    assert "ignoring attn_dropout (not part of the network)" in capsys.readouterr().err
    pipe = build(PipelineSpec("classify", str(ckpt), {"config": config, "wavelengths_encoding": RANDOM_ANCHORS,
                                                      "sensor": "landsat-8", "bands": ["B2", "B3", "B4"]}))
    assert all(torch.equal(pipe.net.state_dict()[k], v) for k, v in state.items())
    api = tmp_path / "api.tif"
    run(pipe, {"s2": scenes["landsat"]}, api, progress=False)
    np.testing.assert_array_equal(_read(out)[0], _read(api)[0])
    assert _read(out)[2]["RSINFER_WEIGHTS"].startswith("sha256:")


@pytest.mark.parametrize("command,flags,status,message", [
    ("classify", ["--weights", "x.ckpt"], 2, "--weights needs --config CONFIG"),
    ("classify", [], 2, "pass --weights CKPT --config CONFIG"),
    ("classify", ["--random-weights", "--weights", "x.ckpt"], 2, "--random-weights excludes --weights"),
    ("classify", ["--random-weights", "--sensor", "sentinel-1"], 2, "its bands have no wavelength"),
    ("classify", ["--random-weights", "--config", "missing.json"], 2, "--config missing.json: no such file"),
    ("embed", ["--random-weights", "--sensor", "landsat-8", "--bands", "B2,B3,B4", "--overlap", "8"], 2,
     "give a tile and overlap 0"),
    ("classify", ["--random-weights", "--sensor", "landsat-8", "--bands", "B2,B5"], 3, r"bands \['B5'\] are missing"),
])
def test_errors_name_the_flags(scenes, tmp_path, capsys, command, flags, status, message) -> None:
    code = main([command, "--s2", scenes["landsat"], "--out", str(tmp_path / "o.tif"), *flags])
    assert code == status
    err = capsys.readouterr().err
    assert err.startswith(f"rsinfer {command}: error: ")
    assert re.search(message, err), err
    assert not (tmp_path / "o.tif").exists()


def test_bad_band_lists_are_argparse_errors(scenes, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["classify", "--random-weights", "--s2", scenes["landsat"], "--bands", "B2,,B3", "--out",
              str(tmp_path / "o.tif")])
    assert exit_info.value.code == 2
    assert "expected band names separated by commas" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["classify", "embed"])
@pytest.mark.parametrize("scene", ["patch", "landsat"])
def test_both_commands_on_both_scenes(scenes, tmp_path, command, scene) -> None:
    """Each command on the BigEarthNet patch (12 bands by description) and on the 3-band Landsat crop: a georeferenced
    output on the scene's grid coarsened by the window, that gdalinfo reads."""
    out = tmp_path / f"{command}.tif"
    sensor = ["--sensor", "landsat-8", "--bands", "B4,B3,B2"] if scene == "landsat" else []
    tiling = ["--tile", "48"] + (["--overlap", "16"] if command == "classify" else [])
    assert main([command, "--random-weights", "--s2", scenes[scene], *sensor, *tiling, "--out", str(out),
                 "--quiet"]) == 0
    info = gdalinfo(out)
    with rasterio.open(scenes[scene]) as src:
        expected = src.transform * src.transform.scale(48 if command == "embed" else 1)
        grid = (src.width, src.height)
    np.testing.assert_allclose(info["geoTransform"][::3], expected.to_gdal()[::3], rtol=1e-12)  # the origin
    assert metadata_item(info, "", "RSINFER_PIPELINE") == command
    cells = 48 if command == "embed" else 1  # embed: one pixel per window; classify: the scene's own pixels
    assert info["size"] == [-(-grid[0] // cells), -(-grid[1] // cells)]
    values = _read(out)[0]
    assert np.isfinite(values[~np.isnan(values)]).all() and values.size
