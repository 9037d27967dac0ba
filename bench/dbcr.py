"""DB-CR on CPU: milliseconds per 256² tile for NFE 1, 3, 5 across engines, at equal output.

    .venv/bin/python bench/dbcr.py [--threads 2] [--repeats 5] [--nfe 1 3 5] [--bf16-nfe 1] [--clock wall|cpu]
        [--candidates eager-fp32 ...]

Candidates (one process, side by side): eager-fp32 (the reference: eager PyTorch, NCHW), eager-fp32-channels-last
(the same network and ops in NHWC), compile-fp32 (torch.compile, inductor freezing, channels-last), onnxruntime-fp32
(exported ONNX on ONNX Runtime's CPU provider), eager-bf16 (bf16 weights and activations; at `--bf16-nfe` only,
NFE 1 by default: bf16 is emulated, tens of times slower than fp32, on CPUs without avx512_bf16/AMX — `rsinfer env`
says which this is).
Each engine is built and run once (compilation, ONNX export and session creation: reported as setup, excluded), then
`rsinfer.benchmark.compare` runs the whole α-ratio sampler loop on one tile (batch 1) for every (candidate, NFE) once
per round, `--repeats` rounds, with GEMM probes in the same rounds; the table reports medians with the min–max
spread. "rel.err" is the relative L2 distance of the NFE-1 output from eager-fp32's. FLOPs are counted once by
`torch.utils.flop_counter` over one network evaluation (convolutions and matrix products); GFLOP/s is set against the
GEMM rate of the same dtype measured in the same rounds, with the same threads (2048³ float32; 512³ bfloat16, which
stays short where bf16 is emulated). One JSON line (schema ``rsinfer.compare/1``) goes to bench/dbcr.jsonl.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from rsinfer.benchmark import RunLength, append_json_line, compare, gemm, settle_allocator, timed
from rsinfer.benchmark.comparison import CLOCK_NAMES
from rsinfer.models import build
from rsinfer.pipelines.dbcr import DbCr, SamplingPlan

CANDIDATES = {
    "eager-fp32": dict(engine="torch", precision="float32"),
    "eager-fp32-channels-last": dict(engine="torch", precision="float32", memory_format="channels_last"),
    "compile-fp32": dict(engine="compile", precision="float32"),
    "onnxruntime-fp32": dict(engine="onnxruntime", precision="float32"),
    "eager-bf16": dict(engine="torch", precision="bfloat16"),
}
TILE = 256
GEMM_SIDE = {"float32": 2048, "bfloat16": 512}


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
    parser.add_argument("--bf16-nfe", type=int, nargs="+", default=[1], help="NFE for eager-bf16 (default: 1 only)")
    parser.add_argument("--clock", choices=CLOCK_NAMES, default="wall", help="wall clock or process CPU time")
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "rsinfer-bench-dbcr")
    parser.add_argument("--jsonl", type=Path, default=Path(__file__).with_suffix(".jsonl"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settle_allocator()

    torch.manual_seed(0)
    net = build("dbcr").eval()
    cloudy, sar = torch.rand(1, 13, TILE, TILE), torch.rand(1, 2, TILE, TILE)
    flops = network_flops(net, (cloudy, sar, torch.full((1,), 1000.0)))
    print(f"network: {sum(p.numel() for p in net.parameters()) / 1e6:.2f} M parameters, {flops / 1e9:.1f} GFLOP per "
          f"NFE at {TILE}², {args.threads} threads", flush=True)

    pipes, setups, errors, reference = {}, {}, {}, None
    for name in args.candidates:  # build and run every engine once first (excluded from the timings)
        def setup(spec=CANDIDATES[name]) -> tuple[DbCr, torch.Tensor]:
            pipe = DbCr(net, cache_dir=args.cache_dir, threads=args.threads, tile=TILE, batch_size=1, **spec)
            return pipe, pipe.restore(cloudy, sar)

        (pipes[name], first), setups[name] = timed(setup, args.clock)
        reference = first if name == "eager-fp32" else reference
        errors[name] = float((first - reference).norm() / reference.norm()) if reference is not None else float("nan")
        print(f"  {name:24s} ready (setup {setups[name]:.0f} s, NFE-1 rel.err {errors[name]:.1e})", flush=True)

    runs = {}
    for nfe in sorted(set(args.nfe) | set(args.bf16_nfe)):
        for name, pipe in pipes.items():
            if nfe in (args.bf16_nfe if CANDIDATES[name]["precision"] == "bfloat16" else args.nfe):
                runner = pipe.with_plan(SamplingPlan("alpha-ratio", nfe))
                runs[name, nfe] = lambda runner=runner: runner.restore(cloudy, sar)
    probes = {dtype: gemm(side, side, side, getattr(torch, dtype)) for dtype, side in GEMM_SIDE.items()
              if dtype == "float32" or any(CANDIDATES[n]["precision"] == dtype for n in pipes)}
    result = compare({**{f"{name} NFE {nfe}": run for (name, nfe), run in runs.items()},
                      **{probe.name: probe.call for probe in probes.values()}},
                     RunLength(count=args.repeats), warmup=1, clock=args.clock)
    rates = {dtype: result[probe.name].rate(probe.flops) / 1e9 for dtype, probe in probes.items()}

    rows = []
    for name, nfe in runs:
        key, base = f"{name} NFE {nfe}", f"eager-fp32 NFE {nfe}"
        timing, precision = result[key], CANDIDATES[name]["precision"]
        speedup = result.speedup(key, base) if base in result.names else float("nan")
        rows.append(dict(candidate=name, engine=pipes[name].engine.kind, precision=precision, nfe=nfe, tile=TILE,
                         threads=args.threads, ms_median=timing.median * 1e3, ms_min=timing.min * 1e3,
                         ms_max=timing.max * 1e3, speedup=speedup, rel_err_nfe1=errors[name], setup_s=setups[name],
                         gflop=flops * nfe / 1e9, gflops=timing.rate(flops * nfe) / 1e9, gemm_gflops=rates[precision]))
    rows.sort(key=lambda r: (args.candidates.index(r["candidate"]), r["nfe"]))
    document = result.document("dbcr", rows, command=sys.argv, extra={"flops_per_nfe": flops, "tile": TILE,
                                                                       "gemm_gflops": rates})
    append_json_line(args.jsonl, document)

    print(f"\n{document['environment']['cpu_model']}, {args.threads} threads, clock {args.clock}, {args.repeats} "
          f"rounds, {document['created']}; GEMM rates: " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in rates.items()))
    print(f"\n| candidate | NFE | ms / {TILE}² tile (median, min–max) | vs eager-fp32 | rel.err NFE1 | GFLOP/s | "
          f"% of GEMM |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['candidate']} | {r['nfe']} | {r['ms_median']:.0f} ({r['ms_min']:.0f}–{r['ms_max']:.0f}) | "
              f"{r['speedup']:.2f}x | {r['rel_err_nfe1']:.1e} | {r['gflops']:.1f} | "
              f"{100 * r['gflops'] / r['gemm_gflops']:.0f}% of {r['gemm_gflops']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
