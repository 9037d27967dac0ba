"""Building engines: `create_engine`, `prepare`, and the availability report (see the package docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from rsinfer.engines.base import Engine, EngineStatus, EngineUnavailableError, check_precision
from rsinfer.engines.cache import ArtifactCache
from rsinfer.engines.names import ENGINE_KINDS, EngineKind, MemoryFormat, Precision, ThreadWait
from rsinfer.engines.onnx_export import cached_onnx
from rsinfer.engines.onnxruntime_engine import OnnxRuntimeEngine, onnxruntime_status
from rsinfer.engines.signature import GraphSignature
from rsinfer.engines.tensorrt_engine import TensorRTEngine, tensorrt_status
from rsinfer.engines.torch_engines import CompiledEngine, TorchEngine, compile_status
from rsinfer.ops.names import Backend


def engine_statuses() -> list[EngineStatus]:
    """Every engine with "available / not available: reason" (for `rsinfer env`)."""
    return [EngineStatus("torch", True, f"eager PyTorch {torch.__version__} (float32, bfloat16)"), compile_status(),
            onnxruntime_status(), tensorrt_status()]


def create_engine(kind: EngineKind, net: nn.Module, signature: GraphSignature | None = None,
                  example_inputs: tuple[torch.Tensor, ...] | None = None, *, precision: Precision = "float32",
                  memory_format: MemoryFormat | None = None, backend: Backend = "auto",
                  cache_dir: str | Path | None = None, threads: int | None = None, thread_wait: ThreadWait = "spin",
                  tile_sizes: Sequence[tuple[int, int]] = ((256, 256),), max_batch: int = 4) -> Engine:
    """An engine of `kind` serving `net`.

    signature: the network's named tensor inputs and output (U-Nets); None for token networks (torch/compile only).
    example_inputs: one valid call, used to trace the ONNX export (any batch, height and width: the axes stay dynamic).
    precision: float32 | bfloat16 | float16 (which ones each engine runs: see the module docstring).
    memory_format: activation layout of the PyTorch engines (None: theirs — NCHW for ``torch``, channels-last for
        ``compile`` with a signature); the exported engines choose their own layouts, so they take only None.
    backend: the `rsinfer.ops` backend the PyTorch engines run (and the compile engine traces) the ops on.
    cache_dir: where exported ONNX graphs and TensorRT engines are kept (None: export afresh, tensorrt requires one).
    threads, thread_wait: ONNX Runtime intra-op threads (default: torch's thread count) and how they idle ("spin",
        ONNX Runtime's default and 1.2-1.3x faster at 2 threads; "sleep" for hosts shared with other CPU-heavy jobs).
    tile_sizes, max_batch: the TensorRT optimisation profiles.
    """
    if kind not in ENGINE_KINDS:
        raise ValueError(f"unknown engine {kind!r}; choose one of {ENGINE_KINDS}")
    precision = check_precision(precision)
    if kind == "torch":
        return TorchEngine(net, signature, precision, memory_format or "contiguous", backend)
    if kind == "compile":
        return CompiledEngine(net, signature, precision, memory_format, backend)
    if memory_format is not None:
        raise ValueError(f"memory_format applies to the torch and compile engines, not {kind!r} "
                         f"(got {memory_format!r}); leave it None")
    if signature is None or example_inputs is None:
        raise ValueError(f"the {kind} engine exports the network to ONNX: it needs a GraphSignature and example_inputs")
    status = onnxruntime_status() if kind == "onnxruntime" else tensorrt_status()
    if not status.available:
        raise EngineUnavailableError(f"engine {kind!r} is not available: {status.reason}")
    cache = ArtifactCache(cache_dir) if cache_dir is not None else None
    onnx_model = cached_onnx(net, signature, example_inputs, cache)
    if kind == "onnxruntime":
        return OnnxRuntimeEngine(onnx_model, signature, precision, threads, thread_wait)
    if cache is None:
        raise ValueError("the tensorrt engine needs a cache_dir for its engine and timing cache")
    return TensorRTEngine(onnx_model, signature, cache, precision, tile_sizes, max_batch)


def prepare(net: nn.Module, precision: Precision = "float32", engine: EngineKind = "torch",
            backend: Backend = "auto") -> Engine:
    """A token network (e.g. COP-GEN-Beta) ready for inference: called like `net`, outputs float32, no autograd.

    `engine`: ``torch`` (eager) or ``compile`` (one export + inductor graph per input signature; the first call
    compiles, minutes for the released COP-GEN-Beta on 2 cores). `net` itself is not modified.
    """
    if engine not in ("torch", "compile"):
        raise ValueError(f"prepare serves token networks on the 'torch' or 'compile' engine, got {engine!r}")
    return create_engine(engine, net, precision=precision, backend=backend)
