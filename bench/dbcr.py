"""DB-CR on CPU: milliseconds per 256² tile for NFE 1, 3, 5 across engines, at equal output.

    .venv/bin/python bench/dbcr.py [--threads 1] [--repeats 3] [--nfe 1 3 5] [--candidates eager-fp32 ...]

Candidates (one process, side by side): eager-fp32 (the reference: eager PyTorch, NCHW), eager-fp32-channels-last
(the same network and ops in NHWC), compile-fp32 (torch.compile, inductor freezing, channels-last), onnxruntime-fp32
(exported ONNX on ONNX Runtime's CPU provider), eager-bf16 (bf16 weights and activations).
Each is warmed up (compilation, ONNX export and session creation are excluded), then the whole α-ratio sampler loop
runs `repeats` times per NFE (eager-bf16: NFE 1 once by default — bf16 is emulated on CPUs without avx512_bf16/AMX,
about 40x slower than fp32 here; `--bf16-nfe 1 3 5` runs all), candidates interleaved repeat by repeat; the table
reports medians with the min–max spread. "rel.err" is the relative L2 distance
of the NFE-1 output from eager-fp32's. FLOPs are counted once by `torch.utils.flop_counter` over one network
evaluation (convolutions and matrix products); GFLOP/s is set against a GEMM rate measured in the same run, with the
same threads, in the same dtype (fp32 2048² `torch.mm`; bf16 for the bf16 candidate). JSON lines go to bench/dbcr.jsonl.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from rsinfer.models import build
from rsinfer.pipelines.dbcr import DbCr, SamplingPlan

CANDIDATES = {
    "eager-fp32": dict(engine="torch", precision="fp32"),
    "eager-fp32-channels-last": dict(engine="torch", precision="fp32", memory_format="channels_last"),
    "compile-fp32": dict(engine="compile", precision="fp32"),
    "onnxruntime-fp32": dict(engine="onnxruntime", precision="fp32"),
    "eager-bf16": dict(engine="torch", precision="bf16"),
}
TILE = 256


def gemm_rate(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """Median GFLOP/s of a size² × size² matrix product."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return 2 * size ** 3 / statistics.median(times) / 1e9


def network_flops(net: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(*inputs)
    return counter.get_total_flops()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch and ORT threads")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--nfe", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--bf16-nfe", type=int, nargs="+", default=[1],
                        help="NFE for eager-bf16, which is emulated (≈ 30x slower than fp32) on CPUs without "
                             "avx512_bf16/AMX (default: 1 only)")
    parser.add_argument("--bf16-repeats", type=int, default=1)
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "rsinfer-bench-dbcr")
    parser.add_argument("--jsonl", type=Path, default=Path(__file__).with_suffix(".jsonl"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    net = build("dbcr").eval()
    cloudy, sar = torch.rand(1, 13, TILE, TILE), torch.rand(1, 2, TILE, TILE)
    flops = network_flops(net, (cloudy, sar, torch.full((1,), 1000.0)))
    rates = {"fp32": gemm_rate(torch.float32), "bf16": gemm_rate(torch.bfloat16, size=512, repeats=3)}
    print(f"network: {sum(p.numel() for p in net.parameters()) / 1e6:.2f} M parameters, {flops / 1e9:.1f} GFLOP per "
          f"NFE at {TILE}²; GEMM rate ({args.threads} threads): fp32 {rates['fp32']:.1f} GFLOP/s, "
          f"bf16 {rates['bf16']:.2f} GFLOP/s", flush=True)

    pipes, setups, errors, reference = {}, {}, {}, None
    for name in args.candidates:  # build and warm up every engine first (excluded from the timings)
        spec = CANDIDATES[name]
        setup_start = time.perf_counter()
        pipes[name] = DbCr(net, engine=spec["engine"], precision=spec["precision"], cache_dir=args.cache_dir,
                           threads=args.threads, tile=TILE, batch_size=1, memory_format=spec.get("memory_format"))
        first = pipes[name].restore(cloudy, sar)  # warm-up (compilation, session optimisation) and the NFE-1 output
        setups[name] = time.perf_counter() - setup_start
        reference = first if name == "eager-fp32" else reference
        errors[name] = float((first - reference).norm() / reference.norm()) if reference is not None else float("nan")
        print(f"  {name:24s} ready (setup {setups[name]:.0f} s, NFE-1 rel.err {errors[name]:.1e})", flush=True)

    # Timings interleave the candidates repeat by repeat, so that load from other users hits them alike.
    times: dict[tuple[str, int], list[float]] = {}
    for nfe in sorted(set(args.nfe) | set(args.bf16_nfe)):
        runners = {name: pipe.with_plan(SamplingPlan("alpha-ratio", nfe)) for name, pipe in pipes.items()
                   if nfe in (args.bf16_nfe if CANDIDATES[name]["precision"] == "bf16" else args.nfe)}
        for repeat in range(max(args.repeats, args.bf16_repeats)):
            for name, runner in runners.items():
                if repeat >= (args.bf16_repeats if CANDIDATES[name]["precision"] == "bf16" else args.repeats):
                    continue
                start = time.perf_counter()
                runner.restore(cloudy, sar)
                times.setdefault((name, nfe), []).append(time.perf_counter() - start)
        print(f"  NFE {nfe}: " + ", ".join(f"{name} {statistics.median(times[name, nfe]) * 1e3:.0f} ms"
                                          for name in runners), flush=True)

    # The machine is shared: the GEMM rate is measured again after the timings and the better of the two is kept.
    rates = {dtype: max(rate, gemm_rate(torch.float32 if dtype == "fp32" else torch.bfloat16,
                                        size=2048 if dtype == "fp32" else 512, repeats=5 if dtype == "fp32" else 3))
             for dtype, rate in rates.items()}
    rows = []
    for (name, nfe), samples in times.items():
        median, spec = statistics.median(samples), CANDIDATES[name]
        dtype = "bf16" if spec["precision"] == "bf16" else "fp32"
        row = dict(candidate=name, engine=pipes[name].engine.kind, precision=spec["precision"], nfe=nfe, tile=TILE,
                   threads=args.threads, ms_median=median * 1e3, ms_min=min(samples) * 1e3, ms_max=max(samples) * 1e3,
                   repeats=len(samples), rel_err_nfe1=errors[name], setup_s=setups[name], gflop=flops * nfe / 1e9,
                   gflops=flops * nfe / median / 1e9, gemm_gflops=rates[dtype],
                   date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        rows.append(row)
        with open(args.jsonl, "a") as handle:
            handle.write(json.dumps(row) + "\n")
    rows.sort(key=lambda r: (args.candidates.index(r["candidate"]), r["nfe"]))

    base = {r["nfe"]: r["ms_median"] for r in rows if r["candidate"] == "eager-fp32"}
    print(f"\n| candidate | NFE | ms / {TILE}² tile (median, min–max) | vs eager-fp32 | rel.err NFE1 | GFLOP/s | "
          f"% of GEMM |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        speedup = base[r["nfe"]] / r["ms_median"] if r["nfe"] in base else float("nan")
        print(f"| {r['candidate']} | {r['nfe']} | {r['ms_median']:.0f} ({r['ms_min']:.0f}–{r['ms_max']:.0f}) | "
              f"{speedup:.2f}x | {r['rel_err_nfe1']:.1e} | {r['gflops']:.1f} | "
              f"{100 * r['gflops'] / r['gemm_gflops']:.0f}% of {r['gemm_gflops']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
