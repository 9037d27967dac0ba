"""TensorRT: build an engine from the exported ONNX graph, cache it, run it on CUDA tensors.

UNVERIFIED ON OUR MACHINES. TensorRT cannot be installed on the development or CI machines (its libraries download
from a host we cannot reach and there is no GPU), so this module has never been executed. It is written against
TensorRT 10's documented Python API:
- build: `trt.Builder` → `create_network(0)` (explicit batch is the only mode in TensorRT 10) → `trt.OnnxParser.parse`
  → `BuilderConfig` (workspace pool limit, FP16/BF16 builder flags, one optimisation profile per tile size, a timing
  cache) → `build_serialized_network`;
- run: `trt.Runtime.deserialize_cuda_engine` → `create_execution_context` → per call `set_optimization_profile_async`,
  `set_input_shape`, `set_tensor_address` for every I/O tensor, `execute_async_v3` on the current torch CUDA stream.
Engines are cached by `EngineKey` (ONNX hash, TensorRT version, GPU name, precision, profile) in an `ArtifactCache`:
built once across processes and verified against their sidecar hash before they are deserialised.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from rsinfer.engines.base import PRECISIONS, Engine, EngineStatus, EngineUnavailableError, Precision
from rsinfer.engines.cache import ArtifactCache, EngineKey, sha256_bytes
from rsinfer.engines.signature import GraphSignature

UNVERIFIED = "written to TensorRT 10's documented Python API, unverified on our machines (never run here)"
WORKSPACE_BYTES = 4 << 30
MIN_SIDE = 8

_log = logging.getLogger("rsinfer.engines")


def tensorrt_status() -> EngineStatus:
    try:
        import tensorrt
    except ImportError as err:
        return EngineStatus("tensorrt", False, f"tensorrt is not installed ({err}); {UNVERIFIED}")
    if not torch.cuda.is_available():
        return EngineStatus("tensorrt", False, f"tensorrt {tensorrt.__version__} imports but there is no CUDA device; "
                                               f"{UNVERIFIED}")
    return EngineStatus("tensorrt", True, f"tensorrt {tensorrt.__version__} on {torch.cuda.get_device_name()}; "
                                          f"{UNVERIFIED}")


def profile_shapes(signature: GraphSignature, tile_sizes: Sequence[tuple[int, int]], max_batch: int
                   ) -> tuple[tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...]:
    """(input, min, opt, max) for one profile per tile size: batch 1..max_batch, sides MIN_SIDE..tile (opt = full)."""
    if not tile_sizes or max_batch < 1:
        raise ValueError(f"TensorRT profiles need at least one tile size and max_batch ≥ 1, got {tile_sizes}, "
                         f"{max_batch}")
    rows = []
    for height, width in tile_sizes:
        low = {"batch": 1, "height": min(MIN_SIDE, height), "width": min(MIN_SIDE, width)}
        high = {"batch": max_batch, "height": height, "width": width}
        rows.extend((spec.name, spec.shape(low), spec.shape(high), spec.shape(high)) for spec in signature.inputs)
    return tuple(rows)


def _build_plan(trt, onnx_model: bytes, precision: Precision, profiles, n_profiles: int, n_inputs: int,
                cache: ArtifactCache, timing_name: str) -> bytes:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_model):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse the ONNX graph: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if precision == "float16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "bfloat16":
        config.set_flag(trt.BuilderFlag.BF16)
    for p in range(n_profiles):
        profile = builder.create_optimization_profile()
        for name, low, opt, high in profiles[p * n_inputs:(p + 1) * n_inputs]:
            profile.set_shape(name, low, opt, high)
        config.add_optimization_profile(profile)
    timing_cache = config.create_timing_cache(cache.read_verified(timing_name) or b"")
    config.set_timing_cache(timing_cache, ignore_mismatch=False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError("TensorRT failed to build the engine (see the TensorRT log above)")
    cache.put(timing_name, bytes(config.get_timing_cache().serialize()))
    return bytes(plan)


class TensorRTEngine(Engine):
    """A cached TensorRT engine for CUDA; `tile_sizes`: the (height, width) the caller runs (one profile each)."""

    kind = "tensorrt"

    def __init__(self, onnx_model: bytes, signature: GraphSignature, cache: ArtifactCache,
                 precision: Precision = "float16", tile_sizes: Sequence[tuple[int, int]] = ((256, 256),),
                 max_batch: int = 4) -> None:
        status = tensorrt_status()
        if not status.available:
            raise EngineUnavailableError(f"engine 'tensorrt' is not available: {status.reason}")
        if precision not in PRECISIONS:
            raise ValueError(f"the tensorrt engine supports precisions {PRECISIONS}, got {precision!r}")
        import tensorrt as trt

        self.precision, self.signature = precision, signature
        self.tile_sizes, self.max_batch = tuple(tile_sizes), max_batch
        profiles = profile_shapes(signature, self.tile_sizes, max_batch)
        self.key = EngineKey(sha256_bytes(onnx_model), trt.__version__, torch.cuda.get_device_name(), precision,
                             profiles)
        timing_name = f"timing-{sha256_bytes((trt.__version__ + self.key.gpu_name).encode())[:16]}.cache"
        plan = cache.get_or_build(f"{self.key.digest()}.engine", lambda: _build_plan(
            trt, onnx_model, precision, profiles, len(self.tile_sizes), len(signature.inputs), cache, timing_name))
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(plan)
        if self._engine is None:
            raise RuntimeError("TensorRT could not deserialize the cached engine (version or GPU mismatch)")
        self._context = self._engine.create_execution_context()

    def _profile_index(self, batch: int, height: int, width: int) -> int:
        for index, (tile_h, tile_w) in enumerate(self.tile_sizes):
            if batch <= self.max_batch and min(MIN_SIDE, tile_h) <= height <= tile_h and \
                    min(MIN_SIDE, tile_w) <= width <= tile_w:
                return index
        raise ValueError(f"input batch {batch}, {height}x{width} fits no TensorRT profile (tiles {self.tile_sizes}, "
                         f"batch ≤ {self.max_batch}); rebuild the engine with this tile size")

    def run(self, *inputs: torch.Tensor) -> torch.Tensor:
        first = inputs[0]
        batch, height, width = first.shape[0], first.shape[-2], first.shape[-1]
        stream = torch.cuda.current_stream()
        self._context.set_optimization_profile_async(self._profile_index(batch, height, width), stream.cuda_stream)
        tensors = [x.to("cuda", torch.float32).contiguous() for x in inputs]
        for spec, tensor in zip(self.signature.inputs, tensors):
            self._context.set_input_shape(spec.name, tuple(tensor.shape))
            self._context.set_tensor_address(spec.name, tensor.data_ptr())
        out = torch.empty(tuple(self._context.get_tensor_shape(self.signature.output.name)), device="cuda",
                          dtype=torch.float32)
        self._context.set_tensor_address(self.signature.output.name, out.data_ptr())
        if not self._context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        stream.synchronize()
        return out
