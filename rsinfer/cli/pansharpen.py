"""`rsinfer pansharpen`: CrossDiff pansharpening of a PAN band and a 4x coarser multispectral image.

    rsinfer pansharpen --pan PAN.tif --ms MS.tif --out OUT.tif (--weights DIR | --random-weights) \\
        [--sensor wv3 | --dn-scale N] [--engine compile --tile 256 --overlap 32 --blend cosine]

The output lies on the PAN grid with the MS band count, in the MS's DN and data type (`--dtype float32` for
unrounded values). DIR is the official training code's `experiments/` directory (PAN2MS*/, MS2PAN*/ and the fusion
run, each with checkpoint/I*_E*_gen.pth); `--weights p2m=FILE --weights m2p=FILE --weights fusion=FILE` names the
three files instead (or some of them, beside a DIR). The DN that maps to 1 is the official 2047 (11-bit sensors)
unless `--sensor` or `--dn-scale` says otherwise. `--random-weights` runs seeded untrained networks (a smoke run,
labelled in the tags). Exported ONNX graphs are cached under $RSINFER_CACHE_DIR (default ~/.cache/rsinfer).
"""

from __future__ import annotations

import argparse
import os

from rsinfer.cli import options
from rsinfer.cli.decloud import default_cache_dir
from rsinfer.cli.pipeline_run import run_pipeline

NO_WEIGHTS = ("CrossDiff needs its three networks: --weights DIR (the official experiments/ directory with the "
              "PAN2MS*, MS2PAN* and fusion runs), or --weights p2m=FILE --weights m2p=FILE --weights fusion=FILE "
              "(official I*_E*_gen.pth files), or --random-weights for a smoke run with seeded untrained networks")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pansharpen", help="sharpen a multispectral image with its PAN band (CrossDiff)",
                       description=__doc__.split("\n\n")[0])
    options.add_inputs(p, "pansharpen")
    options.add_weights(p, parts="p2m, m2p, fusion (or a directory of the official runs)")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--sensor", help="the sensor (rsinfer.sensors name, e.g. wv3, gf2, pleiades, landsat-8) whose "
                                        "DN scale applies")
    scale.add_argument("--dn-scale", type=float, help="the DN that maps to 1 (default 2047, the official scale)")
    options.add_seed(p)
    options.add_engine(p)
    options.add_tiling(p, "pansharpen")
    options.add_output(p, preview=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_pipeline(args, "pansharpen", options.weights_of(args, NO_WEIGHTS), {
        "sensor": args.sensor, "dn_scale": args.dn_scale, "seed": args.seed, "engine": args.engine,
        "precision": args.precision, "backend": args.backend, "threads": args.threads,
        "thread_wait": args.thread_wait, "cache_dir": os.fspath(default_cache_dir())})
