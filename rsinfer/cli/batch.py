"""`rsinfer batch`: reprocess an archive — every scene of a manifest through one pipeline, on Ray.

    rsinfer batch --pipeline ndwi --manifest jobs.csv --out-dir out --workers 2 [--resume]
    rsinfer batch --pipeline decloud --random-weights --steps 3 --manifest jobs.jsonl --out-dir out \\
        --address auto --threads-per-worker 2 --max-retries 3
    rsinfer batch --pipeline ndwi --manifest items.json --asset s2=l1c --out-dir out

The manifest has one job per row: the pipeline's input names as columns, plus optional `id` and `out` (CSV or JSONL),
or is a STAC ItemCollection whose assets `--asset NAME=KEY` maps to the inputs. `https://` inputs are read by
windows over HTTP. Without `--address` a local Ray with workers x threads-per-worker CPUs runs the jobs and stops
afterwards. Every outcome is appended to OUT_DIR/_rsinfer_report.jsonl as it happens; the exit code is 0 only when
every job is ok or skipped (1: some failed; 128 + the signal when interrupted: 130 for Ctrl-C, 143 for SIGTERM).
`--resume` skips the jobs whose output is verified (the bytes the report recorded, made with these settings, its
provenance tags matching this job) and redoes the rest. Needs the ray extra: pip install 'rsinfer[ray]'.

Ray 2.60 turns token authentication on after its first local start (~/.ray/auth_token); to join a multi-node cluster
set RAY_AUTH_MODE the same on every node and here.

Pipeline options (shared with `rsinfer bench`): the flags of `rsinfer.cli.options` (--weights, --random-weights,
--seed, --engine, --precision, --backend, --threads, --thread-wait, --sampler, --steps) set the pipeline option of the
same name; `--option NAME=VALUE` sets any other (VALUE read as JSON, else as text), e.g. `--option target=s2_l2a` or
`--option network='{"widths": [8, 16]}'`. An option the pipeline does not have is an error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from rsinfer.cli import options
from rsinfer.pipelines import names
from rsinfer.pipelines.vocabulary import BLEND_MODES, BRIDGE_SAMPLERS, OUTPUT_DTYPES, PF_ODE_SAMPLERS

# Flags of rsinfer.cli.options whose value is the pipeline option of the same name.
OPTION_FLAGS = ("sampler", "steps", "seed", "engine", "precision", "backend", "threads", "thread_wait")


def named_value(text: str) -> tuple[str, object]:
    """NAME=VALUE → (name, the value as JSON, else the text)."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    """--pipeline and the flags that set its options (see the module docstring)."""
    parser.add_argument("--pipeline", required=True, choices=names(), help="the pipeline to run")
    options.add_weights(parser)
    options.add_seed(parser)
    options.add_engine(parser)
    options.add_sampling(parser, tuple(dict.fromkeys(BRIDGE_SAMPLERS + PF_ODE_SAMPLERS)), None, None)
    parser.add_argument("--option", action="append", type=named_value, default=[], metavar="NAME=VALUE",
                        help="any other option of the pipeline, VALUE as JSON or text (repeatable)")
    # None = not given: only the options given reach the spec, the pipeline's defaults stand for the rest
    parser.set_defaults(seed=None, engine=None, precision=None, backend=None, thread_wait=None)


def spec_of(args: argparse.Namespace):
    """The `PipelineSpec` the flags describe; weights paths made absolute (workers may run elsewhere)."""
    from rsinfer import pipelines

    cls = pipelines.get(args.pipeline)
    fields = {f.name for f in dataclasses.fields(cls.Options)}
    if not cls.has_networks:
        if args.weights or args.random_weights:
            raise ValueError(f"pipeline {args.pipeline!r} has no network, so it takes no weights")
        weights = "none"
    else:
        seeded = argparse.Namespace(**{**vars(args), "seed": 0 if args.seed is None else args.seed})
        weights = options.weights_of(seeded, f"pipeline {args.pipeline!r} runs networks: pass --weights PATH or "
                                             "--random-weights for seeded untrained networks")
        if isinstance(weights, dict):
            weights = {part: os.path.abspath(path) for part, path in weights.items()}
        elif not weights.startswith("random:"):
            weights = os.path.abspath(weights)
    values = {name: getattr(args, name) for name in OPTION_FLAGS if getattr(args, name, None) is not None}
    if "seed" not in fields and args.random_weights:
        values.pop("seed", None)  # it seeds the weights only
    for name, value in args.option:
        if name in values:
            raise ValueError(f"option {name!r} given twice (--option {name}=... and a flag)")
        values[name] = value
    unknown = sorted(set(values) - fields)
    if unknown:
        flags = ", ".join(f"--{n.replace('_', '-')}" if n in OPTION_FLAGS else f"--option {n}=..." for n in unknown)
        raise ValueError(f"pipeline {args.pipeline!r} has no option {', '.join(unknown)} ({flags}); its options: "
                         f"{sorted(fields) or 'none'}")
    return pipelines.PipelineSpec(args.pipeline, weights, values)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help="run a pipeline over every scene of a manifest, on Ray",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pipeline_options(p)
    p.add_argument("--manifest", required=True, help="jobs: .csv, .jsonl, or a STAC ItemCollection .json")
    p.add_argument("--asset", action="append", type=options.named_path, default=[], metavar="NAME=KEY",
                   help="STAC manifests: the asset key of input NAME (default: the input name; repeatable)")
    p.add_argument("--out-dir", required=True, help="where outputs (default <id>.tif) and the report go")
    p.add_argument("--address", help="join this Ray cluster (auto, host:port, ray://host:port); default: a local Ray")
    p.add_argument("--workers", type=int, help="scenes at once (default: CPUs // threads per worker)")
    p.add_argument("--threads-per-worker", type=int, default=1, help="CPUs per scene (default %(default)s)")
    p.add_argument("--oversubscribe", action="store_true",
                   help="allow workers x threads per worker above this machine's CPUs")
    p.add_argument("--max-retries", type=int, default=2,
                   help="resubmissions of a job whose worker or node died (default %(default)s)")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true", help="skip jobs whose output is verified; redo the rest")
    existing.add_argument("--overwrite", action="store_true", help="redo every job, replacing existing outputs")
    p.add_argument("--tile", type=int, help="tile side in output pixels (default: the pipeline's)")
    p.add_argument("--overlap", type=int, help="tile overlap in output pixels (default: the pipeline's)")
    p.add_argument("--blend", choices=BLEND_MODES, help="how overlapping tiles blend (default: the pipeline's)")
    p.add_argument("--batch-size", type=int, help="tiles per network call (default: the pipeline's)")
    p.add_argument("--dtype", choices=OUTPUT_DTYPES, help="output raster data type (default: the pipeline's)")
    p.add_argument("--cog", action="store_true", help="write Cloud-Optimized GeoTIFFs with overviews")
    p.add_argument("--quiet", action="store_true", help="no progress line and no summary")
    p.set_defaults(func=run)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _progress_line(outcome, progress) -> None:
    sys.stderr.write(f"\rbatch: {progress.finished}/{progress.total} jobs ({progress.ok} ok, {progress.skipped} "
                     f"skipped, {progress.failed} failed)  {progress.scenes_per_second:.2f} scenes/s  "
                     f"ETA {_clock(progress.eta_seconds)}  ")
    sys.stderr.flush()


def _print_summary(args: argparse.Namespace, summary, threads: int) -> None:
    p = summary.progress
    work = summary.seconds - summary.startup_seconds
    print(f"batch {args.pipeline}: {p.total} jobs: {p.ok} ok, {p.skipped} skipped, {p.failed} failed"
          f"{f', {p.total - p.finished} not run (interrupted)' if summary.interrupted_by is not None else ''} in "
          f"{summary.seconds:.1f} s ({summary.startup_seconds:.1f} s Ray start-up, then "
          f"{p.finished / work if work > 0 else 0:.2f} scenes/s; {summary.workers} worker(s) x {threads} thread(s))",
          file=sys.stderr)
    if summary.temporaries_removed:
        print(f"  removed {summary.temporaries_removed} stale temporary file(s) of killed runs", file=sys.stderr)
    for outcome in summary.outcomes:
        if outcome.status == "failed":
            print(f"  failed {outcome.id}: {outcome.error}", file=sys.stderr)
    print(f"report: {summary.report}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from rsinfer import batch, pipelines

    batch.require_ray()
    spec = spec_of(args)
    existing = "resume" if args.resume else "overwrite" if args.overwrite else "refuse"
    jobs = batch.read_manifest(args.manifest, batch.pipeline_inputs(spec), args.out_dir, assets=dict(args.asset),
                               existing=existing)
    tiling = dataclasses.replace(pipelines.get(spec.name).default_tiling, **options.tiling_of(args).changes())
    cluster = batch.Cluster(args.address, args.workers, args.threads_per_worker, args.oversubscribe)
    show = not args.quiet and sys.stderr.isatty()
    summary = batch.run_batch(spec, jobs, args.out_dir, tiling=tiling,
                              output_options=pipelines.OutputOptions(dtype=args.dtype, cog=args.cog), existing=existing,
                              max_retries=args.max_retries, cluster=cluster, command=args.command_line,
                              on_outcome=_progress_line if show else None)
    if show and summary.outcomes:
        sys.stderr.write("\n")
    if not args.quiet:
        _print_summary(args, summary, args.threads_per_worker)
    if summary.interrupted_by is not None:
        return 128 + summary.interrupted_by  # as rsinfer.cli.main reports a stop signal
    return 0 if summary.succeeded else 1
