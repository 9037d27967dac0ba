"""Smoke runs of the training and evaluation scripts (each well under 2 minutes on 2 cores), and the pieces of the
training step against their formulas."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re

import pytest
import torch
from safetensors import safe_open

from rsinfer import models
from train import decloud, evaluate_decloud
from tests.conftest import DATA
from train.data import load_chip

CARD_KEYS = {"model", "preset", "parameters", "task", "data", "holdout", "training", "steps", "wall_time_s",
             "cpu_time_s", "machine", "learning_curve", "metrics", "storage_dtype", "storage_check", "caveats",
             "attribution", "command", "git_commit", "date"}
SMOKE = ["--preset", "dbcr-demo-sar-free", "--steps", "60", "--batch", "4", "--crop", "32", "--warmup", "5",
         "--lr", "3e-3", "--eval-every", "30", "--log-every", "10", "--threads", "1"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> tuple[str, str]:
    """One short training run: (the weight file, what it printed)."""
    if not DATA.is_dir():
        pytest.fail(f"real test data not found at {DATA}")
    out = tmp_path_factory.mktemp("decloud") / "smoke.safetensors"
    printed, threads = io.StringIO(), torch.get_num_threads()
    try:
        with contextlib.redirect_stdout(printed):
            assert decloud.main([*SMOKE, "--out", str(out), "--data", str(DATA)]) == 0
    finally:
        torch.set_num_threads(threads)
    return str(out), printed.getvalue()


@pytest.mark.slow
def test_training_smoke_run_lowers_the_loss(smoke_run) -> None:
    _, printed = smoke_run
    losses = [float(v) for v in re.findall(r"^step \d+  loss ([0-9.]+)", printed, flags=re.M)]
    assert len(losses) == 6
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.slow
def test_training_smoke_run_writes_a_strictly_loadable_file_with_its_card(smoke_run) -> None:
    path, _ = smoke_run
    with safe_open(path, "pt") as f:
        card = f.metadata()
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert CARD_KEYS <= set(card)
    assert card["model"] == "dbcr" and card["preset"] == "dbcr-demo-sar-free" and card["steps"] == "60"
    assert card["command"] == "python -m train.decloud " + " ".join(SMOKE) + f" --out {path} --data " \
        + card["command"].rsplit("--data ", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?|unknown \(not a git checkout\)", card["git_commit"])
    assert card["machine"].startswith("cpu: ") and "threads" in card["machine"]
    assert "columns 384-511" in card["holdout"] and "Copernicus" in card["attribution"]
    check = json.loads(card["storage_check"])
    assert card["storage_dtype"] in ("float16", "bfloat16", "float32")
    if card["storage_dtype"] != "float32":
        assert max(abs(v) for v in check[card["storage_dtype"]].values()) <= decloud.STORAGE_TOLERANCE_DB
    assert dtypes == {decloud.STORAGE_DTYPES[card["storage_dtype"]]}
    metrics = json.loads(card["metrics"])
    assert set(metrics) == {"standard", "opaque"}
    assert set(metrics["standard"]) == {"cloudy input", *(f"dbcr-demo-sar-free, {k} step{'s' * (k > 1)}"
                                                          for k in (1, 3, 5))}
    curve = json.loads(card["learning_curve"])
    assert [p["step"] for p in curve] == [30, 60] and all("heldout_psnr_1step" in p for p in curve)
    net = models.load("dbcr", path, preset=card["preset"])  # strict
    assert sum(p.numel() for p in net.parameters()) == int(card["parameters"])


@pytest.mark.slow
def test_evaluation_smoke_run_reports_every_row_and_the_uncertainty(smoke_run, data_dir, tmp_path) -> None:
    path, _ = smoke_run
    out = tmp_path / "report.json"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert evaluate_decloud.main(["--weights", path, "--sar-free-weights", path, "--steps", "1", "2",
                                      "--uncertainty-samples", "2", "--uncertainty-steps", "2", "--threads", "1",
                                      "--data", str(data_dir), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = {"cloudy input", "SAR model, 1 step", "SAR model, 2 steps", "SAR-free, 1 step", "SAR-free, 2 steps"}
    assert set(report["standard"]) == set(report["opaque"]) == rows
    data = evaluate_decloud.heldout_set(load_chip(data_dir))
    expected = evaluate_decloud.quality(data.cloudy, data)
    assert report["standard"]["cloudy input"] == pytest.approx(expected, rel=1e-12, nan_ok=True)
    assert report["standard"]["SAR model, 1 step"] == report["standard"]["SAR-free, 1 step"]  # the same file
    assert set(report["tiling"]) == {"clear reference", "cloudy input", *(
        f"{name}, {k}" for name in evaluate_decloud.TILINGS for k in ("1 step", "2 steps"))}
    u = report["uncertainty"]
    assert -1 <= u["spearman"] <= 1 and 0 <= u["auroc"] <= 1 and u["std_mean"] > 0 and u["samples"] == 2
    assert "| cloudy input |" in printed.getvalue() and "Spearman" in printed.getvalue()


def test_bridge_state_follows_the_sine_bridge() -> None:
    clear, cloudy = torch.rand(4000, 1, 1, 1), torch.rand(4000, 1, 1, 1)
    x_t, t = decloud.bridge_state(clear, cloudy, 0.2, torch.Generator().manual_seed(0))
    alpha = torch.sin(0.5 * math.pi * t)[:, None, None, None]
    assert torch.allclose(x_t, alpha * cloudy + (1 - alpha) * clear, atol=1e-6)
    at_one = (t == 1).double().mean()
    assert 0.17 < at_one < 0.23 and t.min() >= 0
    assert torch.equal(x_t[t == 1], cloudy[t == 1])


def test_learning_rate_warms_up_then_decays_to_the_floor() -> None:
    assert decloud.learning_rate(2e-3, 0, 200, 0.0) == pytest.approx(1e-5)
    assert decloud.learning_rate(2e-3, 199, 200, 0.0) == pytest.approx(2e-3)
    assert decloud.learning_rate(2e-3, 1000, 200, 0.5) == pytest.approx(2e-3 * (0.02 + 0.98 * 0.5))
    assert decloud.learning_rate(2e-3, 5000, 200, 1.0) == pytest.approx(4e-5)


def test_training_starts_from_the_identity() -> None:
    net = decloud.prepare_for_training(models.build("dbcr", preset="dbcr-demo"))
    x = torch.rand(2, 13, 16, 24)
    with torch.no_grad():
        assert torch.equal(net(x, torch.rand(2, 2, 16, 24), torch.tensor([1000.0, 10.0])), x)
    assert all(float(p.detach().abs().max()) == 0 for n, p in net.named_parameters() if ".modulation." in n)


def test_bad_arguments_are_named(capsys) -> None:
    with pytest.raises(SystemExit):
        decloud.parse_args(["--out", "x.safetensors", "--steps", "0"])
    assert "--steps must be ≥ 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        decloud.parse_args(["--out", "x.safetensors", "--preset", "dbcr"])
    assert "invalid choice: 'dbcr'" in capsys.readouterr().err
