"""The shipped demo pansharpening weights (weights/crossdiff-demo.safetensors): strict loading of each network into
the `crossdiff-demo` presets, the model card in the file, the acceptance figures it records, the size budget, and
`rsinfer pansharpen --weights demo` on a held-out crop beating EXP on ERGAS by a stated margin."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from safetensors import safe_open

from rsinfer import models
from rsinfer.cli import main
from rsinfer.metrics import reduced_resolution
from rsinfer.pansharpening import BASELINES, degrade
from rsinfer.pipelines import PipelineSpec, build
from rsinfer.pipelines.demo_weights import demo_path
from tests.pipelines.test_pansharpen import landsat_reference, write_raster
from tests.train.test_scripts import CARD_KEYS
from train.evaluate_pansharpen import HOLDOUT, landsat_bands

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"
SHIPPED = WEIGHTS / "crossdiff-demo.safetensors"
# A 256² crop inside the hold-out (rows 1100–1355, cols 1600–1855). The shipped weights measured ERGAS 0.288 there
# through the CLI (256² tile, whole crop), EXP 0.557: 0.52 of EXP. The test asks for at most 0.70 of EXP, a margin of
# 0.18 of EXP above the measured value for other machines and retraining, and still a clear gain over EXP.
CROP_ORIGIN, CROP_SIDE, ERGAS_FRACTION_OF_EXP = (1100, 1600), 256, 0.70


def _card() -> dict[str, str]:
    with safe_open(str(SHIPPED), "pt") as f:
        return f.metadata()


def test_shipped_file_loads_strictly_and_carries_its_model_card() -> None:
    card = _card()
    assert CARD_KEYS <= set(card) and demo_path("crossdiff-demo") == SHIPPED.resolve()
    assert card["model"] == "crossdiff" and card["preset"] == "crossdiff-demo"
    assert float(card["dn_scale"]) == 16383 and card["bands"] == "B2 B3 B4"  # not 65535: train/pansharpen.py
    assert card["storage_dtype"] in ("float16", "bfloat16")
    check = json.loads(card["storage_check"])
    assert abs(check[card["storage_dtype"]]["delta_psnr_db"]) <= 0.05
    counts = {}
    with safe_open(str(SHIPPED), "pt") as f:
        keys = list(f.keys())
        assert {f.get_tensor(k).dtype for k in keys} == {getattr(torch, card["storage_dtype"])}
        for part in ("p2m", "m2p", "fusion"):
            state = {k[len(part) + 1:]: f.get_tensor(k) for k in keys if k.startswith(part + ".")}
            net = (models.build("crossdiff-fusion", preset="crossdiff-demo", spectral_num=3) if part == "fusion" else
                   models.build("crossdiff-unet", preset="crossdiff-demo", direction=part, spectrun_num=3))
            net.load_state_dict(state, strict=True)
            counts[part] = sum(p.numel() for p in net.parameters())
    assert sum(counts.values()) == int(card["parameters"]) and counts == json.loads(card["parameters_per_network"])
    assert card["command"].startswith("python -m train.pansharpen ") and "--out weights/crossdiff-demo" in \
        card["command"]
    assert card["git_commit"] and "rows 616-1795, cols 1528-1975" in card["holdout"]
    assert card["attribution"] == "Landsat data courtesy of the U.S. Geological Survey (public domain)."
    assert "SYNTHETIC PAN" in card["caveats"] and "No claim for real PAN sensors" in card["caveats"]
    steps = json.loads(card["steps"])
    curves = json.loads(card["learning_curve"])
    assert steps == {stage: curve[-1]["step"] for stage, curve in curves.items()}
    pipe = build(PipelineSpec("pansharpen", "demo"))
    assert pipe.bands == 3 and pipe.dn_scale == 16383 and pipe.weights.demo == "crossdiff-demo"


def test_recorded_metrics_meet_the_acceptance_targets() -> None:
    """Better than EXP on ERGAS and Q by a clear margin (the issue's acceptance); the GS and MTF-GLP-HPM rows are
    recorded beside it, whatever they are."""
    metrics = json.loads(_card()["metrics"])
    ours, exp = metrics["CrossDiff crossdiff-demo"], metrics["EXP"]
    assert ours["ERGAS"] < 0.6 * exp["ERGAS"]
    assert ours["Q2n"] > exp["Q2n"] + 0.1 and ours["Q_avg"] > exp["Q_avg"] + 0.1
    assert {"GS", "MTF-GLP-HPM"} <= set(metrics)


def test_weights_folder_stays_within_the_size_budget() -> None:
    total = sum(path.stat().st_size for path in WEIGHTS.rglob("*") if path.is_file())
    assert SHIPPED.stat().st_size <= 2_000_000 and total <= 5_000_000


@pytest.fixture(scope="module")
def heldout_crop(tmp_path_factory):
    """The Wald pair of a held-out 256² crop as GeoTIFFs (PAN 30 m, MS 120 m, same origin) and its reference."""
    from tests.conftest import DATA

    reference, transform, crs = landsat_reference(DATA, CROP_SIDE, CROP_ORIGIN)
    row, col = CROP_ORIGIN
    assert HOLDOUT.row <= row and row + CROP_SIDE <= HOLDOUT.bottom
    assert HOLDOUT.col <= col and col + CROP_SIDE <= HOLDOUT.right
    pair = degrade(reference, None, landsat_bands(), 4)
    folder = tmp_path_factory.mktemp("heldout")
    pan = write_raster(folder / "pan.tif", pair.pan[None], transform, crs)
    ms = write_raster(folder / "ms.tif", pair.ms, transform @ Affine.scale(4), crs)
    return pan, ms, pair, reference


def test_cli_demo_weights_beat_exp_on_a_heldout_crop(heldout_crop, tmp_path) -> None:
    pan, ms, pair, reference = heldout_crop
    out = tmp_path / "sharp.tif"
    assert main(["pansharpen", "--pan", str(pan), "--ms", str(ms), "--out", str(out), "--weights", "demo",
                 "--quiet"]) == 0
    with rasterio.open(out) as src:
        fused = src.read().astype(np.float64)
        tags = src.tags()
    assert tags["RSINFER_WEIGHTS"] == "demo:crossdiff-demo" and tags["RSINFER_DN_SCALE"] == "16383"
    ours = reduced_resolution(fused, reference, 4)["ERGAS"]
    exp = reduced_resolution(BASELINES["exp"](pair.ms, pair.pan, 4, 0.3), reference, 4)["ERGAS"]
    assert ours <= ERGAS_FRACTION_OF_EXP * exp, (ours, exp)
