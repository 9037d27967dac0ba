"""`rsinfer translate`: any-to-any translation of real rasters with COP-GEN-Beta, written as a GeoTIFF.

    rsinfer translate --model copgen-beta --weights nnet_ema_114000.pth --vae autoencoder_kl_ema.pth \\
        --input s1_rtc=s1.tif [--input dem=dem.tif] --target s2_l2a --out out.tif \\
        [--steps N --sampler NAME --seed S --dtype bfloat16 --backend auto --preview out.png]

`--random-weights` runs the whole pipeline with seeded random network and VAE weights instead (a smoke run: the
output is not a translation) and stamps that into the GeoTIFF tags and onto the preview.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from rsinfer import models
from rsinfer.models.prepared import prepare
from rsinfer.pipelines.copgen import IGNORED_MODES, MODALITIES, CopGenBeta
from rsinfer.pipelines.copgen_scene import FUSIONS, LatentTiling, translate_scene
from rsinfer.pipelines.majortom import S1_SCALES
from rsinfer.samplers.pf_ode import SAMPLER_NAMES

RANDOM_BANNER = "RANDOM WEIGHTS - NOT A TRAINED MODEL"
NO_WEIGHTS = ("copgen-beta needs trained weights: pass --weights nnet_ema_114000.pth (Hugging Face "
              "mespinosami/COP-GEN-Beta) and --vae autoencoder_kl_ema.pth (the SD KL-f8 VAE COP-GEN-Beta decodes "
              "with), or --random-weights for a smoke run with seeded random weights (labelled as such)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help="translate rasters between modalities (COP-GEN-Beta)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="copgen-beta", choices=["copgen-beta"], help="network (default %(default)s)")
    p.add_argument("--weights", type=Path, help="network checkpoint (official nnet_ema_114000.pth or safetensors)")
    p.add_argument("--vae", type=Path, help="SD KL-f8 VAE checkpoint (official autoencoder_kl_ema.pth)")
    p.add_argument("--random-weights", action="store_true",
                   help="seeded random weights for network and VAE (smoke run; stamped into the outputs)")
    p.add_argument("--input", action="append", required=True, metavar="MODALITY=PATH",
                   help=f"a condition raster; MODALITY is one of {', '.join(MODALITIES)} (repeatable; the first "
                        "input defines the output grid)")
    p.add_argument("--target", required=True, choices=MODALITIES, help="modality to generate")
    p.add_argument("--out", required=True, type=Path,
                   help="output GeoTIFF: uint8 Major TOM rendering of the target (not physical values), 0 = nodata")
    p.add_argument("--steps", type=int, default=10, help="network evaluations (NFE; default %(default)s)")
    p.add_argument("--sampler", default="unipc", choices=SAMPLER_NAMES,
                   help="ODE solver (default %(default)s; dpm-solver++3s with --steps 50 is the official setting)")
    p.add_argument("--seed", type=int, default=0, help="seed of the posterior, initial and ignored-modality noise")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                   help="network precision (default %(default)s; bfloat16 is slow on CPUs without native bf16)")
    p.add_argument("--backend", default="auto", choices=["auto", "reference", "triton", "ext"],
                   help="op backend of the network (default %(default)s)")
    p.add_argument("--mode", default="eager", choices=["eager", "compiled"],
                   help="run the network as written or torch.compile'd (first call compiles; default %(default)s)")
    p.add_argument("--preview", type=Path, help="also write a PNG preview of the output")
    p.add_argument("--fusion", default="per-step", choices=FUSIONS,
                   help="how overlapping latent tiles combine (default %(default)s: MultiDiffusion at every step)")
    p.add_argument("--overlap", type=int, default=LatentTiling.overlap,
                   help="latent tile overlap (default %(default)s)")
    p.add_argument("--ignored", default="marginal", choices=IGNORED_MODES,
                   help="modalities neither given nor generated: noise at t=1000 (marginal, default) or the official "
                        "noise labelled t=0")
    p.add_argument("--s1-scale", default="auto", choices=S1_SCALES, help="S1 input values (default: detect)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.set_defaults(func=run)


def _inputs(specs: list[str]) -> dict[str, Path]:
    inputs = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not path:
            raise ValueError(f"--input {spec!r}: expected MODALITY=PATH, e.g. s1_rtc=s1.tif")
        if name not in MODALITIES:
            raise ValueError(f"--input {spec!r}: unknown modality {name!r}; choose from {', '.join(MODALITIES)}")
        if name in inputs:
            raise ValueError(f"--input {name} given twice")
        inputs[name] = Path(path)
    return inputs


def _networks(args: argparse.Namespace) -> tuple[torch.nn.Module, torch.nn.Module, dict[str, str]]:
    if args.random_weights:
        if args.weights or args.vae:
            raise ValueError("--random-weights excludes --weights/--vae: pass either trained weights or random ones")
        torch.manual_seed(args.seed)
        net, vae = models.build(args.model), models.build("sd-vae")
        label = f"RANDOM (seed {args.seed}) - not a trained model; the output is not a translation"
        return net.eval(), vae.eval(), {"RSINFER_WEIGHTS": label}
    if args.weights is None or args.vae is None:
        raise ValueError(NO_WEIGHTS)
    net, vae = models.load(args.model, args.weights), models.load("sd-vae", args.vae)
    return net, vae, {"RSINFER_WEIGHTS": str(args.weights), "RSINFER_VAE": str(args.vae)}


def run(args: argparse.Namespace) -> int:
    inputs = _inputs(args.input)
    net, vae, tags = _networks(args)
    tags.update(RSINFER_DTYPE=args.dtype, RSINFER_BACKEND=args.backend, RSINFER_MODE=args.mode)
    pipe = CopGenBeta(prepare(net, args.dtype, args.mode, args.backend), vae, ignored=args.ignored)
    start = time.perf_counter()
    path = translate_scene(pipe, inputs, args.target, args.out, args.steps, args.sampler, args.seed,
                           LatentTiling(overlap=args.overlap, fusion=args.fusion), args.s1_scale, tags,
                           args.preview, RANDOM_BANNER if args.random_weights else None, args.overwrite)
    print(f"wrote {path} ({args.target} rendering, {args.steps} x {args.sampler}, "
          f"{time.perf_counter() - start:.1f} s){'  [RANDOM WEIGHTS]' if args.random_weights else ''}")
    if args.preview:
        print(f"wrote {args.preview}")
    return 0
