"""The main job's helpers (`demo/`): the held-out inputs they write, checked against the data read independently, and
the job end to end on small held-out crops (the rsinfer commands of `make run`, then the report), with a PSNR floor
for the demo cloud removal through the command line.

The tensor-level PSNR floor of the shipped SAR model is in tests/train/test_weights.py; here the same weights go
through what a user runs: a GeoTIFF of cloudy DN, `rsinfer decloud --weights demo`, the written raster."""

from __future__ import annotations

import json

import numpy as np
import rasterio
import torch
from rasterio.windows import Window as RioWindow

from demo import heldout, report
from rsinfer.cli import main
from rsinfer.tiling import Window
from train.clouds import generate_clouds
from train.evaluate_pansharpen import LANDSAT

# 128 × 128 pixels of the chip's held-out columns under the cloud field of seed 0: 41 % under cloud, 37 % fully
# opaque. Through `rsinfer decloud` the SAR model measured 36.9 dB there (cloudy input 13.7 dB, SAR-free model 34.8 dB;
# under cloud 33.2 against 30.9 dB): the floor leaves 4.9 dB for other machines and retraining.
CROP, CROP_SEED = Window(128, 384, 128, 128), 0
CROP_FLOOR_DB = 32.0
WALD_CROP = Window(616, 1528, 96, 128)  # inside the Landsat hold-out


def _read(path) -> tuple[np.ndarray, rasterio.Affine, dict]:
    with rasterio.open(path) as src:
        return src.read().astype(np.float64), src.transform, src.tags()


def test_decloud_inputs_are_the_chip_under_the_seeded_clouds(data_dir, tmp_path) -> None:
    scene = heldout.write_decloud_inputs(tmp_path, data_dir, CROP, CROP_SEED)
    rows, cols = slice(CROP.row, CROP.bottom), slice(CROP.col, CROP.right)
    with rasterio.open(data_dir / "sen1floods11" / "Spain_7370579_S2Hand.tif") as src:
        dn = src.read(window=RioWindow(CROP.col, CROP.row, CROP.width, CROP.height)).astype(np.float64)
        transform = src.window_transform(RioWindow(CROP.col, CROP.row, CROP.width, CROP.height))
    with rasterio.open(data_dir / "sen1floods11" / "Spain_7370579_S1Hand.tif") as src:
        s1 = src.read()[:, rows, cols]
    clouds = generate_clouds(1, CROP.height, CROP.width, torch.Generator().manual_seed(CROP_SEED))
    expected = clouds.apply(torch.from_numpy(np.clip(dn, 0, 10000) / 10000)[None].float())[0].double().numpy()

    cloudy, cloudy_transform, tags = _read(tmp_path / heldout.DECLOUD["s2"])
    assert cloudy_transform == transform
    np.testing.assert_allclose(cloudy, np.clip(np.rint(expected * 10000), 1, 10000), atol=1)  # float32 rounding
    clear, clear_transform, _ = _read(tmp_path / heldout.DECLOUD["clear"])
    assert clear_transform == transform and np.array_equal(clear, dn)
    np.testing.assert_array_equal(_read(tmp_path / heldout.DECLOUD["s1"])[0], s1)
    opacity = _read(tmp_path / heldout.DECLOUD["opacity"])[0][0]
    np.testing.assert_allclose(opacity, clouds.opacity[0, 0].numpy(), rtol=1e-6)
    assert (opacity >= 1).mean() > 0.3  # opaque cores: only SAR sees the ground there

    again = heldout.scene_of(tmp_path, data_dir)  # the area and the seed come back from the tags
    assert again.area == CROP and again.seed == CROP_SEED and tags["RSINFER_DEMO_CLOUD_SEED"] == str(CROP_SEED)
    torch.testing.assert_close(again.cloudy, scene.cloudy)


def test_wald_pair_is_the_degraded_landsat_reference(data_dir, tmp_path) -> None:
    heldout.write_pansharpen_inputs(tmp_path, data_dir, WALD_CROP)
    window = RioWindow(WALD_CROP.col, WALD_CROP.row, WALD_CROP.width, WALD_CROP.height)
    bands = []
    for band in ("B2", "B3", "B4"):
        with rasterio.open(data_dir / LANDSAT.format(band)) as src:
            bands.append(src.read(1, window=window).astype(np.float64))
            transform = src.window_transform(window)
    reference, reference_transform, _ = _read(tmp_path / heldout.PANSHARPEN["reference"])
    assert reference_transform == transform and np.array_equal(reference, np.stack(bands))
    pan, pan_transform, tags = _read(tmp_path / heldout.PANSHARPEN["pan"])
    assert pan_transform == transform and "SYNTHETIC" in tags["RSINFER_DEMO_WALD"]
    np.testing.assert_allclose(pan[0], np.mean(bands, axis=0), rtol=1e-6)  # the mean of the visible bands
    ms, ms_transform, _ = _read(tmp_path / heldout.PANSHARPEN["ms"])
    assert ms.shape == (3, WALD_CROP.height // 4, WALD_CROP.width // 4)
    assert ms_transform == transform * rasterio.Affine.scale(4)  # an MS pixel is 4 × 4 PAN pixels, same origin


def test_the_main_job_runs_end_to_end_on_small_crops(data_dir, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("RSINFER_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    heldout.write_decloud_inputs(out, data_dir, CROP, CROP_SEED)
    heldout.write_pansharpen_inputs(out, data_dir, WALD_CROP)
    decloud = ["decloud", "--s2", str(out / heldout.DECLOUD["s2"]), "--s1", str(out / heldout.DECLOUD["s1"]),
               "--tile", "128", "--overlap", "32", "--quiet"]
    sar, sar_free, draws = (out / path for path in report.DECLOUD_OUTPUTS)
    assert main([*decloud, "--weights", "demo", "--out", str(sar)]) == 0
    assert main([*decloud, "--weights", "demo:dbcr-demo-sar-free", "--out", str(sar_free)]) == 0
    assert main([*decloud, "--weights", "demo", "--sampler", "i2sb", "--steps", "2", "--samples", "2", "--out",
                 str(draws), "--uncertainty-out", str(out / "decloud" / "std.tif")]) == 0
    assert main(["pansharpen", "--pan", str(out / heldout.PANSHARPEN["pan"]), "--ms",
                 str(out / heldout.PANSHARPEN["ms"]), "--weights", "demo", "--out", str(out / report.PANSHARPEN_OUTPUT),
                 "--quiet"]) == 0
    capsys.readouterr()

    assert report.main(["--out", str(out), "--data", str(data_dir)]) == 0
    printed = capsys.readouterr().out
    numbers = json.loads((out / "quality.json").read_text())
    assert (out / "quality.md").read_text() in printed
    rows = numbers["decloud"]
    labels = [report.label_of(path) for path in (sar, sar_free, draws)]
    assert labels == ["DB-CR dbcr-demo, alpha-ratio 1 step", "DB-CR dbcr-demo-sar-free, alpha-ratio 1 step",
                      "DB-CR dbcr-demo, i2sb 2 steps, mean of 2"]
    assert rows[labels[0]]["psnr"] >= CROP_FLOOR_DB and rows[labels[0]]["psnr"] > rows["cloudy input"]["psnr"] + 15
    assert rows[labels[0]]["psnr_cloud"] > rows[labels[1]]["psnr_cloud"]  # SAR pays off under opaque clouds
    uncertainty = numbers["uncertainty"]
    assert uncertainty["output"] == labels[2] and 0.5 < uncertainty["auroc"] <= 1 and uncertainty["std_mean"] > 0
    assert f"Uncertainty map {out / 'decloud' / 'std.tif'}" in printed
    for path, label in zip((sar, sar_free, draws), labels):
        png = path.with_name(f"preview_{path.stem}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"DEMO WEIGHTS - TRAINED ON ONE SCENE" in png
        assert f"cloudy input | {label} | clear reference".encode() in png  # the Panels text chunk
    table = numbers["pansharpen"]
    crossdiff = table[f"{report.label_of(out / report.PANSHARPEN_OUTPUT)} (rsinfer pansharpen)"]
    assert crossdiff["ERGAS"] < table["EXP"]["ERGAS"]
    png = (out / "pansharpen" / "preview_crossdiff-demo.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"DEMO WEIGHTS - TRAINED ON ONE SCENE" in png
