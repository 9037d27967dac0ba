"""`rsinfer scene`: run a per-pixel product over a scene with the tiled scene engine and write a GeoTIFF/COG.

    rsinfer scene --product ndwi --input s2=../shared/data/sen1floods11/Spain_7370579_S2Hand.tif --out ndwi.tif

The progress bar is drawn on stderr when it is a terminal (`--no-progress` silences it).
"""

from __future__ import annotations

import argparse
import math
from typing import get_args

from rsinfer.io import OutputDtype
from rsinfer.scene import PRODUCTS, product, run_scene
from rsinfer.tiling import BlendMode


def _named_path(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("scene", help="run a per-pixel product over a scene (tiled, bounded memory)",
                            description="Run a per-pixel product over a scene with the tiled scene engine. Products: "
                            + "; ".join(f"{name}: bands {p.bands} of input {p.input_name!r}"
                                        for name, p in PRODUCTS.items()))
    parser.add_argument("--product", required=True, choices=sorted(PRODUCTS), help="what to compute")
    parser.add_argument("--input", required=True, action="append", type=_named_path, metavar="NAME=PATH",
                        help="an input raster (repeatable); the first defines the output grid unless --grid")
    parser.add_argument("--out", required=True, help="output GeoTIFF path")
    parser.add_argument("--grid", help="name of the input whose grid the output uses")
    parser.add_argument("--tile", type=int, default=256, help="tile edge in output pixels (default 256)")
    parser.add_argument("--overlap", type=int, default=32, help="overlap in output pixels (default 32)")
    parser.add_argument("--blend", choices=get_args(BlendMode), default="cosine", help="overlap blending")
    parser.add_argument("--batch-size", type=int, default=4, help="tiles per call (default 4)")
    parser.add_argument("--dtype", choices=get_args(OutputDtype), default="float32", help="output data type")
    parser.add_argument("--nodata", type=float, default=math.nan,
                        help="output nodata value (default NaN: index values of 0 are valid data)")
    parser.add_argument("--cog", action="store_true", help="write a Cloud-Optimized GeoTIFF with overviews")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    fn = product(args.product)
    inputs = dict(args.input)
    if len(inputs) != len(args.input):
        raise ValueError(f"input names repeat: {[name for name, _ in args.input]}")
    if fn.input_name not in inputs:
        raise ValueError(f"product {args.product!r} needs an input named {fn.input_name!r}; got {list(inputs)}")
    summary = run_scene(fn, {fn.input_name: inputs[fn.input_name]}, args.out, grid=args.grid, tile=args.tile,
                        overlap=args.overlap, blend=args.blend, batch_size=args.batch_size,
                        bands={fn.input_name: fn.bands}, nodata=args.nodata, dtype=args.dtype, cog=args.cog,
                        overwrite=args.overwrite, progress=not args.no_progress)
    bands, height, width = summary.shape
    print(f"wrote {summary.path} ({bands} band{'s' * (bands > 1)}, {height}x{width}): {summary.tiles_run} tiles run, "
          f"{summary.tiles_skipped} skipped, {summary.seconds:.1f} s")
    return 0
