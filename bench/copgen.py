"""COP-GEN-Beta network on CPU: one full released-config forward (B=1), reference vs fast paths, fp32 vs bf16.

Usage:
    .venv/bin/python bench/copgen.py [--repeats 3] [--clock wall|cpu] [--candidates NAME ...]

Candidates (all the same seeded random weights and inputs):
- ``reference-fp32``: ops backend ``reference`` in float32 — the official math (parity ≤ 1e-5, tests/models).
- ``reference-autocast-bf16``: the same under ``torch.autocast("cpu", bfloat16)``, how the official sampler runs on CPU.
- ``fast-fp32-eager`` / ``fast-fp32-compiled``: `rsinfer.engines.prepare(net, "float32", "torch" | "compile")`.
- ``bf16-eager`` / ``bf16-compiled``: `rsinfer.engines.prepare(net, "bfloat16", "torch" | "compile")`.

Timing is `rsinfer.benchmark.compare`: each candidate is warmed up (compilation excluded, reported as warm-up), then
`--repeats` rounds run every candidate once in turn, together with GEMM probes on the model's dominant shape
(1028×1024 · 1024×4096, three products per call): float32 through ATen (MKL) and oneDNN-prepacked, bfloat16 through
ATen (`rsinfer.benchmark.machine.gemm`). The table gives the median, the spread (min–max), the speed-up over
``reference-fp32``, the achieved GFLOP/s (FLOPs counted from the config: every GEMM, both attention matmuls, 2 per
multiply-add) against the best GEMM rate of the same dtype measured in the same rounds, and each output's relative L2
error against ``reference-fp32``. One JSON line (schema ``rsinfer.compare/1``) goes to bench/copgen.jsonl.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch

import rsinfer.models
from rsinfer.benchmark import RunLength, append_json_line, compare, gemm, settle_allocator, timed
from rsinfer.benchmark.comparison import CLOCK_NAMES
from rsinfer.engines import prepare
from rsinfer.models.copgen import CopGenConfig
from rsinfer.ops import backend_status, use_backend

JSONL = Path(__file__).with_suffix(".jsonl")
GEMM_SHAPE = (1028, 1024, 4096)
CANDIDATES = ("reference-fp32", "reference-autocast-bf16", "fast-fp32-eager", "fast-fp32-compiled", "bf16-eager",
              "bf16-compiled")
ENGINES = {"eager": "torch", "compiled": "compile"}


def forward_flops(c: CopGenConfig, batch: int = 1) -> int:
    """FLOPs of one forward: 2 per multiply-add of every Linear/conv GEMM and of q·kᵀ and p·v."""
    n, d = c.num_tokens, c.embed_dim
    hidden = int(d * c.mlp_ratio)
    blocks = c.depth // 2 * 2 + 1
    per_block = 2 * n * (3 * d * d + d * d + 2 * d * hidden) + 2 * 2 * n * n * d  # qkv, proj, mlp; attention
    skips = c.depth // 2 * 2 * n * (2 * d) * d
    patch_io = c.num_modalities * c.patches_per_modality * 2 * 2 * d * c.patch_size ** 2 * c.in_chans
    return batch * (blocks * per_block + skips + patch_io)


def runner(name: str, net: torch.nn.Module) -> Callable:
    """(imgs, t_imgs) → eps for a candidate; `net` is never modified (bf16 engines convert a copy)."""
    if name.startswith("reference"):
        autocast = name == "reference-autocast-bf16"

        def reference(imgs, t_imgs):
            with torch.no_grad(), use_backend("reference"), torch.autocast("cpu", torch.bfloat16, enabled=autocast):
                return net(imgs, t_imgs)
        return reference
    kind, _, mode = name.rpartition("-")
    return prepare(net, "bfloat16" if kind == "bf16" else "float32", ENGINES[mode], backend="auto")


def _relative(out: list[torch.Tensor], ref: list[torch.Tensor]) -> float:
    a, b = torch.cat([o.double().flatten() for o in out]), torch.cat([r.double().flatten() for r in ref])
    return float((a - b).norm() / b.norm())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clock", choices=CLOCK_NAMES, default="wall", help="wall clock or process CPU time")
    parser.add_argument("--candidates", nargs="+", choices=CANDIDATES, default=list(CANDIDATES))
    args = parser.parse_args()
    names = ["reference-fp32"] + [n for n in args.candidates if n != "reference-fp32"]
    settle_allocator()

    torch.manual_seed(0)
    config = CopGenConfig()
    net = rsinfer.models.build("copgen-beta").eval()
    generator = torch.Generator().manual_seed(1)
    imgs = [torch.randn(1, config.in_chans, config.img_size, config.img_size, generator=generator) for _ in range(4)]
    t_imgs = [torch.tensor([t]) for t in (0.0, 980.02, 500.5, 20.98)]
    flops = forward_flops(config)

    runners, outputs, setup = {}, {}, {}
    for name in names:  # build and first call: compilation, oneDNN packing, caches (reported, never timed below)
        runners[name] = runner(name, net)
        outputs[name], setup[name] = timed(lambda: runners[name](imgs, t_imgs), args.clock)
        print(f"setup {name}: {setup[name]:.1f} s", flush=True)
    probes = [gemm(*GEMM_SHAPE, torch.float32, "aten", calls=3),
              gemm(*GEMM_SHAPE, torch.float32, "onednn-prepacked", calls=3),
              gemm(*GEMM_SHAPE, torch.bfloat16, "aten", calls=3)]
    candidates = {**{name: (lambda run=run: run(imgs, t_imgs)) for name, run in runners.items()},
                  **{probe.name: probe.call for probe in probes}}
    result = compare(candidates, RunLength(count=args.repeats), warmup=1, clock=args.clock)
    rates = {probe.name: result[probe.name].rate(probe.flops) / 1e9 for probe in probes}
    gemm_rate = {dtype: max(rate for probe, rate in rates.items() if dtype in probe)
                 for dtype in ("float32", "bfloat16")}

    ext = backend_status("ext")
    rows = []
    for name in names:
        timing, dtype = result[name], "bfloat16" if "bf16" in name else "float32"
        gflops = timing.rate(flops) / 1e9
        rows.append({"candidate": name, "median_s": timing.median, "min_s": timing.min, "max_s": timing.max,
                     "setup_s": setup[name], "speedup_vs_reference_fp32": result.speedup(name, "reference-fp32"),
                     "gflops": gflops, "gemm_gflops": gemm_rate[dtype], "gemm_fraction": gflops / gemm_rate[dtype],
                     "rel_err_vs_reference_fp32": _relative(outputs[name], outputs["reference-fp32"])})
    document = result.document("copgen", rows, command=sys.argv, extra={
        "flops_per_forward": flops, "gemm_shape": GEMM_SHAPE, "gemm_gflops": rates,
        "ops_auto": ext.reason if ext.available else "reference"})
    append_json_line(JSONL, document)

    environment = document["environment"]
    print(f"\nCOP-GEN-Beta full config, B=1, {flops / 1e12:.3f} TFLOP/forward; {environment['cpu_model']}, "
          f"{torch.get_num_threads()} threads, clock {args.clock}, {args.repeats} rounds; {document['created']}")
    print("GEMM 1028x1024x4096 GFLOP/s: " + ", ".join(f"{k} {v:.1f}" for k, v in rates.items()))
    print("\n| candidate | median s | min–max s | setup s | vs reference-fp32 | GFLOP/s | % of GEMM | rel. L2 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['candidate']} | {r['median_s']:.2f} | {r['min_s']:.2f}–{r['max_s']:.2f} | {r['setup_s']:.1f} | "
              f"{r['speedup_vs_reference_fp32']:.2f}× | {r['gflops']:.1f} | {100 * r['gemm_fraction']:.0f}% | "
              f"{r['rel_err_vs_reference_fp32']:.2e} |")


if __name__ == "__main__":
    main()
