"""Deprecated alias: `prepare(net, dtype, mode, backend)` is now `rsinfer.engines.prepare(net, precision, engine,
backend)`, served by the one execution layer (`rsinfer.engines`). Kept for rsinfer 0.1 callers; warns once.

The only module of `rsinfer.models` that imports `rsinfer.engines` (the import-rule test names this exception).
"""

from __future__ import annotations

from torch import nn

from rsinfer.ops import Backend

_MODES = {"eager": "torch", "compiled": "compile"}


def prepare(net: nn.Module, dtype: str = "float32", mode: str = "eager", backend: Backend = "auto"):
    """Deprecated: `rsinfer.engines.prepare(net, precision=dtype, engine="torch" for mode "eager", "compile" for
    "compiled", backend=backend)`."""
    from rsinfer.engines import prepare as engines_prepare
    from rsinfer.engines.base import warn_deprecated

    if mode not in _MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {tuple(_MODES)}")
    warn_deprecated("rsinfer.models.prepared.prepare(net, dtype, mode, backend)",
                    "rsinfer.engines.prepare(net, precision, engine, backend)")
    return engines_prepare(net, dtype, _MODES[mode], backend)
