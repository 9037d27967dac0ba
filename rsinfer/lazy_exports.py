"""Package attributes imported on first use (PEP 562), so that importing a package — and the command line's start-up —
does not load torch, GDAL or ONNX Runtime before they are needed.

    __getattr__, __dir__ = lazy_exports(__name__, {"Engine": "rsinfer.engines.base", ...})
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(package: str, table: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`: `table` maps each public name to the module that defines it."""

    def __getattr__(name: str) -> object:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(table[name]), name)
        setattr(sys.modules[package], name, value)  # later lookups are plain attribute reads
        return value

    def __dir__() -> list[str]:
        return sorted(table)

    return __getattr__, __dir__
