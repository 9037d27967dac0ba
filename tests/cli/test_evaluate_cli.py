"""`rsinfer evaluate pansharpen | translation`: the printed numbers equal the `rsinfer.metrics` functions applied in
the test to the same arrays; the Wald table names its (synthetic) PAN; errors are exit code 2 with a message."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine

from rsinfer.cli import main
from rsinfer.metrics import full_resolution, image_quality, reduced_resolution
from rsinfer.pansharpening import BASELINES, degrade
from rsinfer.pipelines import PipelineSpec, build
from tests.pipelines.test_pansharpen import BANDS, landsat_reference, landsat_subset, write_raster


@pytest.fixture
def landsat(data_dir, tmp_path):
    """A 128² Landsat crop (B2, B3, B4 as single-band uint16 files), its Wald pair (synthetic PAN) and the GSA fusion
    of the pair written on the PAN grid."""
    reference, transform, crs = landsat_reference(data_dir, 128)
    singles = [write_raster(tmp_path / f"{b}.tif", reference[i:i + 1], transform, crs, "uint16")
               for i, b in enumerate(BANDS)]
    pair = degrade(reference, None, landsat_subset())
    fused = BASELINES["gsa"](pair.ms, pair.pan, 4).astype(np.float32)
    paths = {"fused": write_raster(tmp_path / "fused.tif", fused, transform, crs),
             "reference": write_raster(tmp_path / "reference.tif", reference, transform, crs, "uint16"),
             "pan": write_raster(tmp_path / "pan.tif", pair.pan[None], transform, crs),
             "ms": write_raster(tmp_path / "ms.tif", pair.ms, transform @ Affine.scale(4), crs)}
    return singles, paths, reference, pair, fused


def _json(args: list[str], capsys) -> dict:
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


def _table(args: list[str], capsys) -> str:
    assert main(args) == 0
    return capsys.readouterr().out


def test_reduced_resolution(landsat, capsys) -> None:
    _, paths, reference, _, fused = landsat
    args = ["evaluate", "pansharpen", "--fused", str(paths["fused"]), "--reference", str(paths["reference"])]
    expected = reduced_resolution(fused, reference)
    got = _json([*args, "--json"], capsys)
    assert got.pop("evaluation") == "reduced resolution"
    assert got == pytest.approx(expected, rel=1e-12)
    table = _table(args, capsys)
    for name, value in expected.items():
        assert f"| {name} | {value:.6g} |" in table
    windowed = _json([*args, "--window", "16", "8", "96", "112", "--json"], capsys)
    windowed.pop("evaluation")
    assert windowed == pytest.approx(reduced_resolution(fused[:, 16:112, 8:120], reference[:, 16:112, 8:120]),
                                     rel=1e-12)


def test_full_resolution(landsat, capsys) -> None:
    _, paths, _, pair, fused = landsat
    got = _json(["evaluate", "pansharpen", "--fused", str(paths["fused"]), "--ms", str(paths["ms"]), "--pan",
                 str(paths["pan"]), "--sensor", "landsat-8", "--bands", *BANDS, "--json"], capsys)
    expected = full_resolution(fused, pair.ms.astype(np.float32), None, pair.pan.astype(np.float32),
                               landsat_subset(), 4)
    assert got.pop("evaluation") == "full resolution"
    assert got == pytest.approx(expected, rel=1e-9)
    assert set(got) == {"D_lambda", "D_s", "QNR", "D_lambda_K", "HQNR"}


def test_wald_side_by_side_with_a_synthetic_pan(landsat, capsys) -> None:
    singles, _, reference, pair, _ = landsat
    ms_args = [a for path in singles for a in ("--ms", str(path))]
    args = ["evaluate", "pansharpen", "--wald", *ms_args, "--sensor", "landsat-8", "--bands", *BANDS,
            "--method", "exp", "mtf-glp-hpm", "crossdiff", "--random-weights", "--seed", "2"]
    got = _json([*args, "--json"], capsys)
    gains = [b.gnyq for b in landsat_subset().bands]
    pipe = build(PipelineSpec("pansharpen", "random:2", {"sensor": "landsat-8", "seed": 2}))
    crossdiff = pipe.sharpen_dn(torch.from_numpy(pair.pan).float()[None, None],
                                torch.from_numpy(pair.ms).float()[None])[0].double().numpy()
    expected = {"exp": reduced_resolution(BASELINES["exp"](pair.ms, pair.pan, 4, gains), reference),
                "mtf-glp-hpm": reduced_resolution(BASELINES["mtf-glp-hpm"](pair.ms, pair.pan, 4, gains), reference),
                "crossdiff": reduced_resolution(crossdiff, reference)}
    for method, metrics in expected.items():
        assert got["metrics"][method] == pytest.approx(metrics, rel=1e-9)
    assert got["pan_source"] == "synthetic" and got["reference_shape"] == [3, 128, 128]
    table = _table(args, capsys)
    assert "PAN: SYNTHETIC" in table and "RANDOM WEIGHTS" in table
    assert "| metric | exp | mtf-glp-hpm | crossdiff |" in table
    sam = re.search(r"^\| SAM \| (.*) \|$", table, re.MULTILINE).group(1).split(" | ")
    assert sam == [f"{expected[m]['SAM']:.6g}" for m in ("exp", "mtf-glp-hpm", "crossdiff")]


def test_translation(data_dir, tmp_path, capsys) -> None:
    """Reference: B4, B3, B2 of the Sen1Floods11 S2 chip; prediction: the same bands 2 rows down (a stand-in)."""
    with rasterio.open(data_dir / "sen1floods11" / "Spain_7370579_S2Hand.tif") as src:
        values = src.read([4, 3, 2]).astype(np.float64)
        transform, crs = src.transform, src.crs
    reference = write_raster(tmp_path / "ref.tif", values[:, :48, :40], transform, crs, "int16")
    predicted = write_raster(tmp_path / "pred.tif", values[:, 2:50, :40], transform, crs, "int16")
    args = ["evaluate", "translation", "--reference", str(reference), "--predicted", str(predicted)]
    got = _json([*args, "--data-range", "10000", "--json"], capsys)
    expected = image_quality(values[:, 2:50, :40], values[:, :48, :40], 10000)
    assert got["data_range"] == 10000
    for name in ("RMSE", "PSNR", "SSIM", "CC"):
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-12)
        assert got[f"{name}_mean"] == pytest.approx(expected[f"{name}_mean"], rel=1e-12)
    table = _table([*args, "--sensor", "sentinel-2"], capsys)
    assert "data range 10000 (sentinel-2 DN scale)" in table
    means = [f"{expected[name + '_mean']:.6g}" for name in ("RMSE", "PSNR", "SSIM", "CC")]
    mean = "| mean | " + " | ".join(means) + " |"
    assert mean in table
    assert main(args) == 2
    assert "state the data range" in capsys.readouterr().err


def test_pansharpen_argument_errors(landsat, capsys) -> None:
    singles, paths, _, _, _ = landsat
    assert main(["evaluate", "pansharpen", "--fused", str(paths["fused"])]) == 2
    assert "need --ms, --pan and --sensor" in capsys.readouterr().err
    assert main(["evaluate", "pansharpen", "--wald", "--ms", str(singles[0]), "--sensor", "landsat-8", "--bands",
                 "B2", "--method", "crossdiff"]) == 2
    assert "--random-weights" in capsys.readouterr().err
    assert main(["evaluate", "pansharpen", "--wald", "--ms", str(singles[0]), "--sensor", "landsat-8"]) == 2
    assert "--bands" in capsys.readouterr().err
