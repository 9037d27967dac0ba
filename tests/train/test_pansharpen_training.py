"""train/pansharpen.py: a smoke run of both stages (the losses fall, the file loads strictly through the pipeline and
carries its card), the `crossdiff-demo` presets, and the pieces of the training step against independent
references: the cosine schedule by hand, the Wald pair of each crop re-made from the crop, the stage-2 forward
against the runtime's `CrossDiff.sharpen`, and a hold-out the sampler can never reach."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from rsinfer import models
from rsinfer.pansharpening import degrade
from rsinfer.pipelines import PipelineSpec, build
from rsinfer.pipelines.crossdiff import CrossDiff
from rsinfer.tiling import Window
from tests.conftest import DATA
from tests.train.test_scripts import CARD_KEYS
from train import pansharpen
from train.evaluate_pansharpen import HOLDOUT, landsat_bands

SMOKE = ["--stage1-steps", "40", "--stage2-steps", "40", "--batch", "4", "--crop", "32", "--warmup", "5",
         "--stage1-lr", "3e-3", "--stage2-lr", "3e-3", "--eval-every", "40", "--log-every", "10", "--threads", "1"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> tuple[str, str]:
    """One short training run of both stages: (the weight file, what it printed)."""
    if not DATA.is_dir():
        pytest.fail(f"real test data not found at {DATA}")
    out = tmp_path_factory.mktemp("pansharpen") / "smoke.safetensors"
    printed, threads = io.StringIO(), torch.get_num_threads()
    try:
        with contextlib.redirect_stdout(printed):
            assert pansharpen.main([*SMOKE, "--out", str(out), "--data", str(DATA)]) == 0
    finally:
        torch.set_num_threads(threads)
    return str(out), printed.getvalue()


def _losses(printed: str, stage: int) -> list[float]:
    return [float(v) for v in re.findall(rf"^stage {stage} step \d+  loss ([0-9.]+)", printed, flags=re.M)]


@pytest.mark.slow
def test_smoke_run_lowers_both_losses(smoke_run) -> None:
    _, printed = smoke_run
    first, second = _losses(printed, 1), _losses(printed, 2)
    assert len(first) == len(second) == 4
    assert first[-1] < 0.7 * first[0]  # ε-prediction: from ~1.6 (an untrained U-Net) towards 0.8 (E|ε|)
    assert second[-1] < second[0]  # L1 of sr_raw, from the bicubic MS_0 (the head starts at zero)


@pytest.mark.slow
def test_smoke_run_writes_a_strictly_loadable_file_with_its_card(smoke_run) -> None:
    path, _ = smoke_run
    with safe_open(path, "pt") as f:
        card = f.metadata()
        keys = set(f.keys())
        dtypes = {f.get_tensor(k).dtype for k in keys}
    assert CARD_KEYS <= set(card)
    assert card["model"] == "crossdiff" and card["preset"] == "crossdiff-demo"
    assert json.loads(card["steps"]) == {"stage1": 40, "stage2": 40}
    assert card["command"] == "python -m train.pansharpen " + " ".join(SMOKE) + f" --out {path} --data " \
        + card["command"].rsplit("--data ", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?|unknown \(not a git checkout\)", card["git_commit"])
    assert float(card["dn_scale"]) == 16383 and "U.S. Geological Survey" in card["attribution"]
    assert "SYNTHETIC PAN" in card["caveats"] and "rows 616-1795, cols 1528-1975" in card["holdout"]
    assert card["storage_dtype"] in ("float16", "bfloat16", "float32")
    assert dtypes == {pansharpen.STORAGE_DTYPES[card["storage_dtype"]]}
    check = json.loads(card["storage_check"])
    if card["storage_dtype"] != "float32":
        assert abs(check[card["storage_dtype"]]["delta_psnr_db"]) <= pansharpen.STORAGE_TOLERANCE_DB
    metrics = json.loads(card["metrics"])
    assert set(metrics) == {"EXP", "Brovey", "GS", "GSA", "MTF-GLP", "MTF-GLP-HPM", "CrossDiff crossdiff-demo"}
    curves = json.loads(card["learning_curve"])
    assert [p["step"] for p in curves["stage2"]] == [40] and "ERGAS" in curves["stage2"][0]
    # every key under one of the three prefixes, each part loading strictly into its preset
    counts = {}
    with safe_open(path, "pt") as f:
        for part, builder in (("p2m", "crossdiff-unet"), ("m2p", "crossdiff-unet"), ("fusion", "crossdiff-fusion")):
            state = {k[len(part) + 1:]: f.get_tensor(k) for k in keys if k.startswith(part + ".")}
            extra = {"spectral_num": 3} if part == "fusion" else {"direction": part, "spectrun_num": 3}
            net = models.build(builder, preset="crossdiff-demo", **extra)
            net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
            counts[part] = sum(p.numel() for p in net.parameters())
    assert sum(counts.values()) == int(card["parameters"]) and counts == json.loads(card["parameters_per_network"])
    assert sum(len([k for k in keys if k.startswith(p + ".")]) for p in pansharpen.PARTS) == len(keys)
    pipe = build(PipelineSpec("pansharpen", path))  # the pipeline's own strict loader, and the card's DN scale
    assert pipe.bands == 3 and pipe.dn_scale == 16383


@pytest.mark.slow
def test_card_metrics_are_what_the_pipeline_computes(smoke_run) -> None:
    """The card's CrossDiff row (computed in training through `CrossDiff`) equals the evaluation through the pipeline
    built from the file (`train.evaluate_pansharpen`), on a smaller hold-out crop for speed."""
    path, _ = smoke_run
    from train.evaluate_pansharpen import heldout_pair, pipeline_sharpener, quality

    pair = heldout_pair(DATA, Window(HOLDOUT.row, HOLDOUT.col, 128, 128))
    net_file = {part: {} for part in pansharpen.PARTS}
    with safe_open(path, "pt") as f:
        for key in f.keys():
            part, name = key.split(".", 1)
            net_file[part][name] = f.get_tensor(key).float()
    nets = pansharpen.build_networks("crossdiff-demo")
    for part, net in nets.items():
        net.load_state_dict(net_file[part])
    trained = quality(pansharpen.fused(pansharpen.crossdiff(nets))(pair.ms, pair.pan), pair.reference)
    served = quality(pipeline_sharpener(path)(pair.ms, pair.pan), pair.reference)
    assert served == pytest.approx(trained, rel=1e-6)


# ---- presets ------------------------------------------------------------------------------------------------------

def test_demo_presets_have_the_documented_widths_and_the_official_group_rule() -> None:
    p2m = models.build("crossdiff-unet", preset="crossdiff-demo", direction="p2m", spectrun_num=3)
    head = models.build("crossdiff-fusion", preset="crossdiff-demo", spectral_num=3)
    assert p2m.config.channels == (16, 32, 32, 64) and p2m.config.embed_dim == 64 and p2m.config.inter_dim == 32
    assert p2m.config.channels[0] % 4 == 0 and all(c % 32 == 0 for c in p2m.config.channels[1:])
    assert head.config.widths == (64, 32, 32, 16) and head.config.inner_channel == 16
    assert p2m.res3.groupnorm1.num_groups == 4 and p2m.down1.groupnorm1.num_groups == 32
    assert models.build("crossdiff-unet").config.channels == (32, 64, 128, 256)  # the default stays official
    assert models.build("crossdiff-fusion").config.inner_channel == 32
    over = models.build("crossdiff-unet", preset="crossdiff-demo", channels=[8, 32, 32, 64])
    assert over.config.channels == (8, 32, 32, 64) and over.config.embed_dim == 64


@pytest.mark.parametrize("name", ["crossdiff-unet", "crossdiff-fusion"])
def test_unknown_preset_names_the_choices(name: str) -> None:
    with pytest.raises(ValueError, match=rf"unknown {name} preset 'tiny'.*crossdiff-demo"):
        models.build(name, preset="tiny")


def test_models_load_takes_the_preset(tmp_path) -> None:
    torch.manual_seed(0)
    net = models.build("crossdiff-unet", preset="crossdiff-demo", direction="m2p", spectrun_num=3)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "m2p.safetensors"))
    loaded = models.load("crossdiff-unet", tmp_path / "m2p.safetensors", preset="crossdiff-demo", direction="m2p",
                         spectrun_num=3)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(Exception, match="mis-shaped"):
        models.load("crossdiff-unet", tmp_path / "m2p.safetensors", direction="m2p", spectrun_num=3)  # official size


# ---- the pieces of the training step ----------------------------------------------------------------------------

def _alpha_bar_by_hand(t: int, steps: int = 1000, s: float = 0.008) -> float:
    """ᾱ_t = ∏_{i<t} (1 − β_i), β_i = min(1 − f((i+1)/T)/f(i/T), 0.999), f(τ) = cos²((τ + s)/(1 + s)·π/2)."""
    def f(tau: float) -> float:
        return math.cos((tau + s) / (1 + s) * math.pi / 2) ** 2

    product = 1.0
    for i in range(t):
        product *= 1 - min(1 - f((i + 1) / steps) / f(i / steps), 0.999)
    return product


def test_noising_follows_the_cosine_schedule() -> None:
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.rand(4, 3, 8, 8, generator=g) * 2 - 1, torch.randn(4, 3, 8, 8, generator=g)
    t = torch.tensor([1, 50, 500, 1000])
    out = pansharpen.noised(x0, t, noise)
    for i, step in enumerate(t.tolist()):
        a = math.sqrt(_alpha_bar_by_hand(step))
        expected = a * x0[i].double() + math.sqrt(1 - a * a) * noise[i].double()
        assert torch.allclose(out[i].double(), expected, atol=1e-6), step
    assert pansharpen.SIGNAL_LEVELS[49] == pytest.approx(math.sqrt(_alpha_bar_by_hand(50)), rel=1e-12)


def test_condition_dropout_zeroes_whole_samples_at_the_rate() -> None:
    cond = torch.rand(4000, 1, 2, 2) + 0.5
    out = pansharpen.dropped(cond, 0.1, torch.Generator().manual_seed(1))
    zero = (out == 0).flatten(1).all(1)
    assert torch.equal(out[~zero], cond[~zero]) and 0.085 < float(zero.double().mean()) < 0.115


def test_stage1_loss_is_the_l1_of_both_epsilon_predictions() -> None:
    """Recompute both losses from the same draws: t, ε and the dropout mask come from the generator in order."""
    torch.manual_seed(0)
    nets = pansharpen.build_networks("crossdiff-demo")
    pan0, ms0 = torch.rand(3, 1, 16, 24) * 0.3, torch.rand(3, 3, 16, 24) * 0.3
    loss = pansharpen.stage1_loss(nets["p2m"], nets["m2p"], pan0, ms0, torch.Generator().manual_seed(5), 0.0)
    g = torch.Generator().manual_seed(5)
    expected = 0.0
    for net, x0, cond in ((nets["p2m"], 2 * ms0 - 1, 2 * pan0 - 1), (nets["m2p"], 2 * pan0 - 1, 2 * ms0 - 1)):
        t = torch.randint(1, 1001, (3,), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        torch.rand(3, generator=g)  # the dropout draw (rate 0: nothing dropped)
        a = torch.tensor([math.sqrt(_alpha_bar_by_hand(int(k))) for k in t])[:, None, None, None].float()
        expected = expected + (net(a * x0 + (1 - a * a).sqrt() * eps, cond, t) - eps).abs().mean()
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_stage2_forward_is_the_runtime_sharpen() -> None:
    """The trained forward (bicubic MS_0, features at t = 50, head) equals `CrossDiff.sharpen`'s sr_raw for the same
    feature noise, and MS_0 its ms_up."""
    torch.manual_seed(1)
    nets = pansharpen.build_networks("crossdiff-demo")
    with torch.no_grad():
        nets["fusion"].final2.weight.normal_(0, 0.01)  # a head that is not the identity
    g = torch.Generator().manual_seed(2)
    pan_dn, ms_dn = 6000 + 4000 * torch.rand(2, 1, 40, 48, generator=g), 6000 + 4000 * torch.rand(2, 3, 10, 12,
                                                                                                   generator=g)
    model = pansharpen.crossdiff(nets)
    pan0, ms0 = pansharpen.network_inputs(pan_dn, ms_dn, pansharpen.DN_SCALE)
    with torch.no_grad():
        trained = pansharpen.stage2_prediction(model, nets["fusion"], pan0, ms0, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    noise = {"p2m": torch.randn(2, 3, 40, 48, generator=g), "m2p": torch.randn(2, 1, 40, 48, generator=g)}
    runtime = model.sharpen(pan_dn, ms_dn, noise)
    assert torch.allclose(trained, runtime.sr_raw, rtol=0, atol=1e-6)
    assert torch.allclose(ms0, runtime.ms_up, rtol=0, atol=1e-7) and torch.allclose(pan0, pan_dn / 16383)
    assert not torch.allclose(runtime.sr_raw, runtime.ms_up, atol=1e-5)
    assert isinstance(model, CrossDiff) and model.dn_scale == pansharpen.DN_SCALE == 16383


def _symmetries(image: np.ndarray) -> list[np.ndarray]:
    return [np.flip(np.rot90(image, k, (1, 2)), 2) if flip else np.rot90(image, k, (1, 2))
            for k in range(4) for flip in (0, 1)]


def test_each_crop_is_a_wald_pair_made_after_its_symmetry() -> None:
    """With an area of exactly one window (+ the excluded gap) every crop comes from the same place: find its
    symmetry from the reference, then degrade that symmetric window with `rsinfer.pansharpening.degrade` here and cut
    the margin off: MS, PAN and reference must match."""
    crop, margin = 32, pansharpen.MARGIN
    side = crop + 2 * margin
    g = torch.Generator().manual_seed(0)
    area = 7000 + 2000 * torch.rand(3, side, side + pansharpen.HOLDOUT_GAP, generator=g)
    sampler = pansharpen.WaldSampler(area, crop, torch.Generator().manual_seed(1))
    window = area[:, :, :side].double().numpy()
    batch = sampler.sample(12)
    assert batch.pan.shape == (12, 1, 32, 32) and batch.ms.shape == (12, 3, 8, 8)
    seen = set()
    for i in range(12):
        reference = batch.reference[i].double().numpy()
        matches = [k for k, v in enumerate(_symmetries(window)) if np.allclose(v[:, margin:-margin, margin:-margin],
                                                                               reference, atol=1e-3)]
        assert len(matches) == 1
        seen.add(matches[0])
        pair = degrade(np.ascontiguousarray(_symmetries(window)[matches[0]]), None, landsat_bands(), 4)
        np.testing.assert_allclose(batch.ms[i].double().numpy(), pair.ms[:, 5:13, 5:13], rtol=1e-6)
        np.testing.assert_allclose(batch.pan[i, 0].double().numpy(), pair.pan[margin:-margin, margin:-margin],
                                   rtol=1e-6)
        np.testing.assert_allclose(batch.pan[i, 0].double().numpy(), reference.mean(0), rtol=1e-6)  # synthetic PAN
    assert len(seen) > 3


def test_crops_never_reach_the_gap_or_the_holdout() -> None:
    assert pansharpen.TRAINING_AREA.right + pansharpen.HOLDOUT_GAP == HOLDOUT.col == 1528
    area = torch.ones(3, pansharpen.TRAINING_AREA.height, pansharpen.TRAINING_AREA.width + pansharpen.HOLDOUT_GAP)
    sampler = pansharpen.WaldSampler(area, 64, torch.Generator().manual_seed(0))
    side = 64 + 2 * pansharpen.MARGIN
    corners = sampler.crops.corners
    assert int(corners[:, 1].max()) + side == pansharpen.TRAINING_AREA.width == 1464  # last column read: 1463
    assert int(corners[:, 0].max()) + side == 1420 and int(corners.min()) == 0


def test_the_training_area_is_valid_and_left_of_the_holdout(data_dir) -> None:
    area = pansharpen.load_training_area(data_dir)
    assert area.shape == (3, 1420, 1528) and bool((area > 0).all())
    from train.data import read_bands
    from train.evaluate_pansharpen import landsat_paths

    b3 = read_bands(landsat_paths(data_dir)[1])[0][0]
    assert torch.equal(area[1], b3[440:1860, 0:1528])


def test_bad_arguments_are_named(capsys) -> None:
    for argv, message in ((["--crop", "36"], "--crop must be a positive multiple of 8"),
                          (["--stage2-steps", "0"], "--stage2-steps must be ≥ 1"),
                          (["--cond-dropout", "1"], "--cond-dropout must lie in [0, 1)")):
        with pytest.raises(SystemExit):
            pansharpen.parse_args(["--out", "x.safetensors", *argv])
        assert message in capsys.readouterr().err
