"""The shared command-line vocabulary: each flag means the same thing in every subcommand that has it.

| flag | meaning |
|---|---|
| `--input NAME=PATH` | an input raster by the pipeline's input name (repeatable); `--NAME PATH` is the same |
| `--out PATH` | the output GeoTIFF |
| `--weights [PART=]PATH` | trained weights: a file or a directory of official files; PART= names one network |
| `--random-weights` | seeded untrained networks (seed: `--seed`); outputs are labelled |
| `--engine` | how networks run: torch, compile, onnxruntime, tensorrt |
| `--precision` | float32, bfloat16, float16 |
| `--backend` | the ops backend: auto, reference, triton, ext |
| `--threads`, `--thread-wait` | ONNX Runtime intra-op threads and how they idle (spin, sleep) |
| `--tile`, `--overlap` | tile side and overlap in pixels of the grid input (the output's grid unless it is coarser) |
| `--blend` | how overlapping tiles blend: cosine, gaussian, constant, crop |
| `--batch-size` | tiles per network call |
| `--seed` | the seed of every random draw (and of random weights) |
| `--steps` | network evaluations of a sampler |
| `--sampler` | the sampler, by name (the family's table) |
| `--samples K` | K stochastic draws (seeds SEED … SEED + K − 1); the output is their per-pixel mean |
| `--uncertainty-out PATH` | also write the K draws' per-band standard deviation, a GeoTIFF on the output's grid |
| `--dtype` | the output raster's data type (never a network precision) |
| `--cog` | write a Cloud-Optimized GeoTIFF |
| `--overwrite` | replace existing outputs |
| `--preview PATH` | also write a PNG rendering |
| `--quiet` | no progress line and no summary |

Choices come from the registries (`rsinfer.pipelines.vocabulary`), never from lists written here.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from rsinfer.pipelines import entry
from rsinfer.pipelines.vocabulary import (BACKEND_CHOICES, BLEND_MODES, ENGINE_KINDS, OUTPUT_DTYPES, PRECISIONS,
                                          THREAD_WAITS)


def default_cache_dir() -> Path:
    """Where exported ONNX graphs and TensorRT engines are cached: $RSINFER_CACHE_DIR, else ~/.cache/rsinfer."""
    if os.environ.get("RSINFER_CACHE_DIR"):
        return Path(os.environ["RSINFER_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rsinfer"


def named_path(text: str) -> tuple[str, str]:
    """NAME=PATH → (name, path), the one parser of named inputs."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def _weights_part(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if sep and name and path and os.sep not in name:
        return name, path
    return "", text


def add_inputs(parser: argparse.ArgumentParser, pipeline: str, shortcuts: bool = True) -> None:
    """--input NAME=PATH (repeatable) and, with `shortcuts`, --NAME PATH for each of the pipeline's inputs."""
    names = entry(pipeline).inputs
    parser.add_argument("--input", action="append", type=named_path, default=[], metavar="NAME=PATH",
                        help=f"an input raster; NAME is one of {', '.join(names)} (repeatable)")
    if shortcuts:
        for name in names:
            parser.add_argument(f"--{name.replace('_', '-')}", dest=f"input_{name}", metavar="PATH",
                                help=f"the same as --input {name}=PATH")


def inputs_of(args: argparse.Namespace, pipeline: str) -> dict[str, str]:
    """The named inputs, in the order given; a name given twice is an error."""
    given = list(args.input)
    for name in entry(pipeline).inputs:
        path = getattr(args, f"input_{name}", None)
        if path is not None:
            given.append((name, path))
    inputs: dict[str, str] = {}
    for name, path in given:
        if name in inputs:
            raise ValueError(f"input {name!r} given twice")
        inputs[name] = path
    return inputs


def add_weights(parser: argparse.ArgumentParser, parts: str = "") -> None:
    parser.add_argument("--weights", action="append", type=_weights_part, default=[], metavar="[PART=]PATH",
                        help="trained weights: a checkpoint file or a directory with the official file names"
                             + (f"; parts: {parts}" if parts else ""))
    parser.add_argument("--random-weights", action="store_true",
                        help="seeded untrained networks (seed: --seed): a smoke run, labelled in the outputs")


def weights_of(args: argparse.Namespace, missing_message: str) -> str | dict[str, str]:
    """The spec's weights: "random:SEED", a path, or {part: path}."""
    if args.random_weights:
        if args.weights:
            raise ValueError("--random-weights excludes --weights: pass either trained weights or random ones")
        return f"random:{args.seed}"
    if not args.weights:
        raise ValueError(missing_message)
    parts = dict(args.weights)
    if len(parts) != len(args.weights):
        raise ValueError(f"--weights names a part twice: {[part or 'the network' for part, _ in args.weights]}")
    return parts[""] if set(parts) == {""} else parts


def add_engine(parser: argparse.ArgumentParser, engines: tuple[str, ...] = ENGINE_KINDS, default: str = "torch",
               onnxruntime: bool = True) -> None:
    parser.add_argument("--engine", default=default, choices=engines, help="how the network runs (default %(default)s)")
    parser.add_argument("--precision", default="float32", choices=PRECISIONS,
                        help="network precision (default %(default)s; bfloat16 is fast only on CPUs with native bf16, "
                             "see rsinfer env)")
    parser.add_argument("--backend", default="auto", choices=BACKEND_CHOICES, help="ops backend (default %(default)s)")
    if onnxruntime:
        parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads (default: torch's)")
        parser.add_argument("--thread-wait", default="spin", choices=THREAD_WAITS,
                            help="how idle ONNX Runtime threads wait (default %(default)s; sleep on shared hosts)")


def add_sampling(parser: argparse.ArgumentParser, samplers: tuple[str, ...], sampler: str, steps: int) -> None:
    parser.add_argument("--sampler", default=sampler, choices=samplers, help="sampler (default %(default)s)")
    parser.add_argument("--steps", type=int, default=steps, help="network evaluations (default %(default)s)")


def add_samples(parser: argparse.ArgumentParser, stochastic: str) -> None:
    """--samples K and --uncertainty-out PATH; `stochastic` says which samplers draw differently per seed."""
    parser.add_argument("--samples", type=int, default=1, metavar="K",
                        help=f"K draws with seeds SEED .. SEED+K-1 ({stochastic}); the output is their per-pixel "
                             "mean (default %(default)s)")
    parser.add_argument("--uncertainty-out", metavar="PATH",
                        help="also write the per-band standard deviation of the K draws (K >= 2) to this GeoTIFF, "
                             "on the output's grid")


def samples_of(args: argparse.Namespace) -> int:
    """--samples, checked with --uncertainty-out before any network is built."""
    from rsinfer.pipelines.runner import check_uncertainty
    from rsinfer.pipelines.uncertainty import check_samples

    check_uncertainty(check_samples(args.samples), args.uncertainty_out)
    return args.samples


SEED_RANGE = (-2**63, 2**64 - 1)  # what torch's generators take


def seed(text: str) -> int:
    """--seed: an integer a torch generator takes (argparse names this function in its errors: "invalid seed")."""
    value = int(text)
    if not SEED_RANGE[0] <= value <= SEED_RANGE[1]:
        raise argparse.ArgumentTypeError(f"seeds are integers from -2**63 to 2**64 - 1, got {value}")
    return value


def add_seed(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=seed, default=0,
                        help="seed of every random draw and of random weights (default %(default)s)")


def add_tiling(parser: argparse.ArgumentParser, pipeline: str) -> None:
    tile, overlap, blend, batch = entry(pipeline).tiling
    parser.add_argument("--tile", type=int,
                        help=f"tile side in pixels of the input whose grid the output takes (default {tile})")
    parser.add_argument("--overlap", type=int, help=f"tile overlap in those pixels (default {overlap})")
    parser.add_argument("--blend", choices=BLEND_MODES, help=f"how overlapping tiles blend (default {blend})")
    parser.add_argument("--batch-size", type=int, help=f"tiles per network call (default {batch})")


@dataclass(frozen=True)
class TilingArgs:
    """The tiling flags given (None: the pipeline's default)."""

    tile: int | None
    overlap: int | None
    blend: str | None
    batch_size: int | None

    def changes(self) -> dict[str, object]:
        return {k: v for k, v in vars(self).items() if v is not None}


def tiling_of(args: argparse.Namespace) -> TilingArgs:
    """The tiling flags, each checked on its own (negative values named as such); the combination (tile > 2 x
    overlap) is checked where the pipeline's defaults fill in the rest (`rsinfer.cli.pipeline_run`)."""
    for flag, value, least in (("--tile", args.tile, 1), ("--overlap", args.overlap, 0),
                               ("--batch-size", args.batch_size, 1)):
        if value is not None and value < 0:
            raise ValueError(f"{flag} must not be negative, got {value}")
        if value is not None and value < least:
            raise ValueError(f"{flag} must be at least {least}, got {value}")
    return TilingArgs(args.tile, args.overlap, args.blend, args.batch_size)


def add_output(parser: argparse.ArgumentParser, dtype: bool = True, preview: bool = True) -> None:
    parser.add_argument("--out", required=True, help="output GeoTIFF")
    if dtype:
        parser.add_argument("--dtype", choices=OUTPUT_DTYPES, help="output raster data type (default: the pipeline's)")
    parser.add_argument("--cog", action="store_true", help="write a Cloud-Optimized GeoTIFF with overviews")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    if preview:
        parser.add_argument("--preview", help="also write a PNG preview of the output")
    parser.add_argument("--quiet", action="store_true", help="no progress line and no summary")


def deprecated_flag(parser: argparse.ArgumentParser, flag: str, replacement: str, dest: str, convert=lambda v: v,
                    **kwargs) -> None:
    """An old flag kept as an alias of `replacement`: it sets `dest` to its value passed through `convert`, and says on
    stderr that it is deprecated."""

    class Deprecated(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            print(f"rsinfer: warning: {flag} is deprecated; use {replacement}", file=sys.stderr)
            setattr(namespace, self.dest, convert(values))

    parser.add_argument(flag, action=Deprecated, dest=dest, help=argparse.SUPPRESS, **kwargs)
