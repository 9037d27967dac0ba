"""Engines that run the PyTorch module itself: eager (``torch``) and ``compile`` (export + TorchInductor).

Both serve U-Nets (a `GraphSignature` of named tensors) and token networks (no signature: called with whatever the
network takes, e.g. COP-GEN-Beta's lists of images and timesteps), in ``float32`` or ``bfloat16``:

- **Precision.** bfloat16 converts a copy of the weights (the caller's network is never modified; float32 with the
  network's own layout needs no copy). Signature inputs are converted to the engine's dtype; signature-less networks
  get their inputs as given and cast them themselves (COP-GEN-Beta and SeqDiT embed the timesteps in float32 before
  casting), so their inputs and outputs stay in the caller's dtype. Normalisation statistics stay float32 inside
  `rsinfer.ops`. bf16 convolutions and GEMMs are fast only on CPUs with native bf16 (avx512_bf16 / AMX) and emulated,
  several times slower than float32, elsewhere (bench/RESULTS.md).
- **Memory format.** ``contiguous`` (NCHW) runs the network exactly as written: the ``torch`` engine's default, the
  reference. ``channels_last`` (NHWC) converts the weights and 4-D signature inputs, so oneDNN convolutions read and
  write their native layout and `rsinfer.ops.group_modulate` (ext) keeps it, with no layout copies in between: the
  ``compile`` engine's default for U-Nets, where inductor also fuses the elementwise work around the convolutions.
  Outputs are returned contiguous.
- **Ops backend.** Every call runs under `rsinfer.ops.use_backend(backend)`, whatever the caller selected; a compiled
  graph is traced under it.
"""

from __future__ import annotations

import copy
import shutil
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_map

from rsinfer.engines.base import DTYPES, Engine, EngineStatus, EngineUnavailableError, MemoryFormat, Precision
from rsinfer.engines.signature import GraphSignature
from rsinfer.ops import Backend, use_backend

TORCH_PRECISIONS: tuple[str, ...] = ("float32", "bfloat16")
_MEMORY_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def _converted_network(net: nn.Module, dtype: torch.dtype, memory_format: MemoryFormat) -> nn.Module:
    """`net` in eval mode without gradients, in `dtype` and `memory_format`: a copy when anything changes."""
    params = list(net.parameters())
    unchanged = memory_format == "contiguous" and all(p.dtype == dtype for p in params)
    target = net if unchanged else copy.deepcopy(net)
    return target.eval().requires_grad_(False).to(dtype, memory_format=_MEMORY_FORMATS[memory_format])


class TorchEngine(Engine):
    """Eager PyTorch: with float32 and the default NCHW layout, the reference every other engine is compared against."""

    kind = "torch"

    def __init__(self, net: nn.Module, signature: GraphSignature | None = None, precision: Precision = "float32",
                 memory_format: MemoryFormat = "contiguous", backend: Backend = "auto") -> None:
        if precision not in TORCH_PRECISIONS:
            raise ValueError(f"the {self.kind} engine supports precisions {TORCH_PRECISIONS}, got {precision!r}")
        if memory_format not in _MEMORY_FORMATS:
            raise ValueError(f"the {self.kind} engine supports memory formats {tuple(_MEMORY_FORMATS)}, "
                             f"got {memory_format!r}")
        with use_backend(backend):  # an unavailable explicit backend fails here, not at the first call
            pass
        self.precision, self.signature, self.memory_format, self.backend = precision, signature, memory_format, backend
        self.dtype = DTYPES[precision]
        self.net = _converted_network(net, self.dtype, memory_format)

    def _converted(self, inputs: tuple[Any, ...]) -> tuple[Any, ...]:
        """Signature inputs: floating ones in the engine's dtype, 4-D ones in its memory format. Others: as given."""
        if self.signature is None:
            return inputs
        layout = _MEMORY_FORMATS[self.memory_format]
        return tuple(x.to(self.dtype, memory_format=layout if x.dim() == 4 else torch.preserve_format)
                     if x.is_floating_point() else x for x in inputs)

    def run(self, *inputs: Any) -> Any:
        with torch.inference_mode(), use_backend(self.backend):
            return _contiguous(self.net(*self._converted(inputs)))


def _contiguous(outputs: Any) -> Any:
    return tree_map(lambda x: x.contiguous() if isinstance(x, torch.Tensor) else x, outputs)


def compile_status() -> EngineStatus:
    compiler = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    if compiler is None:
        return EngineStatus("compile", False, "TorchInductor needs a C++ compiler (g++/clang++) on PATH for CPU code")
    return EngineStatus("compile", True, f"torch.compile (inductor, C++ compiler {compiler}); first call compiles "
                                         "(tens of seconds), again for each new input shape")


class CompiledEngine(TorchEngine):
    """Non-strict ``torch.export`` of the network, then ``torch.compile`` (inductor, with freezing: weights folded as
    constants, oneDNN/MKL-prepacked convolutions and GEMMs, fused epilogues).

    Export first: it runs the Python code normally, so every `rsinfer.ops` call resolves to the selected backend at
    capture time (Dynamo would break the graph at each op's ContextVar dispatch). One capture and compilation per input
    signature without the batch axis (shapes and dtypes of every tensor in the call), kept for reuse: a call with a
    smaller batch than a graph was compiled for runs on that graph with zero-padded samples (the networks served here
    treat samples independently), so a scene's last, partial batch does not pay a second compilation. Weights are
    frozen into the graph at its first call: load weights before creating the engine.
    """

    kind = "compile"

    def __init__(self, net: nn.Module, signature: GraphSignature | None = None, precision: Precision = "float32",
                 memory_format: MemoryFormat | None = None, backend: Backend = "auto") -> None:
        if memory_format is None:  # U-Nets: NHWC convolutions; token networks: as written
            memory_format = "channels_last" if signature is not None else "contiguous"
        status = compile_status()
        if not status.available:
            raise EngineUnavailableError(f"engine 'compile' is not available: {status.reason}")
        super().__init__(net, signature, precision, memory_format, backend)
        self._compiled: dict[tuple, tuple[int, nn.Module]] = {}  # per-sample signature → (batch, compiled graph)

    def run(self, *inputs: Any) -> Any:
        import torch._inductor.config as inductor_config  # scoped: changes nothing outside this call

        leaves, _ = tree_flatten(inputs)
        tensors = [x for x in leaves if isinstance(x, torch.Tensor)]
        batch = tensors[0].shape[0]
        key = tuple((tuple(x.shape[1:]), x.dtype) for x in tensors)
        compiled_batch, graph = self._compiled.get(key, (0, None))
        if batch < compiled_batch:  # zero samples appended up to the compiled batch, dropped from the output
            inputs = tree_map(lambda x: torch.cat([x, x.new_zeros((compiled_batch - batch, *x.shape[1:]))])
                              if isinstance(x, torch.Tensor) else x, inputs)
        inputs = self._converted(inputs)
        with torch.no_grad(), use_backend(self.backend), inductor_config.patch(freezing=True):
            if graph is None or batch > compiled_batch:
                captured = torch.export.export(self.net, inputs, strict=False).module()
                graph = torch.compile(captured, dynamic=False)
                self._compiled[key] = (batch, graph)
            outputs = graph(*inputs)
        return tree_map(lambda x: x[:batch].contiguous() if isinstance(x, torch.Tensor) else x, outputs)
