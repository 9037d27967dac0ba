"""Train the demo cloud-removal weights: a reduced DB-CR network (`rsinfer.models.dbcr.PRESETS`) as a deterministic
bridge on the Sen1Floods11 chip under synthetic clouds, written as safetensors with its model card in the metadata.

Bridge, with the α-ratio sampler's conventions (`rsinfer.samplers.alpha_ratio`, `rsinfer.pipelines.dbcr.DbCr`): the
clear image x0 and the cloudy image y = clouds(x0) (`train.clouds`) are joined by

    x_t = α_t·y + (1 − α_t)·x0,   α_t = sin(πt/2),   t ∈ [0, 1],

and the network, given t·T (T = `DbCrConfig.timesteps`; `DbCr` hands it (2T/π)·asin(α_t), the same number), predicts
x0 (x0-prediction): x̂0 = f(x_t, sar, t·T), loss L1 = mean |x̂0 − x0| over bands and pixels. t ~ U(0, 1) per sample,
except a fraction (`--t1-fraction`, 20 %) at t = 1, the state the one-step sampler starts from: x_1 = y. The optical
input is x_t only; feeding y beside it would hand the network x0 = (x_t − α_t·y)/(1 − α_t) exactly.

Data (`train.data`): random 64 × 64 crops of columns 0–383 (the hold-out columns 384–511 are never read), rot90/flip,
a reflectance gain U(0.9, 1.1) per crop, and a fresh cloud field per crop. Optimiser: AdamW (lr 2e-3, weight decay
0.01), linear warm-up over 200 steps, then a cosine decay to 2 % of the peak over the run's progress
p = max(step/steps, elapsed/budget): the run ends after `--steps` steps or `--budget-minutes`, whichever comes first,
and the schedule completes either way. Initialisation: the time modulation, NAFNet's residual scales β, γ and the
head start at zero (plain normalisation at every t, identity blocks, x̂0 = x_t at step 0). The network's ops run on the
reference backend (pure PyTorch: differentiable); evaluation runs through the runtime (`DbCr`, the ext backend when
built), as ``rsinfer decloud`` does.

At the end: the held-out evaluation (`train.evaluate_decloud`, 1/3/5 steps, standard and opaque sets), the storage
dtype (float16, else bfloat16, else float32: the first whose held-out PSNR at 1 and 5 steps stays within
`STORAGE_TOLERANCE_DB` of float32), and the file: tensors in that dtype, metadata = the model card (preset, data and
hold-out, steps, wall and CPU time, machine, metrics, caveats, the exact command, the git commit).

Run from the repository root:
``python -m train.decloud --preset dbcr-demo --steps 6000 --out weights/dbcr-demo.safetensors``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

from rsinfer import ops
from rsinfer.environment import cpu_model_and_flags
from rsinfer.models import build
from rsinfer.models.dbcr import PRESETS, DbCrNet
from rsinfer.pipelines.dbcr import DbCr
from train.clouds import CloudConfig, generate_clouds
from train.data import SEN1FLOODS11_HOLDOUT, CropSampler, data_dir, load_chip, random_gains
from train.evaluate_decloud import HeldOut, evaluate, heldout_set, quality, restore, with_plan

STORAGE_TOLERANCE_DB = 0.05
STORAGE_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
CAVEATS = ("Synthetic clouds from train/clouds.py (the training generator: the held-out figures are in distribution); "
           "one scene (Sen1Floods11 Spain_7370579); spatial hold-out only (columns 384-511 of the same chip). No claim "
           "about real clouds or about published DB-CR / SEN12MS-CR benchmarks. Wall time measured on a shared machine "
           "(other jobs running): pessimistic for a dedicated 2-core machine.")
ATTRIBUTION = ("Contains modified Copernicus Sentinel data; Sen1Floods11 dataset (Bonafilia et al., CVPRW 2020), "
               "sample chip Spain_7370579.")
REPOSITORY = Path(__file__).resolve().parents[1]


def bridge_state(clear: torch.Tensor, cloudy: torch.Tensor, t1_fraction: float,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_t, t): t ~ U(0, 1) per sample, a `t1_fraction` of them at 1; x_t = α_t·y + (1 − α_t)·x0, α_t = sin(πt/2)."""
    batch = clear.shape[0]
    t = torch.rand(batch, generator=generator)
    t = torch.where(torch.rand(batch, generator=generator) < t1_fraction, torch.ones(batch), t)
    alpha = torch.sin(0.5 * math.pi * t)[:, None, None, None]
    return torch.lerp(clear, cloudy, alpha), t


def prepare_for_training(net: DbCrNet) -> DbCrNet:
    """Zero the time modulation (plain normalisation at first), NAFNet's residual scales β, γ (identity blocks) and
    the head (the network starts as x̂0 = x_t)."""
    with torch.no_grad():
        for name, parameter in net.named_parameters():
            if ".modulation." in name or name.endswith((".beta", ".gamma")) or name.startswith("head."):
                parameter.zero_()
    return net


def learning_rate(peak: float, step: int, warmup: int, progress: float, floor: float = 0.02) -> float:
    """Linear warm-up over `warmup` steps, then a cosine from `peak` down to `floor`·`peak` as progress goes 0 → 1."""
    cosine = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return peak * min(1.0, (step + 1) / warmup) * cosine


def runtime_view(net: DbCrNet) -> DbCr:
    """A copy of `net` behind the runtime (the training network itself is left trainable)."""
    return DbCr(copy.deepcopy(net), tile=64, batch_size=16, weights="training")


def heldout_psnr(net: DbCrNet, data: HeldOut, steps: int = 1) -> float:
    return quality(restore(with_plan(runtime_view(net), steps=steps), data), data)["psnr"]


def train(net: DbCrNet, args: argparse.Namespace, log=print) -> list[dict]:
    """Train `net` in place; returns the learning curve (loss, and held-out 1-step PSNR every `eval_every` steps)."""
    generator = torch.Generator().manual_seed(args.seed)
    chip = load_chip(args.data)
    sampler = CropSampler([chip.optical, chip.sar], args.crop, SEN1FLOODS11_HOLDOUT, generator)
    heldout = heldout_set(chip)
    clouds = CloudConfig()
    optimiser = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.01)
    step_fn = torch.compile(net) if args.compile else net
    curve: list[dict] = []
    start, losses = time.perf_counter(), []
    budget = args.budget_minutes * 60 if args.budget_minutes else math.inf
    step = 0
    while True:
        progress = max(step / args.steps, (time.perf_counter() - start) / budget)
        if progress >= 1:
            break
        clear, sar = sampler.sample(args.batch)
        clear = random_gains(clear, (0.9, 1.1), generator)
        cloudy = generate_clouds(args.batch, args.crop, args.crop, generator, clouds).apply(clear)
        x_t, t = bridge_state(clear, cloudy, args.t1_fraction, generator)
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(args.lr, step, args.warmup, progress)
        with ops.use_backend("reference"):
            loss = (step_fn(x_t, sar, t * net.config.timesteps) - clear).abs().mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the loss became {float(loss)} at step {step}")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % args.log_every == 0:
            elapsed = time.perf_counter() - start
            log(f"step {step}  loss {sum(losses[-args.log_every:]) / args.log_every:.5f}  "
                f"lr {optimiser.param_groups[0]['lr']:.2e}  {elapsed / 60:.1f} min  {elapsed / step:.3f} s/step")
        if args.eval_every and (step % args.eval_every == 0):
            point = {"step": step, "minutes": round((time.perf_counter() - start) / 60, 2),
                     "loss": round(sum(losses[-args.eval_every:]) / len(losses[-args.eval_every:]), 6),
                     "heldout_psnr_1step": round(heldout_psnr(net, heldout), 3)}
            curve.append(point)
            log(f"held-out 1-step PSNR {point['heldout_psnr_1step']:.2f} dB at step {step}")
    if not curve or curve[-1]["step"] != step:
        curve.append({"step": step, "minutes": round((time.perf_counter() - start) / 60, 2),
                      "loss": round(sum(losses[-50:]) / max(1, len(losses[-50:])), 6)})
    return curve


def cast_state(net: nn.Module, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {name: value.detach().to(dtype).contiguous() for name, value in net.state_dict().items()}


def with_state(net: DbCrNet, state: dict[str, torch.Tensor]) -> DbCrNet:
    """A copy of `net` holding `state` (cast back to float32, as loading a stored file does)."""
    other = copy.deepcopy(net)
    other.load_state_dict({name: value.float() for name, value in state.items()}, strict=True)
    return other


def choose_storage(net: DbCrNet, data: HeldOut, requested: str, log=print) -> tuple[str, dict]:
    """The storage dtype (`requested`, or with "auto" the first of float16, bfloat16 within the tolerance) and the
    measured held-out PSNR change at 1 and 5 steps of every candidate."""
    reference = {k: heldout_psnr(net, data, k) for k in (1, 5)}
    measured: dict[str, dict[str, float]] = {"float32": {f"psnr_{k}step": round(v, 4) for k, v in reference.items()}}
    candidates = ("float16", "bfloat16") if requested == "auto" else (requested,)
    for name in candidates:
        if name == "float32":
            continue
        cast = with_state(net, cast_state(net, STORAGE_DTYPES[name]))
        measured[name] = {f"delta_{k}step_db": round(heldout_psnr(cast, data, k) - reference[k], 4) for k in (1, 5)}
        log(f"storage {name}: held-out PSNR change {measured[name]}")
    if requested != "auto":
        return requested, measured
    for name in ("float16", "bfloat16"):
        if max(abs(v) for v in measured[name].values()) <= STORAGE_TOLERANCE_DB:
            return name, measured
    return "float32", measured


def git_commit() -> str:
    """HEAD's commit, with "+dirty" when the working tree differs from it (read without touching the index)."""
    def git(*words: str) -> str:
        return subprocess.run(["git", "--no-optional-locks", *words], cwd=REPOSITORY, capture_output=True,
                              text=True, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def machine_line(threads: int) -> str:
    """The CPU line of `rsinfer env`, the torch thread count and the load average when training started."""
    model, flags = cpu_model_and_flags()
    bf16 = "native" if {"avx512_bf16", "amx_bf16"} & set(flags) else "emulated (slower than float32)"
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (f"cpu: {model}; {os.cpu_count()} logical cores; features: {' '.join(flags) or 'none'}; bfloat16: {bf16}; "
            f"torch {torch.__version__}, {threads} threads; {platform.system()} {platform.machine()}; "
            f"load average at start {load}")


def require_at_least_one(parser: argparse.ArgumentParser, args: argparse.Namespace, names: Sequence[str]) -> None:
    """Stop with argparse's error when one of the integer options `names` (attribute names) is below 1."""
    for name in names:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be ≥ 1, got {getattr(args, name)}")


def begin_run(module: str, argv: Sequence[str] | None,
              parse_args: Callable[[list[str]], argparse.Namespace]) -> tuple[argparse.Namespace, str, str, str]:
    """Parse a training script's arguments, set torch's threads, print its command and machine line: (args, command,
    machine line, git commit), the commit taken as the code was when training started."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    command = f"python -m {module} " + shlex.join(argv)
    machine, commit = machine_line(args.threads), git_commit()
    print(f"{command}\n{machine}", flush=True)
    return args, command, machine, commit


def write_weights(path: str | os.PathLike, state: dict[str, torch.Tensor], card: dict[str, str]) -> Path:
    """`state` as safetensors with `card` as its metadata, written atomically (safetensors' own writer leaves a
    0600 file in place while it writes); the folder is created."""
    from safetensors.torch import save

    from rsinfer.files import write_bytes_atomically

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_bytes_atomically(out, save(state, metadata=card))


def model_card(args: argparse.Namespace, net: DbCrNet, curve: list[dict], metrics: dict, storage: str,
               storage_check: dict, wall: float, cpu: float, machine: str, command: str,
               commit: str) -> dict[str, str]:
    """The safetensors metadata (every value a string; JSON where structured)."""
    return {
        "format": "pt",
        "model": "dbcr",
        "preset": args.preset,
        "parameters": str(sum(p.numel() for p in net.parameters())),
        "task": "cloud removal of Sentinel-2 L1C (13 bands) fused with Sentinel-1 VV/VH; rsinfer decloud, "
                "sampler alpha-ratio, 1 step recommended",
        "data": "Sen1Floods11 chip Spain_7370579 (S2 L1C 13 bands + S1 VV/VH dB, 512x512, ~10 m), normalised as "
                "rsinfer.pipelines.sentinel; training crops 64x64 from columns 0-383, rot90/flip, gain 0.9-1.1, "
                "synthetic clouds (train/clouds.py: 10-70 % cover, soft edges, opacity 0.75-1 with fully opaque "
                "cores in half the fields, textured spectrum, 0-25 % haze)",
        "holdout": "columns 384-511 of the chip, never used in training; evaluation: 16 non-overlapping 64x64 tiles "
                   "x 4 seeded cloud fields (train/evaluate_decloud.py)",
        "training": json.dumps({"objective": "deterministic sine bridge, x0-prediction, L1", "steps": curve[-1]["step"],
                                "batch": args.batch, "crop": args.crop, "lr": args.lr, "warmup": args.warmup,
                                "t1_fraction": args.t1_fraction, "seed": args.seed, "compile": args.compile,
                                "optimizer": "AdamW wd 0.01, cosine to 2 %"}),
        "steps": str(curve[-1]["step"]),
        "wall_time_s": f"{wall:.0f}",
        "cpu_time_s": f"{cpu:.0f}",
        "machine": machine,
        "learning_curve": json.dumps(curve),
        "metrics": json.dumps(metrics),
        "storage_dtype": storage,
        "storage_check": json.dumps(storage_check),
        "caveats": CAVEATS,
        "attribution": ATTRIBUTION,
        "command": command,
        "git_commit": commit,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def card_metrics(report: dict) -> dict:
    """The evaluation rows of the card, rounded."""
    return {set_name: {row: {k: round(v, 4) for k, v in values.items()} for row, values in rows.items()}
            for set_name, rows in report.items()}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=tuple(PRESETS), default="dbcr-demo")
    parser.add_argument("--out", required=True, help="the safetensors file to write")
    parser.add_argument("--steps", type=int, default=6000, help="optimiser steps (the schedule's length)")
    parser.add_argument("--budget-minutes", type=float, help="stop (and finish the schedule) after this wall time")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--t1-fraction", type=float, default=0.2, help="share of samples at t = 1 (x_t = y)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                        help="torch.compile the training step (inductor; a one-off compile of a minute or more)")
    parser.add_argument("--storage", choices=("auto", *STORAGE_DTYPES), default="auto")
    parser.add_argument("--eval-every", type=int, default=500, help="held-out 1-step PSNR every N steps (0: never)")
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--data", help="the shared data folder (default ../shared/data beside the repository)")
    args = parser.parse_args(argv)
    require_at_least_one(parser, args, ("steps", "batch", "crop", "warmup", "threads", "log_every"))
    if not 0 <= args.t1_fraction <= 1:
        parser.error(f"--t1-fraction must lie in [0, 1], got {args.t1_fraction}")
    data_dir(args.data)  # fail now, not after building the network
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args, command, machine, commit = begin_run("train.decloud", argv, parse_args)

    torch.manual_seed(args.seed)
    net = prepare_for_training(build("dbcr", preset=args.preset)).train()
    print(f"{args.preset}: {sum(p.numel() for p in net.parameters()):,} parameters", flush=True)
    wall, cpu = time.perf_counter(), time.process_time()
    curve = train(net, args, log=lambda line: print(line, flush=True))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    net.eval()

    chip = load_chip(args.data)
    storage, storage_check = choose_storage(net, heldout_set(chip), args.storage, log=print)
    state = cast_state(net, STORAGE_DTYPES[storage])
    report = evaluate({args.preset: runtime_view(with_state(net, state))}, chip)
    card = model_card(args, net, curve, card_metrics(report), storage, storage_check, wall, cpu, machine, command,
                      commit)

    out = write_weights(args.out, state, card)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {storage}); {curve[-1]['step']} steps in "
          f"{wall / 60:.1f} min wall, {cpu / 60:.1f} min CPU")
    for set_name, rows in report.items():
        for row, values in rows.items():
            print(f"{set_name:8s} {row:28s} PSNR {values['psnr']:.2f}  SSIM {values['ssim']:.3f}  "
                  f"SAM {values['sam']:.2f}  cloud {values['psnr_cloud']:.2f}  clear {values['psnr_clear']:.2f}  "
                  f"opaque {values['psnr_opaque']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
