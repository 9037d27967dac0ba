"""`rsinfer scene`: a per-pixel product (a spectral index) over a scene, tiled in bounded memory.

    rsinfer scene --product ndwi --input s2=../shared/data/sen1floods11/Spain_7370579_S2Hand.tif --out ndwi.tif
"""

from __future__ import annotations

import argparse

from rsinfer.cli import options
from rsinfer.cli.pipeline_run import run_pipeline
from rsinfer.pipelines import entry, names


def register(sub: argparse._SubParsersAction) -> None:
    products = names("scene")
    parser = sub.add_parser("scene", help="run a per-pixel product over a scene (tiled, bounded memory)",
                            description="Run a per-pixel product over a scene with the tiled scene engine. Products: "
                            + "; ".join(f"{name}: {entry(name).summary}" for name in products))
    parser.add_argument("--product", required=True, choices=products, help="what to compute")
    options.add_inputs(parser, products[0])
    options.add_tiling(parser, products[0])
    options.add_output(parser, preview=False)
    options.deprecated_flag(parser, "--no-progress", "--quiet", "quiet", nargs=0, convert=lambda _: True)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_pipeline(args, args.product, "none", {})
