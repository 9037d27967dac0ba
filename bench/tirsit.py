"""TIRSIT's translation network on CPU: milliseconds per 256² tile across engines, at equal output.

    .venv/bin/python bench/tirsit.py [--threads 2] [--repeats 10] [--candidates eager-fp32 ...]

Candidates (one process, side by side), all float32, all serving the default network (`rsinfer.models.build("tirsit")`,
paper defaults, seeded random weights) through `rsinfer.engines.create_engine`:
eager-fp32 (the reference: eager PyTorch, NCHW), eager-fp32-channels-last (the same in NHWC), compile-fp32
(torch.export + inductor with freezing, channels-last), onnxruntime-fp32 (the exported ONNX graph on ONNX Runtime's
CPU provider, `--threads` intra-op threads). One network call on a batch of one (S_ij, T_j) pair: the pipeline calls
the network once per neighbour, and the reconstruction around it (box filters, weights) costs < 1 % of a call.

Each engine is built and warmed up first (export, compilation and session creation are excluded and reported as
setup), then the candidates run interleaved, repeat by repeat; the table reports medians with the min–max spread.
"rel.err" is the relative L2 distance of a candidate's output from eager-fp32's. FLOPs are counted by
`torch.utils.flop_counter` over one call (convolutions and transposed convolutions); GFLOP/s is set against a float32
2048³ GEMM rate measured in the same run with the same threads (the better of a measurement before and after).
JSON lines go to bench/tirsit.jsonl. Target (issue 13): the best engine ≥ 1.5x eager-fp32 at rel.err ≤ 1e-4, 2 threads.
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

from rsinfer.engines import create_engine
from rsinfer.models import build
from rsinfer.pipelines.tirsit import tirsit_signature

CANDIDATES = {
    "eager-fp32": dict(kind="torch", memory_format=None),
    "eager-fp32-channels-last": dict(kind="torch", memory_format="channels_last"),
    "compile-fp32": dict(kind="compile", memory_format=None),
    "onnxruntime-fp32": dict(kind="onnxruntime", memory_format=None),
}
TILE = 256


def gemm_rate(size: int = 2048, repeats: int = 5) -> float:
    """Median float32 GFLOP/s of one size³ matrix product."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        samples.append(time.perf_counter() - start)
    return 2 * size ** 3 / statistics.median(samples) / 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime threads (default 2)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "rsinfer-bench-tirsit")
    parser.add_argument("--jsonl", type=Path, default=Path(__file__).with_suffix(".jsonl"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # glibc: free one large block first, so later ≥ 128 KiB temporaries come from the heap instead of fresh mmap'd
    # pages that fault on every call.
    torch.empty(1 << 22)  # 16 MiB (under glibc's 32 MiB cap on the dynamic threshold), allocated and freed

    torch.manual_seed(0)
    net = build("tirsit").eval()
    config = net.config
    source_diff = 0.1 * torch.randn(1, config.source_channels, TILE, TILE)
    guide = torch.rand(1, config.target_channels, TILE, TILE)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(source_diff, guide)
    flops = counter.get_total_flops()
    rate = gemm_rate()
    print(f"TIRSIT network: {sum(p.numel() for p in net.parameters()) / 1e6:.2f} M parameters, {flops / 1e9:.2f} GFLOP "
          f"per {TILE}² tile; fp32 GEMM rate ({args.threads} threads) {rate:.0f} GFLOP/s", flush=True)

    signature = tirsit_signature(config.source_channels, config.target_channels)
    engines, setups, outputs = {}, {}, {}
    for name in args.candidates:  # build and warm up every engine first (excluded from the timings)
        spec = CANDIDATES[name]
        start = time.perf_counter()
        engines[name] = create_engine(spec["kind"], net, signature, (source_diff, guide), precision="float32",
                                      memory_format=spec["memory_format"], cache_dir=args.cache_dir,
                                      threads=args.threads)
        outputs[name] = engines[name](source_diff, guide)
        engines[name](source_diff, guide)
        setups[name] = time.perf_counter() - start
        print(f"  {name:26s} ready (setup {setups[name]:.1f} s)", flush=True)
    reference = outputs.get("eager-fp32", net(source_diff, guide).detach())
    errors = {name: float((out - reference).norm() / reference.norm()) for name, out in outputs.items()}

    # Interleaved repeat by repeat, so that load from other users of the machine hits every candidate alike.
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(args.repeats):
        for name, engine in engines.items():
            start = time.perf_counter()
            engine(source_diff, guide)
            times[name].append(time.perf_counter() - start)
    rate = max(rate, gemm_rate())

    base = statistics.median(times["eager-fp32"]) if "eager-fp32" in times else float("nan")
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"\n| candidate | ms / {TILE}² tile (median, min–max) | vs eager-fp32 | rel.err | GFLOP/s | % of GEMM | "
          f"setup s |")
    print("|---|---|---|---|---|---|---|")
    for name, samples in times.items():
        median = statistics.median(samples)
        row = dict(candidate=name, engine=engines[name].kind, precision="float32", tile=TILE, threads=args.threads,
                   ms_median=median * 1e3, ms_min=min(samples) * 1e3, ms_max=max(samples) * 1e3,
                   repeats=len(samples), speedup=base / median, rel_err=errors[name], setup_s=setups[name],
                   gflop=flops / 1e9, gflops=flops / median / 1e9, gemm_gflops=rate, date=date)
        with open(args.jsonl, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(f"| {name} | {row['ms_median']:.1f} ({row['ms_min']:.1f}–{row['ms_max']:.1f}) | {row['speedup']:.2f}x | "
              f"{row['rel_err']:.1e} | {row['gflops']:.0f} | {100 * row['gflops'] / rate:.0f}% of {rate:.0f} | "
              f"{row['setup_s']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
