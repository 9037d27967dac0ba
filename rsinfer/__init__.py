"""rsinfer: inference runtime for remote-sensing generative models.

Importing rsinfer loads nothing heavy and changes no global torch state; the subpackages load on first use:
`rsinfer.ops` (backend-dispatched kernels), `rsinfer.models` (networks in the official key layouts), `rsinfer.samplers`
(pure functions), `rsinfer.scene` (tiled GeoTIFF processing), `rsinfer.pipelines` (every model family behind one
contract), `rsinfer.engines` (the execution layer), `rsinfer.metrics`, `rsinfer.cli`.
"""

import importlib

__version__ = "0.1.0"
_SUBPACKAGES = ("ops", "models", "samplers", "scene", "pipelines", "engines", "metrics", "tiling", "io", "cli")


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"rsinfer.{name}")
    raise AttributeError(f"module 'rsinfer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_SUBPACKAGES])
