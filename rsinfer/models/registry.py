"""Model zoo: registry name → builder, and strict, safe loading of official checkpoints.

Each model module exposes ``build(**overrides) -> nn.Module`` whose overrides are the official config names.
Modules are imported on first use so `import rsinfer.models` stays cheap.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from torch import nn

from rsinfer.models.checkpoint import load_state_dict, strict_load

_BUILDERS: dict[str, str] = {
    "copgen-beta": "rsinfer.models.copgen",
    "seqdit": "rsinfer.models.seqdit",
    "sd-vae": "rsinfer.models.vae",
    "dbcr": "rsinfer.models.dbcr",
}
MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def build(name: str, **overrides) -> nn.Module:
    """A freshly initialised network `name`; `overrides` replace fields of its released config."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of {MODEL_NAMES}")
    return importlib.import_module(_BUILDERS[name]).build(**overrides)


def load(name: str, path: str | Path, **overrides) -> nn.Module:
    """Build `name` and load the checkpoint at `path` strictly (safetensors or a weights-only torch pickle)."""
    net = build(name, **overrides)
    strict_load(net, load_state_dict(path), source=str(path))
    return net.eval()
