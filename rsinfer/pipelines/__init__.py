"""Model pipelines: networks + samplers + pre/post-processing, one module per model family.

Names are resolved on first use so importing `rsinfer.pipelines` loads no model code.
"""

from __future__ import annotations

import importlib

_PIPELINES = {
    "CopGenBeta": "rsinfer.pipelines.copgen",
    "DbCr": "rsinfer.pipelines.dbcr",
}
__all__ = sorted(_PIPELINES)


def __getattr__(name: str):
    if name in _PIPELINES:
        return getattr(importlib.import_module(_PIPELINES[name]), name)
    raise AttributeError(f"module 'rsinfer.pipelines' has no attribute {name!r}")
