"""`rsinfer decloud`: DB-CR cloud removal of a Sentinel-2 scene fused with Sentinel-1.

    rsinfer decloud --s2 cloudy.tif --s1 s1.tif --out clear.tif --weights dbcr.safetensors \\
        [--steps 1..50 --sampler alpha-ratio --engine onnxruntime --preview clear.png]
    rsinfer decloud ... --sampler i2sb --steps 5 --samples 8 --uncertainty-out std.tif   # mean of 8 draws + their std

The output is on the S2 grid (S1 on another grid or CRS is resampled onto it) with the S2 input's dtype, bands and
nodata, in DN (reflectance × 10000). `--random-weights` runs a seeded, untrained network (a smoke run: the output is
not a cloud-free image; the tags and the preview say so). Exported ONNX graphs and TensorRT engines are cached under
$RSINFER_CACHE_DIR (default ~/.cache/rsinfer).
"""

from __future__ import annotations

import argparse
import os

from rsinfer.cli import options
from rsinfer.cli.options import default_cache_dir
from rsinfer.cli.pipeline_run import run_pipeline
from rsinfer.pipelines.vocabulary import BRIDGE_SAMPLERS, S1_SCALES

NO_WEIGHTS = ("DB-CR has no published weights: pass --weights PATH (a checkpoint in rsinfer's DB-CR key layout, "
              "see rsinfer.models.dbcr) or --random-weights for a smoke run with a seeded untrained network")
MAX_STEPS = 50  # rsinfer.pipelines.dbcr.MAX_STEPS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decloud", help="remove clouds from Sentinel-2 with Sentinel-1 (DB-CR)",
                       description=__doc__.split("\n\n")[0])
    options.add_inputs(p, "decloud")
    options.add_weights(p)
    options.add_sampling(p, BRIDGE_SAMPLERS, "alpha-ratio", 1)
    p.add_argument("--eta", type=float, default=0.0, help="DBIM stochasticity in [0, 1] (dbim only)")
    options.add_seed(p)
    options.add_samples(p, "needs a stochastic sampler, i2sb or dbim, and --steps >= 2")
    options.add_engine(p)
    p.add_argument("--s1-scale", default="auto", choices=S1_SCALES, help="S1 values (default: detect from the data)")
    options.add_tiling(p, "decloud")
    options.add_output(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.steps <= MAX_STEPS:
        raise ValueError(f"--steps must be in 1..{MAX_STEPS}, got {args.steps}")
    return run_pipeline(args, "decloud", options.weights_of(args, NO_WEIGHTS), {
        "sampler": args.sampler, "steps": args.steps, "eta": args.eta, "seed": args.seed,
        "samples": options.samples_of(args), "engine": args.engine,
        "precision": args.precision, "backend": args.backend, "threads": args.threads,
        "thread_wait": args.thread_wait, "cache_dir": os.fspath(default_cache_dir()), "s1_scale": args.s1_scale})
