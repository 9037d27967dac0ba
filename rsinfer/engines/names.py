"""The engine vocabulary (importable without torch, so command-line help stays fast).

- `EngineKind`: ``torch`` (eager), ``compile`` (export + inductor), ``onnxruntime``, ``tensorrt``;
- `Precision`: ``float32``, ``bfloat16``, ``float16`` (the torch dtype names);
- `MemoryFormat`: how the PyTorch engines lay out 4-D activations, NCHW (``contiguous``) or NHWC (``channels_last``,
  where oneDNN's convolutions run without reordering their input and output; see bench/RESULTS.md, DB-CR);
- `ThreadWait`: how ONNX Runtime's idle intra-op threads wait for the next operator, ``spin`` (its default: DB-CR runs
  ~3000 small operators per evaluation, and waking sleeping threads for each one made an evaluation 1.3x slower at 2
  threads) or ``sleep`` (for hosts shared with other CPU-heavy jobs).
"""

from typing import Literal, get_args

EngineKind = Literal["torch", "compile", "onnxruntime", "tensorrt"]
Precision = Literal["float32", "bfloat16", "float16"]
MemoryFormat = Literal["contiguous", "channels_last"]
ThreadWait = Literal["spin", "sleep"]

ENGINE_KINDS: tuple[str, ...] = get_args(EngineKind)
PRECISIONS: tuple[str, ...] = get_args(Precision)
MEMORY_FORMATS: tuple[str, ...] = get_args(MemoryFormat)
THREAD_WAITS: tuple[str, ...] = get_args(ThreadWait)
