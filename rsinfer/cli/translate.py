"""`rsinfer translate`: any-to-any translation of real rasters with COP-GEN-Beta, written as a GeoTIFF.

    rsinfer translate --weights nnet_ema_114000.pth --weights vae=autoencoder_kl_ema.pth \\
        --input s1_rtc=s1.tif [--input dem=dem.tif] --target s2_l2a --out out.tif \\
        [--steps N --sampler NAME --seed S --precision bfloat16 --engine compile --preview out.png]
        [--samples K --uncertainty-out std.tif]          # the mean of K seeds, and their per-band std

`--random-weights` runs the whole pipeline with seeded random network and VAE weights instead (a smoke run: the
output is not a translation) and stamps that into the GeoTIFF tags and onto the preview.
"""

from __future__ import annotations

import argparse

from rsinfer.cli import options
from rsinfer.cli.pipeline_run import run_pipeline
from rsinfer.pipelines.vocabulary import FUSIONS, IGNORED_MODES, MODALITIES, PF_ODE_SAMPLERS, S1_SCALES

NO_WEIGHTS = ("copgen-beta needs trained weights: pass --weights nnet_ema_114000.pth (Hugging Face "
              "mespinosami/COP-GEN-Beta) and --weights vae=autoencoder_kl_ema.pth (the SD KL-f8 VAE COP-GEN-Beta "
              "decodes with), or --random-weights for a smoke run with seeded random weights (labelled as such)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help="translate rasters between modalities (COP-GEN-Beta)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="copgen-beta", choices=["copgen-beta"], help="network (default %(default)s)")
    options.add_inputs(p, "translate", shortcuts=False)
    p.add_argument("--target", required=True, choices=MODALITIES, help="modality to generate")
    options.add_weights(p, parts="network (the default part), vae")
    options.deprecated_flag(p, "--vae", "--weights vae=PATH", "vae")
    options.add_sampling(p, PF_ODE_SAMPLERS, "unipc", 10)
    options.add_seed(p)
    options.add_samples(p, "each seed its own initial noise")
    options.add_engine(p, engines=("torch", "compile"), onnxruntime=False)
    options.deprecated_flag(p, "--mode", "--engine torch|compile", "engine", choices=["eager", "compiled"],
                            convert=lambda mode: {"eager": "torch", "compiled": "compile"}[mode])
    p.add_argument("--fusion", default="per-step", choices=FUSIONS,
                   help="how overlapping latent tiles combine (default %(default)s: MultiDiffusion at every step)")
    p.add_argument("--ignored", default="marginal", choices=IGNORED_MODES,
                   help="modalities neither given nor generated: noise at t=1000 (marginal, default) or the official "
                        "noise labelled t=0")
    p.add_argument("--s1-scale", default="auto", choices=S1_SCALES, help="S1 input values (default: detect)")
    options.add_tiling(p, "translate")
    options.add_output(p, dtype=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.vae is not None:
        args.weights.append(("vae", args.vae))
    weights = options.weights_of(args, NO_WEIGHTS)
    if isinstance(weights, str) and not weights.startswith("random:"):
        raise ValueError(NO_WEIGHTS)
    if isinstance(weights, dict) and "" in weights:
        weights["network"] = weights.pop("")
    for name, _ in args.input:
        if name not in MODALITIES:
            raise ValueError(f"--input {name}=...: unknown modality {name!r}; choose from {', '.join(MODALITIES)}")
    return run_pipeline(args, "translate", weights, {
        "target": args.target, "steps": args.steps, "sampler": args.sampler, "seed": args.seed,
        "samples": options.samples_of(args),
        "engine": args.engine, "precision": args.precision, "backend": args.backend, "ignored": args.ignored,
        "fusion": args.fusion, "s1_scale": args.s1_scale})
