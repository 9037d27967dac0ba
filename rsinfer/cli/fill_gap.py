"""`rsinfer fill-gap`: a missing acquisition filled with TIRSIT from another modality and neighbouring dates.

    rsinfer fill-gap --model tirsit (--weights W | --random-weights) --source S_i.tif \\
        --pair S_j.tif T_j.tif [--pair S_k.tif T_k.tif ...] --out T_i.tif \\
        [--task sar2rgb|rgb2swir] [--weights-out P.tif] [--window S --k K --engine onnxruntime --preview T_i.png]

Each --pair is a neighbouring date where both modalities exist: its source-modality raster, then its target-modality
raster (at most 4 pairs; they are the inputs source_n, target_n of --input NAME=PATH). The output is on the source's
grid (every other input is resampled onto it) with the targets' bands, data type and nodata. --task picks the paper's
band choices, box-filter size and scaling (sar2rgb: S1 VV, VH → S2 B4, B3, B2; rgb2swir: S2 B4, B3, B2 → B11, B12);
without it every band is read and the band counts set the network's channels (--random-weights) or must match the
weights. --weights-out also writes the fusion weights p_1 … p_n (float32, one band per pair), a second run that needs
no network. The default tiling (512-pixel tiles, overlap 192, crop) gives every output pixel the context the
reconstruction needs; a tiling that gives less is refused, naming one that works.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rsinfer.cli import options
from rsinfer.cli.options import default_cache_dir
from rsinfer.cli.pipeline_run import run_pipeline
from rsinfer.pipelines import entry
from rsinfer.pipelines.vocabulary import FILL_GAP_TASKS, S1_SCALES

PIPELINE = "fill-gap"
MAX_PAIRS = sum(name.startswith("target_") for name in entry(PIPELINE).inputs)
NO_WEIGHTS = ("TIRSIT has no published weights: pass --weights PATH (a checkpoint in rsinfer's TIRSIT key layout, "
              "see rsinfer.models.tirsit) or --random-weights for a smoke run with a seeded untrained network")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(PIPELINE, help="fill a missing acquisition from neighbouring dates (TIRSIT)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="tirsit", choices=["tirsit"], help="network (default %(default)s)")
    p.add_argument("--source", dest="input_source", metavar="PATH",
                   help="S_i: the date to fill, in the source modality (its grid is the output grid)")
    p.add_argument("--pair", nargs=2, action="append", default=[], metavar=("S_J", "T_J"),
                   help=f"a neighbouring date: its source- and target-modality rasters (repeatable, 1 to {MAX_PAIRS})")
    options.add_inputs(p, PIPELINE, shortcuts=False)
    p.add_argument("--task", choices=FILL_GAP_TASKS,
                   help="the paper's band choices and scaling (default: bands as the files hold them, unscaled)")
    p.add_argument("--window", type=int, help="s, the box filter of the fusion weights (default: the task's, 51 for "
                                              "sar2rgb and without a task, 11 for rgb2swir)")
    p.add_argument("--k", type=float, default=10.0, help="k, the slope of the fusion weights (default %(default)s)")
    p.add_argument("--s1-scale", default="auto", choices=S1_SCALES,
                   help="SAR values of sar2rgb (default: detect from the source)")
    p.add_argument("--weights-out", metavar="PATH", help="also write the fusion weights p_1 … p_n as a float32 GeoTIFF")
    options.add_weights(p)
    options.add_seed(p)
    options.add_engine(p)
    options.add_tiling(p, PIPELINE)
    options.add_output(p)
    p.set_defaults(func=run)


def inputs_with_pairs(args: argparse.Namespace) -> dict[str, str]:
    """--source, --input NAME=PATH and the --pair list as named inputs (pair n: source_n, target_n)."""
    inputs = options.inputs_of(args, PIPELINE)
    if len(args.pair) > MAX_PAIRS:
        raise ValueError(f"at most {MAX_PAIRS} --pair are allowed, got {len(args.pair)}")
    for n, (source, target) in enumerate(args.pair, 1):
        for name, path in ((f"source_{n}", source), (f"target_{n}", target)):
            if name in inputs:
                raise ValueError(f"input {name!r} given twice (--pair {n} and --input)")
            inputs[name] = path
    if "source" not in inputs:
        raise ValueError("give --source S_i.tif: the date to fill, in the source modality")
    if not any(name.startswith("target_") for name in inputs):
        raise ValueError("give at least one --pair S_j.tif T_j.tif: a neighbouring date where both modalities exist")
    return inputs


def run(args: argparse.Namespace) -> int:
    weights = options.weights_of(args, NO_WEIGHTS)
    inputs = inputs_with_pairs(args)
    if args.preview and args.task != "sar2rgb":
        raise ValueError("--preview renders visible targets (B4, B3, B2): it needs --task sar2rgb")
    if args.weights_out is not None:
        from rsinfer.pipelines import check_output

        if Path(args.weights_out).resolve() == Path(args.out).resolve():
            raise ValueError(f"--weights-out {args.weights_out} is the --out file; name another one")
        check_output(args.weights_out, args.overwrite)  # before the long run, not after it
    pipeline_options = {"task": args.task, "window": args.window, "k": args.k, "s1_scale": args.s1_scale,
                        "engine": args.engine, "precision": args.precision, "backend": args.backend,
                        "threads": args.threads, "thread_wait": args.thread_wait,
                        "cache_dir": str(default_cache_dir())}
    status = run_pipeline(args, PIPELINE, weights, pipeline_options, inputs)
    if args.weights_out is None or status:
        return status
    weights_args = argparse.Namespace(**{**vars(args), "out": args.weights_out, "dtype": None, "preview": None})
    return run_pipeline(weights_args, PIPELINE, weights, {**pipeline_options, "product": "weights"}, inputs)
