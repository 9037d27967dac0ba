"""TIRSIT's translation network on CPU: milliseconds per 256² tile across engines, at equal output.

    .venv/bin/python bench/tirsit.py [--threads 2] [--repeats 10] [--clock wall|cpu] [--candidates eager-fp32 ...]

Candidates (one process, side by side), all float32, all serving the default network (`rsinfer.models.build("tirsit")`,
paper defaults, seeded random weights) through `rsinfer.engines.create_engine`:
eager-fp32 (the reference: eager PyTorch, NCHW), eager-fp32-channels-last (the same in NHWC), compile-fp32
(torch.export + inductor with freezing, channels-last), onnxruntime-fp32 (the exported ONNX graph on ONNX Runtime's
CPU provider, `--threads` intra-op threads). One network call on a batch of one (S_ij, T_j) pair: the pipeline calls
the network once per neighbour, and the reconstruction around it (box filters, weights) costs < 1 % of a call.

Each engine is built and called twice first (export, compilation and session creation are excluded and reported as
setup), then `rsinfer.benchmark.compare` runs the candidates interleaved, round by round, with a float32 2048³ GEMM in
the same rounds and threads; the table reports medians with the min–max spread. "rel.err" is the relative L2 distance
of a candidate's output from eager-fp32's. FLOPs are counted by `torch.utils.flop_counter` over one call (convolutions
and transposed convolutions); GFLOP/s is set against the GEMM rate. One JSON line (schema ``rsinfer.compare/1``) goes
to bench/tirsit.jsonl. Target (issue 13): the best engine ≥ 1.5x eager-fp32 at rel.err ≤ 1e-4, 2 threads.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime threads (default 2)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--clock", choices=CLOCK_NAMES, default="wall", help="wall clock or process CPU time")
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "rsinfer-bench-tirsit")
    parser.add_argument("--jsonl", type=Path, default=Path(__file__).with_suffix(".jsonl"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settle_allocator()

    torch.manual_seed(0)
    net = build("tirsit").eval()
    config = net.config
    source_diff = 0.1 * torch.randn(1, config.source_channels, TILE, TILE)
    guide = torch.rand(1, config.target_channels, TILE, TILE)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(source_diff, guide)
    flops = counter.get_total_flops()
    print(f"TIRSIT network: {sum(p.numel() for p in net.parameters()) / 1e6:.2f} M parameters, {flops / 1e9:.2f} GFLOP "
          f"per {TILE}² tile, {args.threads} threads", flush=True)

    signature = tirsit_signature(config.source_channels, config.target_channels)
    engines, setups, outputs = {}, {}, {}
    for name in args.candidates:  # build and call every engine first (excluded from the timings)
        def setup(spec=CANDIDATES[name]):
            engine = create_engine(spec["kind"], net, signature, (source_diff, guide), precision="float32",
                                   memory_format=spec["memory_format"], cache_dir=args.cache_dir, threads=args.threads)
            engine(source_diff, guide)
            return engine, engine(source_diff, guide)

        (engines[name], outputs[name]), setups[name] = timed(setup, args.clock)
        print(f"  {name:26s} ready (setup {setups[name]:.1f} s)", flush=True)
    reference = outputs.get("eager-fp32", net(source_diff, guide).detach())
    errors = {name: float((out - reference).norm() / reference.norm()) for name, out in outputs.items()}

    probe = gemm(2048, 2048, 2048)
    result = compare({**{name: (lambda engine=engine: engine(source_diff, guide)) for name, engine in engines.items()},
                      probe.name: probe.call}, RunLength(count=args.repeats), warmup=1, clock=args.clock)
    rate = result[probe.name].rate(probe.flops) / 1e9

    rows = []
    for name in engines:
        timing = result[name]
        speedup = result.speedup(name, "eager-fp32") if "eager-fp32" in engines else float("nan")
        rows.append(dict(candidate=name, engine=engines[name].kind, precision="float32", tile=TILE,
                         threads=args.threads, ms_median=timing.median * 1e3, ms_min=timing.min * 1e3,
                         ms_max=timing.max * 1e3, speedup=speedup, rel_err=errors[name], setup_s=setups[name],
                         gflop=flops / 1e9, gflops=timing.rate(flops) / 1e9, gemm_gflops=rate))
    document = result.document("tirsit", rows, command=sys.argv, extra={"flops_per_tile": flops, "tile": TILE,
                                                                         "gemm_gflops": rate})
    append_json_line(args.jsonl, document)

    print(f"\n{document['environment']['cpu_model']}, {args.threads} threads, clock {args.clock}, {args.repeats} "
          f"rounds, {document['created']}; fp32 GEMM 2048³ {rate:.0f} GFLOP/s")
    print(f"\n| candidate | ms / {TILE}² tile (median, min–max) | vs eager-fp32 | rel.err | GFLOP/s | % of GEMM | "
          f"setup s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['candidate']} | {r['ms_median']:.1f} ({r['ms_min']:.1f}–{r['ms_max']:.1f}) | "
              f"{r['speedup']:.2f}x | {r['rel_err']:.1e} | {r['gflops']:.0f} | "
              f"{100 * r['gflops'] / rate:.0f}% of {rate:.0f} | {r['setup_s']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
