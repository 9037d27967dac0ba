"""`rsinfer decloud` (alias `declould`): DB-CR cloud removal of a Sentinel-2 scene fused with Sentinel-1.

    rsinfer decloud --s2 cloudy.tif --s1 s1.tif --out clear.tif --weights dbcr.safetensors \\
        [--steps 1..5 --sampler alpha-ratio --engine onnxruntime --random-weights --preview clear.png]

The output is on the S2 grid (S1 on another grid or CRS is resampled onto it) with the S2 input's dtype, bands and
nodata, in DN (reflectance × 10000). `--random-weights` runs the pipeline with a seeded, untrained network (a smoke
run: the output is not a cloud-free image; the tags and the preview say so). `--engines` lists the engines available
here. Exported ONNX graphs and TensorRT engines are cached under $RSINFER_CACHE_DIR (default ~/.cache/rsinfer).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from rsinfer import ops
from rsinfer.engines import ENGINE_KINDS, engine_statuses
from rsinfer.pipelines.dbcr import MAX_STEPS, SAMPLERS, DbCr, SamplingPlan

NO_WEIGHTS = ("DB-CR has no published weights: pass --weights PATH (a checkpoint in rsinfer's DB-CR key layout, "
              "see rsinfer.models.dbcr) or --random-weights for a smoke run with a seeded untrained network")


def default_cache_dir() -> Path:
    if os.environ.get("RSINFER_CACHE_DIR"):
        return Path(os.environ["RSINFER_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rsinfer"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decloud", aliases=["declould"], help="remove clouds from Sentinel-2 with Sentinel-1 (DB-CR)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--s2", type=Path, help="cloudy Sentinel-2 GeoTIFF: 13 bands L1C or 12 bands L2A, DN")
    p.add_argument("--s1", type=Path, help="Sentinel-1 GeoTIFF, bands VV, VH (dB or linear σ0)")
    p.add_argument("--out", type=Path, help="output GeoTIFF (the S2 grid, dtype and bands)")
    p.add_argument("--weights", type=Path, help="DB-CR checkpoint (safetensors or weights-only torch file)")
    p.add_argument("--random-weights", action="store_true", help="seeded untrained network (smoke run, labelled)")
    p.add_argument("--steps", type=int, default=1, help=f"network evaluations, 1..{MAX_STEPS} (default 1, as DB-CR)")
    p.add_argument("--sampler", default="alpha-ratio", choices=SAMPLERS, help="bridge sampler (default %(default)s)")
    p.add_argument("--eta", type=float, default=0.0, help="DBIM stochasticity in [0, 1] (dbim only)")
    p.add_argument("--seed", type=int, default=0, help="seed of random weights and sampler noise")
    p.add_argument("--engine", default="torch", choices=ENGINE_KINDS,
                   help="how the network runs (default %(default)s; on CPU, compile is the fastest for long runs: "
                        "a one-off compilation of 1–2 min, then about 1.5x eager)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"],
                   help="engine precision (torch/compile: fp32, bf16; onnxruntime: fp32; tensorrt: all)")
    p.add_argument("--backend", default="auto", choices=["auto", "reference", "triton", "ext"],
                   help="op backend for the torch/compile engines (default %(default)s)")
    p.add_argument("--threads", type=int, help="onnxruntime intra-op threads (default: torch's thread count)")
    p.add_argument("--tile", type=int, default=256, help="tile side in pixels (default %(default)s)")
    p.add_argument("--overlap", type=int, default=32, help="tile overlap in pixels (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=4, help="tiles per network call (default %(default)s)")
    p.add_argument("--s1-scale", default="auto", choices=["auto", "dB", "linear"],
                   help="S1 values (default: detect from the median VV)")
    p.add_argument("--preview", type=Path, help="also write a true-colour PNG preview of the output")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--engines", action="store_true", help="list the engines and whether they can run here, then exit")
    p.set_defaults(func=run)


def _print_engines() -> int:
    for status in engine_statuses():
        print(f"{status.name:12s} {'available' if status.available else 'not available'}: {status.reason}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.engines:
        return _print_engines()
    missing = [f"--{name}" for name in ("s2", "s1", "out") if getattr(args, name) is None]
    if missing:
        raise ValueError(f"decloud needs {', '.join(missing)}")
    if args.random_weights == (args.weights is not None):
        raise ValueError(NO_WEIGHTS if not args.random_weights else
                         "--random-weights excludes --weights: pass either trained weights or random ones")
    options = dict(plan=SamplingPlan(args.sampler, args.steps, args.eta, args.seed), engine=args.engine,
                   precision=args.precision, cache_dir=default_cache_dir(), threads=args.threads, tile=args.tile,
                   batch_size=args.batch_size)
    start = time.perf_counter()
    with ops.use_backend(args.backend):
        pipe = (DbCr.with_random_weights(args.seed, **options) if args.random_weights
                else DbCr.from_checkpoint(args.weights, **options))
        summary = pipe.run_scene(args.s2, args.s1, args.out, s1_scale=args.s1_scale, overlap=args.overlap,
                                 preview=args.preview, overwrite=args.overwrite)
    print(f"wrote {summary.path} ({summary.shape[0]} bands, {summary.shape[1]}x{summary.shape[2]}, {args.steps} x "
          f"{args.sampler} on {args.engine}/{args.precision}, {summary.tiles_run} tiles, "
          f"{time.perf_counter() - start:.1f} s){'  [RANDOM WEIGHTS]' if args.random_weights else ''}")
    if args.preview:
        print(f"wrote {args.preview}")
    return 0
