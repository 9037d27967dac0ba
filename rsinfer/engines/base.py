"""The `Engine` interface every backend implements and the availability report of each backend.

The vocabulary (`EngineKind`, `Precision`, `MemoryFormat`) is `rsinfer.engines.names`; the short precision spellings
``fp32``/``bf16``/``fp16`` of rsinfer 0.1 are accepted by `check_precision` with a one-time deprecation warning.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._pytree import tree_map

from rsinfer.engines.names import ENGINE_KINDS, PRECISIONS, EngineKind, MemoryFormat, Precision
from rsinfer.engines.signature import GraphSignature

__all__ = ["ENGINE_KINDS", "PRECISIONS", "EngineKind", "MemoryFormat", "Precision", "Engine", "EngineStatus",
           "EngineUnavailableError", "check_precision", "warn_deprecated", "to_float32", "DTYPES"]
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_DEPRECATED_PRECISIONS = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
_warned: set[str] = set()


def warn_deprecated(old: str, new: str) -> None:
    """One DeprecationWarning per process for each renamed name."""
    if old not in _warned:
        _warned.add(old)
        warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=3)


def check_precision(precision: str) -> Precision:
    """The canonical precision name; the 0.1 spellings are accepted with a deprecation warning."""
    if precision in _DEPRECATED_PRECISIONS:
        warn_deprecated(f"precision {precision!r}", repr(_DEPRECATED_PRECISIONS[precision]))
        precision = _DEPRECATED_PRECISIONS[precision]
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    return precision  # type: ignore[return-value]


class EngineUnavailableError(RuntimeError):
    """An explicitly requested engine cannot run here (the message says why)."""


@dataclass(frozen=True)
class EngineStatus:
    name: str
    available: bool
    reason: str


def to_float32(outputs: Any, device: torch.device) -> Any:
    """Every floating tensor in `outputs` (a tensor, or a list/tuple/dict of them) as float32 on `device`."""
    return tree_map(lambda x: x.to(device=device, dtype=torch.float32)
                    if isinstance(x, torch.Tensor) and x.is_floating_point() else x, outputs)


class Engine(ABC):
    """A network behind one call: the network's own inputs in, its outputs back as float32.

    With a `GraphSignature` (U-Nets: named tensors with dynamic batch/height/width) the inputs are checked against it
    and every backend can serve the network. Without one (token networks called with lists, such as COP-GEN-Beta's
    `net(imgs, t_imgs)`), only the PyTorch engines can, and the inputs reach the network as given. Outputs are on the
    first input tensor's device.
    """

    kind: EngineKind
    precision: Precision
    signature: GraphSignature | None

    @abstractmethod
    def run(self, *inputs: Any) -> Any:
        """The backend's computation; inputs are already checked against the signature."""

    def __call__(self, *inputs: Any) -> Any:
        if self.signature is not None:
            self.signature.check(inputs)
        first = next(x for x in torch.utils._pytree.tree_leaves(inputs) if isinstance(x, torch.Tensor))
        return to_float32(self.run(*inputs), first.device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, precision={self.precision!r})"
