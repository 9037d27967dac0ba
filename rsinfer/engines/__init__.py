"""Engines: the one execution layer through which every network runs (`create_engine` → `Engine`).

- ``torch``: eager PyTorch (the reference), float32 or bfloat16; NCHW by default, channels-last on request.
- ``compile``: non-strict ``torch.export`` then ``torch.compile`` (inductor, freezing), one graph per input signature,
  float32 or bfloat16; channels-last by default for U-Nets.
- ``onnxruntime``: the network exported to ONNX (dynamic batch/height/width, opset 17) on ONNX Runtime's CPU provider,
  float32.
- ``tensorrt``: a TensorRT engine built from that ONNX graph (float32/float16/bfloat16, a profile per tile size, timing
  cache), cached by ONNX hash, TensorRT version, GPU, precision and profile. Unverified on our machines: TensorRT cannot
  be installed here, the code follows TensorRT 10's documented API.

U-Nets are served with a `GraphSignature` (named tensors; all four engines); token networks called with lists (COP-GEN-
Beta) without one (the PyTorch engines). `prepare(net, precision, engine)` is the short form for the latter.

Library functions take an explicit `cache_dir`; only the CLI reads ``RSINFER_CACHE_DIR``. This package is the only
place that imports onnxruntime or tensorrt.
"""

from rsinfer.engines.names import (ENGINE_KINDS, MEMORY_FORMATS, PRECISIONS, THREAD_WAITS, EngineKind, MemoryFormat,
                                   Precision, ThreadWait)
from rsinfer.lazy_exports import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    **dict.fromkeys(("Engine", "EngineStatus", "EngineUnavailableError", "check_precision"), "rsinfer.engines.base"),
    **dict.fromkeys(("create_engine", "prepare", "engine_statuses"), "rsinfer.engines.factory"),
    **dict.fromkeys(("ArtifactCache", "EngineKey"), "rsinfer.engines.cache"),
    **dict.fromkeys(("export_onnx", "cached_onnx"), "rsinfer.engines.onnx_export"),
    **dict.fromkeys(("GraphSignature", "TensorSpec"), "rsinfer.engines.signature"),
    **dict.fromkeys(("TorchEngine", "CompiledEngine"), "rsinfer.engines.torch_engines"),
    "OnnxRuntimeEngine": "rsinfer.engines.onnxruntime_engine",
    "TensorRTEngine": "rsinfer.engines.tensorrt_engine",
})
__all__ = ["ENGINE_KINDS", "MEMORY_FORMATS", "PRECISIONS", "THREAD_WAITS", "EngineKind", "MemoryFormat", "Precision",
           "ThreadWait", *__dir__()]
