"""`rsinfer bench`: time a pipeline's tile function under an MLPerf Inference scenario, engines side by side.

    rsinfer bench --pipeline decloud --random-weights --scenario single-stream --count 50 --tile 256 \\
        --engines torch compile onnxruntime --json decloud.json --plot decloud.png
    rsinfer bench --pipeline ndwi --input s2=scene.tif --scenario offline --duration 5 --batch-size 8
    rsinfer bench --pipeline ndwi --scenario server --rate 200 --p99-bound 20 --count 500

Scenarios: single-stream (one tile at a time: latency p50/p90/p99/max), offline (batches back to back: tiles/s and
Mpix/s), server (Poisson arrivals at --rate queries/s: latency from arrival, queueing included, and whether p99 ≤
--p99-bound; defaults: half the slowest engine's service rate and 10 service times). Warm-up calls and build time are
reported apart from the statistics. Without --input the tiles come from synthetic rasters. Pipeline options as for
`rsinfer batch` (the flags of rsinfer.cli.options, and --option NAME=VALUE).
"""

from __future__ import annotations

import argparse
import json
import sys

from rsinfer.cli import options
from rsinfer.cli.batch import add_pipeline_options, spec_of
from rsinfer.pipelines.vocabulary import ENGINE_KINDS

SCENARIO_CHOICES = ("single-stream", "offline", "server")  # rsinfer.benchmark.scenarios.SCENARIOS (torch-free here)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark a pipeline's tile function (MLPerf scenarios, engines side by side)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pipeline_options(p)
    p.add_argument("--input", action="append", type=options.named_path, default=[], metavar="NAME=PATH",
                   help="a real input raster (repeatable); default: synthetic inputs")
    p.add_argument("--scenario", required=True, choices=SCENARIO_CHOICES, help="what is measured")
    p.add_argument("--tile", type=int, help="tile side in output pixels (default: the pipeline's)")
    p.add_argument("--batch-size", type=int, help="tiles per offline call (default: the pipeline's)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--count", type=int, help="measured queries per engine")
    length.add_argument("--duration", type=float, help="seconds of measured calls per engine (default 10)")
    p.add_argument("--engines", nargs="+", choices=ENGINE_KINDS, help="compare these engines, interleaved")
    p.add_argument("--warmup", type=int, default=3, help="warm-up calls per engine, not measured (default 3)")
    p.add_argument("--rate", type=float, help="server: arrivals per second")
    p.add_argument("--p99-bound", type=float, help="server: the p99 latency bound in ms")
    p.add_argument("--torch-threads", type=int, help="torch intra-op threads (default: torch's)")
    p.add_argument("--json", help="write the result document (schema rsinfer.bench/1) here")
    p.add_argument("--plot", help="write a latency histogram and CDF per engine here (PNG; needs matplotlib)")
    p.add_argument("--quiet", action="store_true", help="no table")
    p.set_defaults(func=run)


def _table(document: dict) -> str:
    scenario, pipeline = document["scenario"], document["pipeline"]
    threads = document["process"]["threads"]["torch_intra_op"]
    inputs = "synthetic inputs" if pipeline["inputs"] == "synthetic" else "real inputs"
    head = (f"{pipeline['spec']['name']} {scenario['name']}: tile {pipeline['tile']}, {pipeline['batch_size']} tile(s) "
            f"per call, {inputs}, {threads} torch thread(s)")
    if scenario["name"] == "server":
        head += f"; {scenario['rate_qps']:.2f} queries/s, p99 bound {scenario['p99_bound_ms']:.1f} ms"
    rows = [head, f"{'engine':<12} {'build s':>8} {'warm-up ms first/last':>22} {'queries':>8} {'p50 ms':>9} "
                  f"{'p90 ms':>9} {'p99 ms':>9} {'max ms':>9} {'tiles/s':>9} {'Mpix/s':>8}"
            + ("  p99 held" if scenario["name"] == "server" else "")]
    for e in document["engines"]:
        lat, warm = e["latency_ms"], e["warmup_ms"]
        warmup = f"{warm[0]:.1f} / {warm[-1]:.1f}" if warm else "-"
        rows.append(f"{e['engine']:<12} {e['build_s']:>8.2f} {warmup:>22} {e['queries']:>8} {lat['p50']:>9.2f} "
                    f"{lat['p90']:>9.2f} {lat['p99']:>9.2f} {lat['max']:>9.2f} {e['tiles_per_s']:>9.2f} "
                    f"{e['mpix_per_s']:>8.3f}" + (f"  {'yes' if e['p99_held'] else 'NO'}"
                                                  if scenario["name"] == "server" else ""))
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    import torch

    from rsinfer import benchmark

    if args.torch_threads is not None:
        if args.torch_threads < 1:
            raise ValueError(f"--torch-threads must be >= 1, got {args.torch_threads}")
        torch.set_num_threads(args.torch_threads)
    length = (benchmark.RunLength(args.count, None) if args.count is not None
              else benchmark.RunLength(None, args.duration or 10.0))
    scenario = benchmark.Scenario(args.scenario, length, args.warmup, args.rate, args.p99_bound)
    inputs = dict(args.input)
    if len(inputs) != len(args.input):
        raise ValueError("an input is given twice")
    document = benchmark.run_benchmark(spec_of(args), scenario, engines=args.engines, inputs=inputs or None,
                                       tile=args.tile, batch_size=args.batch_size, command=args.command_line)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(document, handle, indent=1)
    if args.plot:
        benchmark.plot_latencies(document, args.plot)
    if not args.quiet:
        print(_table(document))
        for path in (args.json, args.plot):
            if path:
                print(f"wrote {path}", file=sys.stderr)
    return 0
