"""`rsinfer classify`: BigEarthNet v2 class probabilities over any optical scene (Atomizer).

    rsinfer classify --model atomizer (--weights CKPT --config CONFIG | --random-weights) --input s2=SCENE.tif \\
        --out probs.tif [--sensor landsat-8 --bands B2,B3,B4] [--gsd-m 30] [--tile 120 --overlap 56 --blend cosine]

The output lies on the scene's grid: 19 float32 bands of probabilities in [0, 1], named after the classes, from 120-px
windows every 64 pixels blended smoothly (rsinfer.pipelines.atomizer_scene). CKPT is an Atomizer checkpoint (a state
dict, the encoder's .pth or a Lightning .ckpt); CONFIG is its training config, JSON or YAML (YAML needs PyYAML): the
official layout (an "Atomiser" section and the top-level "wavelengths_encoding" anchors) or a flat mapping of the
same names. A checkpoint does not hold its config, so --weights needs --config. `--random-weights` runs a seeded,
small untrained network (a smoke run, labelled in the tags) with the 16 anchors of the recovered training config,
unless --config says otherwise. --bands names the sensor's bands to encode (default: Sentinel-2's 12 BigEarthNet
bands, or all the sensor's bands); the file's bands are found by description, else by position.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rsinfer.cli import options
from rsinfer.cli.pipeline_run import run_pipeline
from rsinfer.pipelines.vocabulary import BACKEND_CHOICES

MODELS = ("atomizer",)  # the encoders behind classify and embed
NO_WEIGHTS = ("the Atomizer has no published weights here: pass --weights CKPT --config CONFIG (a checkpoint and its "
              "training config) or --random-weights for a smoke run with a seeded untrained network")


def register(sub: argparse._SubParsersAction) -> None:
    add_parser(sub, "classify", "multi-label class probability maps of any optical scene (Atomizer)", __doc__)


def add_parser(sub: argparse._SubParsersAction, command: str, summary: str, doc: str) -> None:
    """The parser of `rsinfer classify` or `rsinfer embed` (they take the same flags)."""
    p = sub.add_parser(command, help=summary, description=doc.split("\n\n")[0])
    p.add_argument("--model", default="atomizer", choices=MODELS, help="the encoder (default %(default)s)")
    options.add_inputs(p, command)
    options.add_weights(p)
    p.add_argument("--config", metavar="CONFIG", help="the network's training config, JSON or YAML: an 'Atomiser' "
                                                      "section and the 'wavelengths_encoding' anchors")
    p.add_argument("--sensor", help="the scene's sensor (rsinfer.sensors name; default sentinel-2)")
    p.add_argument("--bands", type=_band_list, metavar="B1,B2,...",
                   help="the sensor's bands to encode, comma-separated (default: all of them; Sentinel-2: the 12 "
                        "BigEarthNet bands)")
    p.add_argument("--gsd-m", type=float, help="the grid's pixel size in metres (default: from the grid)")
    p.add_argument("--dn-scale", type=float, help="the DN of reflectance 1 (default: the sensor's)")
    p.add_argument("--reflectance-offset", type=float,
                   help="added to DN / dn-scale (e.g. -0.1 for Sentinel-2 L2A from processing baseline 04.00)")
    options.add_seed(p)
    p.add_argument("--backend", default="auto", choices=BACKEND_CHOICES, help="ops backend (default %(default)s)")
    options.add_tiling(p, command)
    options.add_output(p, dtype=False, preview=False)
    p.set_defaults(func=lambda args: run(args, command))


def _band_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected band names separated by commas (e.g. B2,B3,B4), got {text!r}")
    return names


def read_config(path: str) -> Any:
    """The parsed JSON or YAML file `path`."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--config {path}: no such file")
    text = file.read_text()
    if file.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ValueError(f"--config {path}: reading YAML needs PyYAML (pip install pyyaml); or give the config "
                             "as JSON") from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ValueError(f"--config {path}: not valid YAML ({' '.join(str(err).split())})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--config {path}: not valid JSON ({err})") from None


def run(args: argparse.Namespace, command: str) -> int:
    from rsinfer.pipelines.atomizer_scene import network_config

    weights = options.weights_of(args, NO_WEIGHTS)
    config = anchors = None
    if args.config is not None:
        config, anchors, ignored = network_config(read_config(args.config), args.config)
        if ignored:
            print(f"rsinfer {command}: note: --config {args.config}: ignoring {', '.join(ignored)} (not part of the "
                  "network)", file=sys.stderr)
    if not args.random_weights and anchors is None:
        raise ValueError("--weights needs --config CONFIG: a checkpoint holds neither the network's size nor its "
                         "wavelength anchors ('wavelengths_encoding')")
    return run_pipeline(args, command, weights, {
        "sensor": args.sensor, "bands": args.bands, "gsd_m": args.gsd_m, "dn_scale": args.dn_scale,
        "reflectance_offset": args.reflectance_offset, "config": config, "wavelengths_encoding": anchors,
        "backend": args.backend})
