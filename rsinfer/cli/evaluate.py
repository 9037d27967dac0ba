"""`rsinfer evaluate`: quality metrics of pansharpened and translated rasters (the logic is
`rsinfer.pipelines.evaluation`; this module parses and prints).

    rsinfer evaluate pansharpen --fused F.tif --reference R.tif                  # reduced resolution: SAM ERGAS Q2n ...
    rsinfer evaluate pansharpen --fused F.tif --ms MS.tif --pan PAN.tif --sensor wv3      # full resolution: QNR HQNR
    rsinfer evaluate pansharpen --wald --ms B2.tif --ms B3.tif --ms B4.tif --sensor landsat-8 --bands B2 B3 B4 \\
        --method exp gsa mtf-glp crossdiff --random-weights                     # Wald protocol, methods side by side
    rsinfer evaluate translation --reference R.tif --predicted P.tif (--data-range 1 | --sensor sentinel-2)

`--wald` degrades a real MS (one file, or one --ms per band) with the sensor's MTF and decimates it by 4; its PAN is a
real one given with --pan (4x the MS resolution) or, without it, a synthetic one (the mean of the visible bands),
and the output says which. `--window ROW COL HEIGHT WIDTH` evaluates part of the first raster's grid (of the MS with
--wald, of the fused image otherwise, of the reference for translation). `--json` prints the numbers as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os

from rsinfer.cli import options
from rsinfer.cli.decloud import default_cache_dir

NO_CROSSDIFF_WEIGHTS = ("method crossdiff needs --weights (the official experiments/ directory, or p2m=FILE "
                        "m2p=FILE fusion=FILE) or --random-weights")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="quality metrics of pansharpened or translated rasters",
                       description=__doc__.split("\n\n")[0])
    kinds = p.add_subparsers(dest="evaluation", required=True, metavar="WHAT")

    pan = kinds.add_parser("pansharpen", help="pansharpening metrics: reduced resolution, full resolution, or Wald",
                           description="Reduced resolution (--fused, --reference), full resolution (--fused, --ms, "
                                       "--pan, --sensor) or Wald's protocol (--wald, --ms, --sensor, --method).")
    pan.add_argument("--fused", help="the pansharpened raster")
    pan.add_argument("--reference", help="the reference MS at the fused resolution (reduced resolution)")
    pan.add_argument("--ms", action="append", default=[], metavar="PATH",
                     help="the MS (repeat for single-band files, stacked in order)")
    pan.add_argument("--pan", help="the PAN band (full resolution; with --wald a real PAN at 4x the MS resolution)")
    pan.add_argument("--sensor", help="sensor name (rsinfer.sensors): MTF gains for --wald and full resolution")
    pan.add_argument("--bands", nargs="+", help="the MS bands' names among the sensor's (default: the files' band "
                                                "descriptions, or all of the sensor's bands)")
    pan.add_argument("--wald", action="store_true", help="Wald's protocol: degrade --ms, sharpen, compare")
    pan.add_argument("--method", nargs="+", metavar="NAME",
                     help="--wald methods side by side: baselines of rsinfer.pansharpening by name, and crossdiff "
                          "(default: every baseline; an unknown name lists them)")
    options.add_weights(pan, parts="p2m, m2p, fusion (for --method crossdiff)")
    pan.add_argument("--dn-scale", type=float, help="CrossDiff's DN scale (default: the sensor's)")
    options.add_seed(pan)
    options.add_engine(pan)
    _add_common(pan)
    pan.set_defaults(func=run_pansharpen)

    tr = kinds.add_parser("translation", help="per-band RMSE, PSNR, SSIM, CC of a translated raster",
                          description="Per-band RMSE, PSNR, SSIM and CC of --predicted against --reference and their "
                                      "means, on a stated data range.")
    tr.add_argument("--reference", required=True, help="the reference raster")
    tr.add_argument("--predicted", required=True, help="the predicted raster (read on the reference's grid)")
    scale = tr.add_mutually_exclusive_group()
    scale.add_argument("--data-range", type=float, help="the data range R of SSIM and PSNR (e.g. 1 for [0, 1] data)")
    scale.add_argument("--sensor", help="take R from this sensor's DN scale (e.g. sentinel-2: 10000)")
    _add_common(tr)
    tr.set_defaults(func=run_translation)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--window", type=int, nargs=4, metavar=("ROW", "COL", "HEIGHT", "WIDTH"),
                        help="evaluate this part of the first raster's grid (pixels)")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")


def _number(value: float) -> str:
    return f"{value:.6g}" if math.isfinite(value) else str(value)


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def run_pansharpen(args: argparse.Namespace) -> int:
    from rsinfer.pipelines import evaluation

    window = args.window  # (row, col, height, width) or None
    if args.wald:
        return _print_wald(args, window)
    if args.fused is None:
        raise ValueError("give --fused (with --reference, or with --ms, --pan and --sensor), or --wald")
    if args.reference is not None:
        kind = "reduced resolution"
        metrics = evaluation.reduced_resolution_of(args.fused, args.reference, window)
        subject = f"{args.fused} against the reference {args.reference}"
    else:
        if not args.ms or args.pan is None or args.sensor is None:
            raise ValueError("full-resolution metrics need --ms, --pan and --sensor (or give --reference for "
                             "reduced-resolution metrics)")
        kind = "full resolution"
        metrics = evaluation.full_resolution_of(args.fused, args.ms, args.pan, args.sensor, args.bands, window)
        subject = f"{args.fused} with MS {', '.join(args.ms)} and PAN {args.pan} ({args.sensor})"
    if args.json:
        print(json.dumps({"evaluation": kind, **metrics}))
        return 0
    print(f"{kind}: {subject}")
    _print_table(["metric", "value"], [[name, _number(value)] for name, value in metrics.items()])
    return 0


def _print_wald(args: argparse.Namespace, window) -> int:
    from rsinfer.pipelines import PipelineSpec, evaluation

    if not args.ms or args.sensor is None:
        raise ValueError("--wald needs the MS to degrade (--ms) and its --sensor (for the MTF gains)")
    crossdiff = None
    if "crossdiff" in (args.method or ()):
        scale = {"dn_scale": args.dn_scale} if args.dn_scale is not None else {"sensor": args.sensor}
        crossdiff = PipelineSpec("pansharpen", options.weights_of(args, NO_CROSSDIFF_WEIGHTS), {
            **scale, "seed": args.seed, "engine": args.engine, "precision": args.precision, "backend": args.backend,
            "threads": args.threads, "thread_wait": args.thread_wait, "cache_dir": os.fspath(default_cache_dir())})
    report = evaluation.wald_evaluation(args.ms, args.pan, args.sensor, args.method, args.bands, crossdiff, window)
    if args.json:
        print(json.dumps(dataclasses.asdict(report)))
        return 0
    bands, rows, cols = report.reference_shape
    print(f"Wald protocol, ratio 4: reference MS {bands} bands x {rows} x {cols} ({report.sensor}: "
          f"{' '.join(report.bands)}), degraded MS {rows // 4} x {cols // 4}")
    print(f"PAN: {report.pan_description}")
    if crossdiff is not None and crossdiff.parsed_weights().random:
        print("crossdiff: RANDOM WEIGHTS - not a trained model")
    methods = list(report.metrics)
    names = list(dict.fromkeys(name for values in report.metrics.values() for name in values))
    table = [[name] + [_number(report.metrics[m][name]) for m in methods] for name in names]
    _print_table(["metric", *methods], table + [["seconds"] + [f"{report.seconds[m]:.2f}" for m in methods]])
    return 0


def run_translation(args: argparse.Namespace) -> int:
    from rsinfer.pipelines import evaluation

    data_range, stated = evaluation.translation_range(args.data_range, args.sensor)
    quality, bands = evaluation.translation_quality(args.reference, args.predicted, data_range, args.window)
    metrics = ("RMSE", "PSNR", "SSIM", "CC")
    if args.json:
        print(json.dumps({"data_range": data_range, "bands": bands,
                          **{name: [float(v) for v in quality[name]] for name in metrics},
                          **{f"{name}_mean": quality[f"{name}_mean"] for name in metrics}}))
        return 0
    print(f"{args.predicted} against {args.reference}; data range {stated}; RMSE in the rasters' units, PSNR in dB")
    rows = [[band] + [_number(float(quality[name][i])) for name in metrics] for i, band in enumerate(bands)]
    _print_table(["band", *metrics], rows + [["mean"] + [_number(quality[f"{name}_mean"]) for name in metrics]])
    return 0
