"""Engines that run the PyTorch module itself: eager (``torch``) and ``compile`` (TorchInductor).

Both accept fp32 and bf16. bf16 converts a copy of the weights to bfloat16 and feeds bfloat16 activations (normalisation
statistics stay float32 inside `rsinfer.ops`); convolutions then run oneDNN's bf16 kernels, which are fast only on
CPUs with native bf16 (avx512_bf16 / AMX) and emulated elsewhere.

Both also take a memory format. ``contiguous`` (NCHW) runs the network exactly as written: the ``torch`` engine's
default, the reference. ``channels_last`` (NHWC) converts the weights and 4-D inputs, so oneDNN convolutions read and
write their native layout and `rsinfer.ops.group_modulate` (ext) keeps it, with no layout copies in between: the
``compile`` engine's default, where inductor also fuses the elementwise work around the convolutions. Outputs are
returned contiguous.
"""

from __future__ import annotations

import copy
import shutil

import torch
from torch import nn

from rsinfer.engines.base import Engine, EngineStatus, EngineUnavailableError, MemoryFormat, Precision
from rsinfer.engines.signature import GraphSignature

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
_MEMORY_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def _prepared(net: nn.Module, precision: Precision, memory_format: MemoryFormat, kind: str) -> nn.Module:
    if precision not in _DTYPES:
        raise ValueError(f"the {kind} engine supports precisions {tuple(_DTYPES)}, got {precision!r}")
    if memory_format not in _MEMORY_FORMATS:
        raise ValueError(f"the {kind} engine supports memory formats {tuple(_MEMORY_FORMATS)}, got {memory_format!r}")
    return copy.deepcopy(net).eval().to(_DTYPES[precision], memory_format=_MEMORY_FORMATS[memory_format])


class TorchEngine(Engine):
    """Eager PyTorch: with the default NCHW layout, the reference every other engine is compared against."""

    kind = "torch"

    def __init__(self, net: nn.Module, signature: GraphSignature, precision: Precision = "fp32",
                 memory_format: MemoryFormat = "contiguous") -> None:
        self.precision, self.signature, self.memory_format = precision, signature, memory_format
        self.net = _prepared(net, precision, memory_format, self.kind)
        self.dtype = _DTYPES[precision]

    def _converted(self, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """Floating inputs in the engine's dtype, 4-D ones in its memory format."""
        layout = _MEMORY_FORMATS[self.memory_format]
        return tuple(x.to(self.dtype, memory_format=layout if x.dim() == 4 else torch.preserve_format)
                     if x.is_floating_point() else x for x in inputs)

    def run(self, *inputs: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.net(*self._converted(inputs)).contiguous()


def compile_status() -> EngineStatus:
    compiler = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    if compiler is None:
        return EngineStatus("compile", False, "TorchInductor needs a C++ compiler (g++/clang++) on PATH for CPU code")
    return EngineStatus("compile", True, f"torch.compile (inductor, C++ compiler {compiler}); first call compiles "
                                         "(tens of seconds), again for each new input shape")


class CompiledEngine(TorchEngine):
    """``torch.compile`` (inductor, with freezing: weights folded as constants, oneDNN-prepacked convolutions).

    The network is first captured with non-strict ``torch.export`` (which runs Python normally, so the `rsinfer.ops`
    backend dispatch resolves at capture time instead of breaking Dynamo's graph at every op), then the captured graph
    is compiled. One capture and compilation per input shape without the batch axis, kept for reuse: a call with a
    smaller batch than the graph was compiled for runs on that graph with zero-padded samples (the networks served
    here treat samples independently), so a scene's last, partial batch does not pay a second compilation.
    """

    kind = "compile"

    def __init__(self, net: nn.Module, signature: GraphSignature, precision: Precision = "fp32",
                 memory_format: MemoryFormat = "channels_last") -> None:
        super().__init__(net, signature, precision, memory_format)
        status = compile_status()
        if not status.available:
            raise EngineUnavailableError(f"engine 'compile' is not available: {status.reason}")
        self._compiled: dict[tuple, tuple[int, nn.Module]] = {}  # per-sample shapes → (batch, compiled graph)

    def run(self, *inputs: torch.Tensor) -> torch.Tensor:
        import torch._inductor.config as inductor_config

        batch = inputs[0].shape[0]
        key = tuple((tuple(x.shape[1:]), self.dtype if x.is_floating_point() else x.dtype) for x in inputs)
        compiled_batch, graph = self._compiled.get(key, (0, None))
        if batch < compiled_batch:  # zero samples appended up to the compiled batch, dropped from the output
            inputs = tuple(torch.cat([x, x.new_zeros((compiled_batch - batch, *x.shape[1:]))]) for x in inputs)
        inputs = self._converted(inputs)
        with torch.no_grad(), inductor_config.patch(freezing=True):
            if graph is None or batch > compiled_batch:
                captured = torch.export.export(self.net, inputs, strict=False).module()
                graph = torch.compile(captured, dynamic=False)
                self._compiled[key] = (batch, graph)
            return graph(*inputs)[:batch].contiguous()
