"""Train the demo pansharpening weights: CrossDiff at reduced widths (the `crossdiff-demo` presets of
`rsinfer.models.crossdiff` and `rsinfer.models.crossdiff_fusion`) in the authors' two stages, on Wald-degraded crops of
the bundled Landsat 8 scene (B2, B3, B4 as a 3-band MS, with a SYNTHETIC PAN), written as one safetensors file with
the model card in its metadata.

Data (`WaldSampler`): crops of (crop + 2·margin)² px of the reference bands (uint16 L1 DN, 30 m), under one of the 8
symmetries of the square, each turned into a Wald pair by `rsinfer.pansharpening.degrade` with the landsat-8 GNyq
(0.3) and ratio 4: MS = decimate_4(MTF ∗ reference), PAN = the mean of the three bands at 30 m (synthetic: Landsat's
real PAN, B8 at 15 m, is not in the shared data). The pair is degraded after the symmetry, so the decimation phase is
the one the pipeline sees, and the margin (20 px, the MTF kernel's half-width) is cut off afterwards, so every
training pixel is degraded as in the interior of a scene. Crops come from `TRAINING_AREA`, rows 440–1859 × cols
0–1463 (fully valid, clear of the nodata collar); `HOLDOUT_GAP`, cols 1464–1527, is excluded by the sampler, and the
hold-out, rows 616–1795 × cols 1528–1975 (`train.evaluate_pansharpen.HOLDOUT`), lies beyond it and is never read.

In the networks' units (`rsinfer.pipelines.crossdiff`): PAN_0 = PAN / s, MS_0 = bicubic×4(MS) / s with s the DN
scale, recorded in the card as ``dn_scale`` so that `rsinfer pansharpen --weights demo` applies it. s = 16383
(2^14 − 1), not the landsat-8 registry's 65535 (`--dn-scale`): the scene's DN lie in 5900–24150, 99.998 % of them
below 16383. At 65535 they fill only 0.09–0.37 of [0, 1], and the feature noise at t = 50 (σ 0.089 on the networks'
[−1, 1] inputs: ≈ 2900 DN at 65535, ≈ 730 DN at 16383) is 16× the detail the head must restore (≈ 180 DN rms between
the bicubic MS_0 and the reference). Measured: stage 2 at 65535 left the held-out ERGAS at the bicubic 0.580 (400
steps on untrained U-Nets; 1000 after 800 steps of stage 1), where 16383 reached 0.347 in the same 400 steps; 8191
clips 5.6 % of the values and reached 0.436. At 16383, the values above it (2.5e-5 of the scene) come out clipped.

Stage 1, cross-predictive DDPM pre-training (official `diffusion_pan2ms.py` / `diffusion_ms2pan.py`
`p_losses_dynamic`): per sample t ~ U{1 … 1000}, a_t = √ᾱ_t of the cosine schedule (`sqrt_alphas_cumprod_prev[t]`
upstream, `signal_level(t)` here), ε ~ N(0, I), and

    P2M: ε̂ = P2M(a_t·(2·MS_0 − 1) + √(1 − a_t²)·ε, cond = 2·PAN_0 − 1, t)     (the noisy MS given the PAN)
    M2P: ε̂ = M2P(a_t·(2·PAN_0 − 1) + √(1 − a_t²)·ε, cond = 2·MS_0 − 1, t)     (the noisy PAN given the MS)
    loss = mean |ε̂ − ε| of each, summed (upstream: the L1 sum)

with classifier-free dropout: the condition is zeroed with probability 0.1 (upstream draws once per batch; here per
sample). Stage 2, the fusion head on frozen U-Nets (official `fusionModel.py`): the features at the head's step t = 50
with fresh standard-normal noise, exactly as `CrossDiff.sharpen` draws them (`CrossDiff.encode`), sr_raw =
fusion(MS_0, features) = MS_0 + residual, loss = mean |sr_raw − reference / s|. The head's last conv starts at zero
(sr_raw = MS_0 at step 0). Both stages: AdamW (stage 1 lr 1e-3 and weight decay 0.01; stage 2 lr 1e-3, no weight
decay, as upstream; stage 2 at 3e-3 reached held-out ERGAS 0.284 once, and in a rerun at 2 threads never left the
bicubic start and then diverged), a linear warm-up, then a cosine to 2 % over the stage's progress max(step/steps,
elapsed/budget) (`train.decloud.learning_rate`); the stage ends after `--stageN-steps` or `--stageN-minutes`,
whichever comes first.

At the end: the held-out evaluation (`train.evaluate_pansharpen`: toolbox metrics against the baselines), the storage
dtype (float16, else bfloat16, else float32: the first whose held-out PSNR stays within `STORAGE_TOLERANCE_DB` of
float32) and the file: keys ``p2m.*``, ``m2p.*``, ``fusion.*`` in that dtype, metadata = the model card.

Run from the repository root:
``python -m train.pansharpen --out weights/crossdiff-demo.safetensors``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rsinfer import models
from rsinfer.models.crossdiff import PRESETS, CrossDiffUNet
from rsinfer.models.crossdiff_fusion import CrossDiffFusion
from rsinfer.pansharpening import degrade
from rsinfer.pipelines.crossdiff import RATIO, CrossDiff
from rsinfer.samplers.cosine_schedule import cosine_schedule
from rsinfer.tiling import Window
from train.data import CropSampler, read_bands
from train.decloud import (STORAGE_DTYPES, STORAGE_TOLERANCE_DB, begin_run, cast_state, learning_rate,
                           require_at_least_one, write_weights)
from train.evaluate_pansharpen import (BASELINE_NAMES, HOLDOUT, WaldPair, baseline, evaluate, heldout_pair,
                                       landsat_bands, landsat_paths, markdown, quality)

PARTS = ("p2m", "m2p", "fusion")
DN_SCALE = 16383.0  # 2^14 − 1: see the module docstring (the landsat-8 registry's 65535 leaves the head nothing)
BANDS = 3
TRAINING_AREA = Window(440, 0, 1420, 1464)  # rows 440–1859, cols 0–1463 of the scene
HOLDOUT_GAP = 64  # cols 1464–1527 between the training area and the hold-out, excluded by the sampler
MARGIN = 20  # px of context around each crop, cut off after degrading (the MTF kernel's half-width; a multiple of 4)
COND_DROPOUT = 0.1
CAVEATS = ("One scene (Landsat 8 LC08_L1TP_224078_20200518, B2/B3/B4); SYNTHETIC PAN (the mean of the three bands at "
           "30 m: an exact linear combination of the targets, which flatters component substitution); reduced "
           "resolution only (Wald's protocol with the oracle MTF, GNyq 0.3); spatial hold-out only (a rectangle of "
           "the same scene). No claim for real PAN sensors (Landsat B8, VHR PANs) or published benchmarks.")
ATTRIBUTION = "Landsat data courtesy of the U.S. Geological Survey (public domain)."


# ---- data ---------------------------------------------------------------------------------------------------------

def load_training_area(data: str | None = None) -> torch.Tensor:
    """(3, 1420, 1528) float32 DN of B2, B3, B4: the training area and the gap beside it (cols 0–1527)."""
    rows = slice(TRAINING_AREA.row, TRAINING_AREA.bottom)
    cols = slice(TRAINING_AREA.col, TRAINING_AREA.right + HOLDOUT_GAP)
    area = torch.cat([read_bands(path)[0][:, rows, cols] for path in landsat_paths(data)])
    if not (area > 0).all():
        raise ValueError(f"the training area {TRAINING_AREA} holds nodata (0 DN) pixels")
    return area


@dataclass(frozen=True)
class WaldBatch:
    """pan (B, 1, H, W), ms (B, 3, H/4, W/4) and reference (B, 3, H, W), float32 DN."""

    pan: torch.Tensor
    ms: torch.Tensor
    reference: torch.Tensor


class WaldSampler:
    """Random crop × crop Wald pairs of the training area (see the module docstring); draws from `generator`."""

    def __init__(self, area: torch.Tensor, crop: int, generator: torch.Generator, margin: int = MARGIN) -> None:
        if crop % 8 or margin % RATIO:
            raise ValueError(f"crop {crop} must be a multiple of 8 (the U-Nets) and margin {margin} of {RATIO}")
        gap = Window(0, area.shape[-1] - HOLDOUT_GAP, area.shape[-2], HOLDOUT_GAP)
        self.crops = CropSampler([area], crop + 2 * margin, gap, generator)
        self.crop, self.margin = crop, margin
        self.sensor = landsat_bands()

    def sample(self, batch: int) -> WaldBatch:
        pans, mss, references = [], [], []
        inner, low = slice(self.margin, self.margin + self.crop), slice(self.margin // RATIO,
                                                                       (self.margin + self.crop) // RATIO)
        for crop in self.crops.sample(batch)[0].double().numpy():
            pair = degrade(crop, None, self.sensor, RATIO)  # synthetic PAN at 30 m, MS decimated by 4
            pans.append(pair.pan[None, inner, inner])
            mss.append(pair.ms[:, low, low])
            references.append(crop[:, inner, inner])
        return WaldBatch(*(torch.from_numpy(np.stack(a)).float() for a in (pans, mss, references)))


def network_inputs(pan_dn: torch.Tensor, ms_dn: torch.Tensor, dn_scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """PAN_0 (B, 1, H, W) and MS_0 (B, S, H, W) on the [0, 1] scale, as `CrossDiff.sharpen` makes them."""
    ms0 = F.interpolate(ms_dn, scale_factor=RATIO, mode="bicubic", align_corners=False) / dn_scale
    return pan_dn / dn_scale, ms0


# ---- the networks -------------------------------------------------------------------------------------------------

def build_networks(preset: str) -> dict[str, nn.Module]:
    """Freshly initialised P2M, M2P and fusion head of `preset` for 3 bands; the head's last conv at zero."""
    nets = {part: models.build("crossdiff-unet", preset=preset, direction=part, spectrun_num=BANDS)
            for part in ("p2m", "m2p")}
    nets["fusion"] = models.build("crossdiff-fusion", preset=preset, spectral_num=BANDS)
    with torch.no_grad():
        nets["fusion"].final2.weight.zero_()
        nets["fusion"].final2.bias.zero_()
    return nets


def crossdiff(nets: dict[str, nn.Module], dn_scale: float = DN_SCALE, seed: int = 0) -> CrossDiff:
    """The runtime's CrossDiff over copies of `nets` (the training networks stay trainable)."""
    return CrossDiff(*(copy.deepcopy(nets[part]) for part in PARTS), dn_scale=dn_scale, seed=seed)


# ---- stage 1: cross-predictive DDPM pre-training ------------------------------------------------------------------

SIGNAL_LEVELS = torch.tensor([cosine_schedule().signal_level(t) for t in range(1, 1001)],
                             dtype=torch.float64)  # a_t for t = 1 … 1000
NOISE_LEVELS = (1 - SIGNAL_LEVELS ** 2).sqrt()  # float64: √(1 − a_t²) without float32 cancellation near t = 1


def noised(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """a_t·x0 + √(1 − a_t²)·ε with a_t = √ᾱ_t of the cosine schedule, t (B,) integers in 1 … 1000."""
    a, s = (levels[t - 1].to(x0.dtype)[:, None, None, None] for levels in (SIGNAL_LEVELS, NOISE_LEVELS))
    return a * x0 + s * noise


def dropped(cond: torch.Tensor, probability: float, generator: torch.Generator) -> torch.Tensor:
    """The condition with each sample zeroed with `probability` (classifier-free training)."""
    keep = torch.rand(cond.shape[0], generator=generator) >= probability
    return cond * keep[:, None, None, None].to(cond.dtype)


def stage1_loss(p2m: CrossDiffUNet, m2p: CrossDiffUNet, pan0: torch.Tensor, ms0: torch.Tensor,
                generator: torch.Generator, cond_dropout: float = COND_DROPOUT) -> torch.Tensor:
    """The two ε-prediction L1 losses (see the module docstring), summed."""
    pan, ms = 2 * pan0 - 1, 2 * ms0 - 1  # [−1, 1]
    total = pan.new_zeros(())
    for net, x0, cond in ((p2m, ms, pan), (m2p, pan, ms)):
        t = torch.randint(1, 1001, (x0.shape[0],), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        prediction = net(noised(x0, t, noise), dropped(cond, cond_dropout, generator), t)
        total = total + (prediction - noise).abs().mean()
    return total


# ---- stage 2: the fusion head ---------------------------------------------------------------------------------------

def stage2_prediction(model: CrossDiff, fusion: CrossDiffFusion, pan0: torch.Tensor, ms0: torch.Tensor,
                      generator: torch.Generator) -> torch.Tensor:
    """sr_raw (B, S, H, W) of the trainable `fusion` on the frozen U-Nets of `model`, fresh feature noise."""
    batch, bands, height, width = ms0.shape
    noise = {"p2m": torch.randn(batch, bands, height, width, generator=generator),
             "m2p": torch.randn(batch, 1, height, width, generator=generator)}
    with torch.no_grad():
        features = model.encode(2 * pan0 - 1, 2 * ms0 - 1, noise)
    return fusion(ms0, features["p2m"], features["m2p"])


# ---- training loop ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stage:
    name: str
    steps: int
    minutes: float | None
    lr: float
    weight_decay: float
    warmup: int


def run_stage(stage: Stage, parameters: list[nn.Parameter], step_loss: Callable[[], torch.Tensor],
              evaluate_now: Callable[[int], dict] | None, eval_every: int, log_every: int, log=print) -> list[dict]:
    """Optimise `parameters` on `step_loss` for the stage's steps or minutes; returns its learning curve."""
    if stage.steps == 0:
        return [{"step": 0, "minutes": 0.0, "loss": None}]
    optimiser = torch.optim.AdamW(parameters, lr=stage.lr, weight_decay=stage.weight_decay)
    budget = stage.minutes * 60 if stage.minutes else math.inf
    start, losses, curve, step = time.perf_counter(), [], [], 0
    while (progress := max(step / stage.steps, (time.perf_counter() - start) / budget)) < 1:
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(stage.lr, step, stage.warmup, progress)
        loss = step_loss()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{stage.name}: the loss became {float(loss)} at step {step}")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
        step += 1
        elapsed = time.perf_counter() - start
        if step % log_every == 0:
            log(f"{stage.name} step {step}  loss {np.mean(losses[-log_every:]):.6f}  "
                f"lr {optimiser.param_groups[0]['lr']:.2e}  {elapsed / 60:.1f} min  {elapsed / step:.3f} s/step")
        if evaluate_now is not None and eval_every and step % eval_every == 0:
            curve.append({"step": step, "minutes": round(elapsed / 60, 2),
                          "loss": round(float(np.mean(losses[-eval_every:])), 6), **evaluate_now(step)})
            log(f"{stage.name} held-out at step {step}: {json.dumps(curve[-1])}")
    if not curve or curve[-1]["step"] != step:
        curve.append({"step": step, "minutes": round((time.perf_counter() - start) / 60, 2),
                      "loss": round(float(np.mean(losses[-log_every:] or [math.nan])), 6)})
    return curve


def fused(model: CrossDiff) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """`model` as a sharpener of whole images in DN, as the pipeline computes (`sr` × dn_scale)."""
    def sharpen(ms: np.ndarray, pan: np.ndarray) -> np.ndarray:
        result = model.sharpen(torch.from_numpy(pan).float()[None, None], torch.from_numpy(ms).float()[None])
        return (result.sr * model.dn_scale)[0].double().numpy()
    return sharpen


def heldout_quality(nets: dict[str, nn.Module], pair: WaldPair, dn_scale: float) -> dict[str, float]:
    values = quality(fused(crossdiff(nets, dn_scale))(pair.ms, pair.pan), pair.reference)
    return {k: round(values[k], 5) for k in ("ERGAS", "Q2n", "Q_avg", "SAM", "PSNR")}


def train(nets: dict[str, nn.Module], args: argparse.Namespace, pair: WaldPair,
          log=print) -> tuple[dict[str, list[dict]], dict[str, float]]:
    """Both stages in place on `nets`; returns each stage's learning curve and wall seconds."""
    generator = torch.Generator().manual_seed(args.seed)
    sampler = WaldSampler(load_training_area(args.data), args.crop, generator)

    def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        data = sampler.sample(args.batch)
        return (*network_inputs(data.pan, data.ms, args.dn_scale), data.reference / args.dn_scale)

    def stage1_step() -> torch.Tensor:
        pan0, ms0, _ = batch()
        return stage1_loss(nets["p2m"], nets["m2p"], pan0, ms0, generator, args.cond_dropout)

    curves, wall = {}, {}
    start = time.perf_counter()
    stage1 = Stage("stage 1", args.stage1_steps, args.stage1_minutes, args.stage1_lr, 0.01, args.warmup)
    for part in ("p2m", "m2p"):
        nets[part].train()
    curves["stage1"] = run_stage(stage1, [*nets["p2m"].parameters(), *nets["m2p"].parameters()], stage1_step,
                                 None, 0, args.log_every, log)
    wall["stage1"] = time.perf_counter() - start

    start = time.perf_counter()
    model = crossdiff(nets, args.dn_scale)  # the U-Nets frozen from here on (eval copies; no gradient)
    fusion = nets["fusion"].train()

    def stage2_step() -> torch.Tensor:
        pan0, ms0, reference = batch()
        return (stage2_prediction(model, fusion, pan0, ms0, generator) - reference).abs().mean()

    stage2 = Stage("stage 2", args.stage2_steps, args.stage2_minutes, args.stage2_lr, 0.0, args.warmup)
    curves["stage2"] = run_stage(stage2, list(fusion.parameters()), stage2_step,
                                 lambda step: heldout_quality(nets, pair, args.dn_scale), args.eval_every,
                                 args.log_every, log)
    wall["stage2"] = time.perf_counter() - start
    for net in nets.values():
        net.eval()
    return curves, wall


# ---- storage and the card -----------------------------------------------------------------------------------------

def state_of(nets: dict[str, nn.Module], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The three networks' tensors under ``p2m.``, ``m2p.``, ``fusion.`` in `dtype`."""
    return {f"{part}.{name}": value for part in PARTS for name, value in cast_state(nets[part], dtype).items()}


def with_dtype(nets: dict[str, nn.Module], dtype: torch.dtype) -> dict[str, nn.Module]:
    """Copies of `nets` whose parameters went through `dtype` and back to float32, as loading a stored file does."""
    copies = {}
    for part, net in nets.items():
        copies[part] = copy.deepcopy(net)
        copies[part].load_state_dict({k: v.float() for k, v in cast_state(net, dtype).items()})
    return copies


def choose_storage(nets: dict[str, nn.Module], pair: WaldPair, dn_scale: float, requested: str,
                   log=print) -> tuple[str, dict]:
    """The storage dtype (`requested`, or with "auto" the first of float16, bfloat16 whose held-out PSNR stays within
    the tolerance) and every candidate's measured PSNR and ERGAS change."""
    def measure(candidate: dict[str, nn.Module]) -> dict[str, float]:
        return quality(fused(crossdiff(candidate, dn_scale))(pair.ms, pair.pan), pair.reference)

    reference = measure(nets)
    measured: dict[str, dict[str, float]] = {"float32": {"psnr": round(reference["PSNR"], 4),
                                                         "ergas": round(reference["ERGAS"], 5)}}
    candidates = ("float16", "bfloat16") if requested == "auto" else (requested,)
    for name in (c for c in candidates if c != "float32"):
        values = measure(with_dtype(nets, STORAGE_DTYPES[name]))
        measured[name] = {"delta_psnr_db": round(values["PSNR"] - reference["PSNR"], 4),
                          "delta_ergas": round(values["ERGAS"] - reference["ERGAS"], 5)}
        log(f"storage {name}: held-out change {measured[name]}")
    if requested != "auto":
        return requested, measured
    for name in ("float16", "bfloat16"):
        if abs(measured[name]["delta_psnr_db"]) <= STORAGE_TOLERANCE_DB:
            return name, measured
    return "float32", measured


def parameter_counts(nets: dict[str, nn.Module]) -> dict[str, int]:
    return {part: sum(p.numel() for p in nets[part].parameters()) for part in PARTS}


def model_card(args: argparse.Namespace, nets: dict[str, nn.Module], curves: dict[str, list[dict]], metrics: dict,
               storage: str, storage_check: dict, wall: dict[str, float], cpu: float, machine: str, command: str,
               commit: str) -> dict[str, str]:
    """The safetensors metadata (every value a string; JSON where structured)."""
    counts = parameter_counts(nets)
    steps = {stage: curve[-1]["step"] for stage, curve in curves.items()}
    return {
        "format": "pt",
        "model": "crossdiff",
        "preset": args.preset,
        "parameters": str(sum(counts.values())),
        "parameters_per_network": json.dumps(counts),
        "task": "pansharpening by 4 of a 3-band MS (Landsat 8 B2, B3, B4 DN) with a PAN on the 4x finer grid; "
                "rsinfer pansharpen (one deterministic forward; feature noise at t = 50)",
        "dn_scale": f"{args.dn_scale:g}",
        "sensor": "landsat-8",
        "bands": "B2 B3 B4",
        "data": "Landsat 8 OLI L1TP LC08_L1TP_224078_20200518 B2/B3/B4, uint16 DN, 30 m (../shared/data/landsat); "
                "Wald pairs made per crop with rsinfer.pansharpening.degrade (landsat-8 GNyq 0.3, ratio 4, MS "
                "decimated to 120 m) and a SYNTHETIC PAN (the mean of B2, B3, B4 at 30 m); crops "
                f"{args.crop}x{args.crop} (+{MARGIN} px of context, cut after degrading) from rows 440-1859, cols "
                "0-1463, rot90/flip before degrading",
        "holdout": f"rows {HOLDOUT.row}-{HOLDOUT.bottom - 1}, cols {HOLDOUT.col}-{HOLDOUT.right - 1} of the scene "
                   f"({HOLDOUT.height}x{HOLDOUT.width} px), never read in training; cols 1464-1527 are a gap never "
                   "cropped; evaluation: Wald pair of the whole rectangle (train/evaluate_pansharpen.py)",
        "training": json.dumps({
            "stage1": {"objective": "cross-predictive DDPM, epsilon-prediction, L1; cosine schedule T = 1000, "
                                    "t ~ U{1..1000}; P2M: noisy MS_0 given PAN_0, M2P: noisy PAN_0 given MS_0 "
                                    "(both on [-1, 1])", "cond_dropout": args.cond_dropout,
                       "steps": steps["stage1"], "lr": args.stage1_lr, "weight_decay": 0.01},
            "stage2": {"objective": "fusion head on the frozen U-Nets' encoder features at t = 50 (fresh noise), "
                                    "L1 of sr_raw against reference / dn_scale", "steps": steps["stage2"],
                       "lr": args.stage2_lr, "weight_decay": 0.0},
            "batch": args.batch, "crop": args.crop, "warmup": args.warmup, "seed": args.seed,
            "optimizer": "AdamW, linear warm-up, cosine to 2 %"}),
        "steps": json.dumps(steps),
        "wall_time_s": f"{sum(wall.values()):.0f}",
        "wall_time_per_stage_s": json.dumps({k: round(v) for k, v in wall.items()}),
        "cpu_time_s": f"{cpu:.0f}",
        "machine": machine,
        "learning_curve": json.dumps(curves),
        "metrics": json.dumps(metrics),
        "storage_dtype": storage,
        "storage_check": json.dumps(storage_check),
        "caveats": CAVEATS,
        "attribution": ATTRIBUTION,
        "command": command,
        "git_commit": commit,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=tuple(PRESETS), default="crossdiff-demo")
    parser.add_argument("--out", required=True, help="the safetensors file to write")
    parser.add_argument("--stage1-steps", type=int, default=600, help="stage-1 optimiser steps (0: none, the "
                                                                       "ablation on untrained U-Nets)")
    parser.add_argument("--stage1-minutes", type=float, help="stop stage 1 (and finish its schedule) after this")
    parser.add_argument("--stage2-steps", type=int, default=2000, help="stage-2 optimiser steps")
    parser.add_argument("--stage2-minutes", type=float, help="stop stage 2 (and finish its schedule) after this")
    parser.add_argument("--stage1-lr", type=float, default=1e-3)
    parser.add_argument("--stage2-lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=64, help="crop side in PAN pixels (a multiple of 8)")
    parser.add_argument("--cond-dropout", type=float, default=COND_DROPOUT,
                        help="stage 1: probability of a zeroed condition per sample")
    parser.add_argument("--dn-scale", type=float, default=DN_SCALE, help="the DN that maps to 1 (recorded in the "
                                                                         "card; default %(default)g)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--storage", choices=("auto", *STORAGE_DTYPES), default="auto")
    parser.add_argument("--eval-every", type=int, default=500, help="stage 2: held-out metrics every N steps (0: "
                                                                    "never)")
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--data", help="the shared data folder (default ../shared/data beside the repository)")
    args = parser.parse_args(argv)
    if args.stage1_steps < 0:
        parser.error(f"--stage1-steps must be ≥ 0, got {args.stage1_steps}")
    if not (math.isfinite(args.dn_scale) and args.dn_scale > 0):
        parser.error(f"--dn-scale must be a positive number, got {args.dn_scale}")
    require_at_least_one(parser, args, ("stage2_steps", "batch", "warmup", "threads", "log_every"))
    if args.crop < 8 or args.crop % 8:
        parser.error(f"--crop must be a positive multiple of 8 (the U-Nets' three stride-2 levels), got {args.crop}")
    if not 0 <= args.cond_dropout < 1:
        parser.error(f"--cond-dropout must lie in [0, 1), got {args.cond_dropout}")
    landsat_paths(args.data)  # fail now, not after building the networks
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args, command, machine, commit = begin_run("train.pansharpen", argv, parse_args)

    torch.manual_seed(args.seed)
    nets = build_networks(args.preset)
    print(f"{args.preset}: {parameter_counts(nets)} parameters", flush=True)
    pair = heldout_pair(args.data)
    cpu = time.process_time()
    curves, wall = train(nets, args, pair, log=lambda line: print(line, flush=True))
    cpu = time.process_time() - cpu

    storage, storage_check = choose_storage(nets, pair, args.dn_scale, args.storage, log=print)
    stored = with_dtype(nets, STORAGE_DTYPES[storage])
    methods = {row: baseline(name) for name, row in BASELINE_NAMES.items()}
    methods[f"CrossDiff {args.preset}"] = fused(crossdiff(stored, args.dn_scale))
    metrics = {row: {k: round(v, 5) for k, v in values.items()} for row, values in evaluate(methods, pair).items()}
    card = model_card(args, nets, curves, metrics, storage, storage_check, wall, cpu, machine, command, commit)

    out = write_weights(args.out, state_of(nets, STORAGE_DTYPES[storage]), card)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {storage}); steps {card['steps']}, "
          f"{sum(wall.values()) / 60:.1f} min wall ({card['wall_time_per_stage_s']} s), {cpu / 60:.1f} min CPU")
    print(markdown(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
