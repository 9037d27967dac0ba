"""The `Engine` interface every backend implements, and the availability report of each backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import torch

from rsinfer.engines.signature import GraphSignature

EngineKind = Literal["torch", "compile", "onnxruntime", "tensorrt"]
Precision = Literal["fp32", "bf16", "fp16"]
# How the PyTorch engines lay out 4-D activations: NCHW ("contiguous") or NHWC ("channels_last", where oneDNN's
# convolutions run without reordering their input and output; see bench/RESULTS.md, DB-CR).
MemoryFormat = Literal["contiguous", "channels_last"]


class EngineUnavailableError(RuntimeError):
    """An explicitly requested engine cannot run here (the message says why)."""


@dataclass(frozen=True)
class EngineStatus:
    name: str
    available: bool
    reason: str


class Engine(ABC):
    """A network behind one call: float32 tensors in (in `signature` order), the float32 output back.

    Inputs may have any batch size, height and width the backend supports; the output is on the first input's device.
    """

    kind: EngineKind
    precision: Precision
    signature: GraphSignature

    @abstractmethod
    def run(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The backend's computation; inputs are already checked against the signature."""

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        self.signature.check(inputs)
        return self.run(*inputs).to(device=inputs[0].device, dtype=torch.float32)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, precision={self.precision!r})"
