"""Demo weights: small networks trained in this repository on the bundled data (weights/README.md), named
``demo:NAME`` in a `PipelineSpec` or ``--weights demo`` on the command line (each pipeline names its default).

The files ship inside the package as `rsinfer/weights/` (a wheel) and live in the checkout's top-level `weights/`
folder; each carries its model card in its safetensors metadata, whose ``preset`` key names the network preset.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import rsinfer


def demo_directories() -> tuple[Path, ...]:
    """Where demo weights are looked for: the installed package's `weights/`, then the checkout's."""
    package = Path(rsinfer.__file__).resolve().parent
    return tuple(d for d in (package / "weights", package.parent / "weights") if d.is_dir())


def demo_names() -> tuple[str, ...]:
    return tuple(sorted({p.stem for d in demo_directories() for p in d.glob("*.safetensors")}))


def demo_path(name: str) -> Path:
    """The file of demo weights `name`; an unknown name lists the known ones."""
    for directory in demo_directories():
        path = directory / f"{name}.safetensors"
        if path.is_file():
            return path
    raise ValueError(f"no demo weights named {name!r}; available: {list(demo_names()) or 'none (not installed)'}")


def model_card(path: str | os.PathLike) -> dict[str, str]:
    """The model card of a safetensors file: its metadata (empty without one), read from the header alone."""
    with open(path, "rb") as handle:
        header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
    return dict(header.get("__metadata__", {}))


def demo_card(name: str) -> dict[str, str]:
    """The model card of demo weights `name`."""
    return model_card(demo_path(name))
