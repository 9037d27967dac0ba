"""COP-GEN-Beta network on CPU: one full released-config forward (B=1), reference vs fast paths, fp32 vs bf16.

Usage:
    .venv/bin/python bench/copgen.py [--repeats 2] [--candidates NAME ...]

Candidates (all the same seeded random weights and inputs, run round-robin so machine load hits them alike):
- ``reference-fp32``: ops backend ``reference`` in float32 — the official math (parity ≤ 1e-5, tests/models).
- ``reference-autocast-bf16``: the same under ``torch.autocast("cpu", bfloat16)``, how the official sampler runs on CPU.
- ``fast-fp32-eager`` / ``fast-fp32-compiled``: `prepare(net, "float32", mode, backend="auto")`.
- ``bf16-eager`` / ``bf16-compiled``: `prepare(net, "bfloat16", mode, backend="auto")`.

Each candidate is warmed up (compilation excluded), then timed `--repeats` times; the table gives the median, the
spread (min–max), the speed-up over ``reference-fp32``, the achieved GFLOP/s (FLOPs counted from the config: every
GEMM, both attention matmuls, 2 per multiply-add) against the GEMM rate measured in the same run, rounds and dtype
(the best of MKL ``F.linear`` and oneDNN-prepacked ``Linear`` on a 1028×1024 · 1024×4096 GEMM, the model's dominant
shape, timed between the candidates in every round), and
each output's relative L2 error against ``reference-fp32``. JSON lines go to bench/copgen.jsonl.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.utils.mkldnn  # imported explicitly: `torch.utils` does not load it
import torch.nn.functional as F

import rsinfer.models
from rsinfer.models.copgen import CopGenConfig, prepare
from rsinfer.ops import backend_status, use_backend

ROOT = Path(__file__).resolve().parents[1]
GEMM_SHAPE = (1028, 1024, 4096)
CANDIDATES = ("reference-fp32", "reference-autocast-bf16", "fast-fp32-eager", "fast-fp32-compiled", "bf16-eager",
              "bf16-compiled")
DEFAULT_CANDIDATES = CANDIDATES[:5]  # bf16-compiled: ask for it; its compile alone takes minutes here


def forward_flops(c: CopGenConfig, batch: int = 1) -> int:
    """FLOPs of one forward: 2 per multiply-add of every Linear/conv GEMM and of q·kᵀ and p·v."""
    n, d = c.num_tokens, c.embed_dim
    hidden = int(d * c.mlp_ratio)
    blocks = c.depth // 2 * 2 + 1
    per_block = 2 * n * (3 * d * d + d * d + 2 * d * hidden) + 2 * 2 * n * n * d  # qkv, proj, mlp; attention
    skips = c.depth // 2 * 2 * n * (2 * d) * d
    patch_io = c.num_modalities * c.patches_per_modality * 2 * 2 * d * c.patch_size ** 2 * c.in_chans
    return batch * (blocks * per_block + skips + patch_io)


def _times(fn: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def gemm_probes() -> dict[str, Callable[[], object]]:
    """The model's dominant GEMM shape (tokens × D → 4·D) per dtype and library, timed alongside the candidates."""
    m, k, n = GEMM_SHAPE
    x, layer = torch.randn(m, k), torch.nn.Linear(k, n).eval()
    probes = {"gemm-float32-mkl": lambda: F.linear(x, layer.weight, layer.bias)}
    if torch.backends.mkldnn.is_available():
        packed = torch.utils.mkldnn.to_mkldnn(torch.nn.Linear(k, n).eval())
        probes["gemm-float32-onednn"] = lambda: packed(x)
    xb, wb, bb = x.bfloat16(), layer.weight.bfloat16(), layer.bias.bfloat16()
    probes["gemm-bfloat16-mkl"] = lambda: F.linear(xb, wb, bb)
    return probes


def build_runners(names: list[str], net: torch.nn.Module) -> dict[str, Callable]:
    """Callables (imgs, t_imgs) → eps for each candidate; fp32 candidates share `net`'s weights."""
    def reference(imgs, t_imgs):
        with torch.no_grad(), use_backend("reference"):
            return net(imgs, t_imgs)

    def reference_autocast(imgs, t_imgs):
        with torch.no_grad(), use_backend("reference"), torch.autocast("cpu", dtype=torch.bfloat16):
            return net(imgs, t_imgs)

    runners: dict[str, Callable] = {}
    for name in names:
        if name == "reference-fp32":
            runners[name] = reference
        elif name == "reference-autocast-bf16":
            runners[name] = reference_autocast
        else:
            kind, _, mode = name.rpartition("-")
            dtype = "bfloat16" if kind == "bf16" else "float32"
            copy = net if dtype == "float32" else rsinfer.models.build("copgen-beta")
            if copy is not net:
                copy.load_state_dict(net.state_dict())
            runners[name] = prepare(copy, dtype=dtype, mode=mode, backend="auto")
    return runners


def _relative(out: list[torch.Tensor], ref: list[torch.Tensor]) -> float:
    a, b = torch.cat([o.double().flatten() for o in out]), torch.cat([r.double().flatten() for r in ref])
    return float((a - b).norm() / b.norm())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--candidates", nargs="+", choices=CANDIDATES, default=list(DEFAULT_CANDIDATES))
    args = parser.parse_args()
    names = ["reference-fp32"] + [n for n in args.candidates if n != "reference-fp32"]

    torch.manual_seed(0)
    config = CopGenConfig()
    net = rsinfer.models.build("copgen-beta").eval()
    generator = torch.Generator().manual_seed(1)
    imgs = [torch.randn(1, config.in_chans, config.img_size, config.img_size, generator=generator) for _ in range(4)]
    t_imgs = [torch.tensor([t]) for t in (0.0, 980.02, 500.5, 20.98)]
    flops = forward_flops(config)

    runners = build_runners(names, net)
    outputs, warmup = {}, {}
    for name, run in runners.items():  # warm-up: compilation, oneDNN packing, caches
        start = time.perf_counter()
        outputs[name] = run(imgs, t_imgs)
        warmup[name] = time.perf_counter() - start
        print(f"warm-up {name}: {warmup[name]:.1f} s", flush=True)
    probes = gemm_probes()
    times: dict[str, list[float]] = {name: [] for name in [*runners, *probes]}
    with torch.no_grad():
        for probe in probes.values():
            probe()
        # round-robin, so load changes on the shared machine hit every candidate and the GEMM rates alike
        for round_ in range(args.repeats):
            for name, run in runners.items():
                times[name] += _times(lambda: run(imgs, t_imgs), 1)
            for name, probe in probes.items():
                times[name] += _times(probe, 3)
            print(f"round {round_ + 1}/{args.repeats}: " + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items()),
                  flush=True)
    gemm_flops = 2 * GEMM_SHAPE[0] * GEMM_SHAPE[1] * GEMM_SHAPE[2]
    rates = {name: gemm_flops / statistics.median(times[name]) / 1e9 for name in probes}
    gemm = {"float32": max(v for k, v in rates.items() if "float32" in k), "bfloat16": rates["gemm-bfloat16-mkl"]}

    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    ref_median = statistics.median(times["reference-fp32"])
    rows = []
    for name in runners:
        median = statistics.median(times[name])
        dtype = "bfloat16" if "bf16" in name else "float32"
        rows.append({
            "bench": "copgen", "candidate": name, "date": stamp, "machine": machine,
            "ops_auto": backend_status("ext").reason if backend_status("ext").available else "reference",
            "median_s": median, "min_s": min(times[name]), "max_s": max(times[name]), "repeats": args.repeats,
            "warmup_s": warmup[name], "speedup_vs_reference_fp32": ref_median / median,
            "gflops": flops / median / 1e9, "gemm_gflops": gemm[dtype],
            "gemm_fraction": flops / median / 1e9 / gemm[dtype],
            "rel_err_vs_reference_fp32": _relative(outputs[name], outputs["reference-fp32"]),
            "flops": flops, "gemm_rates": rates})
    with open(ROOT / "bench" / "copgen.jsonl", "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")

    print(f"COP-GEN-Beta full config, B=1, {flops / 1e12:.3f} TFLOP/forward, {machine}, {stamp}")
    print("GEMM 1028x1024x4096 GFLOP/s: " + ", ".join(f"{k} {v:.1f}" for k, v in rates.items()))
    print(f"{'candidate':26s} {'median s':>9s} {'min-max s':>14s} {'warm-up s':>9s} {'speed-up':>8s} "
          f"{'GFLOP/s':>8s} {'% GEMM':>7s} {'rel err':>9s}")
    for r in rows:
        print(f"{r['candidate']:26s} {r['median_s']:9.2f} {r['min_s']:6.2f}-{r['max_s']:<7.2f} {r['warmup_s']:9.1f} "
              f"{r['speedup_vs_reference_fp32']:7.2f}x {r['gflops']:8.1f} {100 * r['gemm_fraction']:6.0f}% "
              f"{r['rel_err_vs_reference_fp32']:9.2e}")


if __name__ == "__main__":
    main()
