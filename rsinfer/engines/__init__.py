"""Engines: one interface (`Engine`) over the ways rsinfer can run a network.

- ``torch``: eager PyTorch (the reference), fp32 or bf16; NCHW by default, channels-last on request.
- ``compile``: ``torch.compile`` (TorchInductor, freezing), fp32 or bf16; channels-last by default.
- ``onnxruntime``: the network exported to ONNX (dynamic batch/height/width, opset 17) on ONNX Runtime's CPU provider.
- ``tensorrt``: a TensorRT engine built from that ONNX graph (fp32/fp16/bf16, a profile per tile size, timing cache),
  cached by ONNX hash, TensorRT version, GPU, precision and profile. Unverified on our machines: TensorRT cannot be
  installed here, the code follows TensorRT 10's documented API.

Library functions take an explicit `cache_dir`; only the CLI reads ``RSINFER_CACHE_DIR``. This package and the CLI are
the only places that import onnxruntime or tensorrt.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import get_args

import torch
from torch import nn

from rsinfer.engines.base import Engine, EngineKind, EngineStatus, EngineUnavailableError, MemoryFormat, Precision
from rsinfer.engines.cache import ArtifactCache, EngineKey
from rsinfer.engines.onnx_export import cached_onnx, export_onnx
from rsinfer.engines.onnxruntime_engine import OnnxRuntimeEngine, onnxruntime_status
from rsinfer.engines.signature import GraphSignature, TensorSpec
from rsinfer.engines.tensorrt_engine import TensorRTEngine, tensorrt_status
from rsinfer.engines.torch_engines import CompiledEngine, TorchEngine, compile_status

__all__ = [
    "ArtifactCache", "CompiledEngine", "Engine", "EngineKey", "EngineKind", "EngineStatus", "EngineUnavailableError",
    "ENGINE_KINDS", "GraphSignature", "MemoryFormat", "OnnxRuntimeEngine", "Precision", "TensorRTEngine", "TensorSpec",
    "TorchEngine", "create_engine", "engine_statuses", "export_onnx",
]
ENGINE_KINDS: tuple[str, ...] = get_args(EngineKind)


def engine_statuses() -> list[EngineStatus]:
    """Every engine with "available / not available: reason" (for `rsinfer env`)."""
    return [EngineStatus("torch", True, f"eager PyTorch {torch.__version__} (fp32, bf16)"), compile_status(),
            onnxruntime_status(), tensorrt_status()]


def create_engine(kind: EngineKind, net: nn.Module, signature: GraphSignature, example_inputs: tuple[torch.Tensor, ...],
                  *, precision: Precision = "fp32", memory_format: MemoryFormat | None = None,
                  cache_dir: str | Path | None = None, threads: int | None = None,
                  tile_sizes: Sequence[tuple[int, int]] = ((256, 256),), max_batch: int = 4) -> Engine:
    """An engine of `kind` serving `net`.

    example_inputs: one valid call, used to trace the ONNX export (any batch, height and width: the axes stay dynamic).
    memory_format: activation layout of the PyTorch engines (None: theirs — NCHW for ``torch``, channels-last for
        ``compile``); the exported engines choose their own layouts, so they take only None.
    cache_dir: where exported ONNX graphs and TensorRT engines are kept (None: export afresh, tensorrt requires one).
    threads: ONNX Runtime intra-op threads (default: torch's thread count).
    tile_sizes, max_batch: the TensorRT optimisation profiles.
    """
    if kind not in ENGINE_KINDS:
        raise ValueError(f"unknown engine {kind!r}; choose one of {ENGINE_KINDS}")
    layout = {} if memory_format is None else {"memory_format": memory_format}
    if kind == "torch":
        return TorchEngine(net, signature, precision, **layout)
    if kind == "compile":
        return CompiledEngine(net, signature, precision, **layout)
    if memory_format is not None:
        raise ValueError(f"memory_format applies to the torch and compile engines, not {kind!r} "
                         f"(got {memory_format!r}); leave it None")
    status = onnxruntime_status() if kind == "onnxruntime" else tensorrt_status()
    if not status.available:
        raise EngineUnavailableError(f"engine {kind!r} is not available: {status.reason}")
    cache = ArtifactCache(cache_dir) if cache_dir is not None else None
    onnx_model = cached_onnx(net, signature, example_inputs, cache)
    if kind == "onnxruntime":
        return OnnxRuntimeEngine(onnx_model, signature, precision, threads)
    if cache is None:
        raise ValueError("the tensorrt engine needs a cache_dir for its engine and timing cache")
    return TensorRTEngine(onnx_model, signature, cache, precision, tile_sizes, max_batch)
