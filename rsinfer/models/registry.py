"""Model zoo: registry name → builder, and strict, safe loading of official checkpoints.

Each model module exposes ``build(**overrides) -> nn.Module`` whose overrides are the official config names. A module
whose official checkpoints come in more than one form (a training wrapper's prefix, cached buffers, a Lightning
container) also exposes ``checkpoint_state_dict(state_dict, net) -> state_dict``, which maps every accepted form onto
the network's own keys (or raises naming what it cannot accept) before the strict load. Modules are imported on first
use so `import rsinfer.models` stays cheap.
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
    "crossdiff-unet": "rsinfer.models.crossdiff",
    "crossdiff-fusion": "rsinfer.models.crossdiff_fusion",
    "atomizer": "rsinfer.models.atomizer",
    "tirsit": "rsinfer.models.tirsit",
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
    state_dict = load_state_dict(path)
    normalise = getattr(importlib.import_module(_BUILDERS[name]), "checkpoint_state_dict", None)
    if normalise is not None:
        state_dict = normalise(state_dict, net)
    strict_load(net, state_dict, source=str(path))
    return net.eval()
