"""Inference-ready token networks: precision, execution mode and ops backend as explicit choices.

Public API (used by the COP-GEN pipeline; also works for `seqdit`):

    fast = prepare(net, dtype="float32", mode="compiled", backend="auto")
    eps = fast(imgs, t_imgs)          # same call and result semantics as `net`, always without autograd

- ``dtype``: ``"float32"`` (default; equals the official math within 1e-5 with ``backend="reference"``) or
  ``"bfloat16"`` (weights and activations in bfloat16, GEMMs accumulate in float32, attention and LayerNorm statistics
  in float32 inside the ops; inputs and outputs stay in the caller's dtype). bfloat16 is fast only on CPUs with native
  bf16 arithmetic (avx512_bf16 / AMX); on AVX2-only CPUs it is emulated and several times *slower* than float32 —
  see bench/RESULTS.md (COP-GEN-Beta section) for the numbers.
- ``mode``: ``"eager"`` runs the module as written; ``"compiled"`` captures it once per input shape with
  ``torch.export`` (non-strict) and compiles that one graph with inductor and weight freezing (constant-folded,
  prepacked MKL/oneDNN weights, fused epilogues). The first call compiles (minutes for the released COP-GEN-Beta on
  2 cores); a new input shape compiles again. Weights are frozen into the graph at that first call: load weights
  *before* preparing.
- ``backend``: the `rsinfer.ops` backend every op runs on (``"auto"`` picks the fastest available); eager calls enter
  it every time and compiled graphs are traced under it, whatever backend the caller has selected.

`prepare` takes ownership of `net`: it is put in eval mode and, for ``"bfloat16"``, converted in place. Importing this
module changes no global torch state; inductor options are scoped to the calls that compile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, get_args

import torch
from torch import nn

from rsinfer.ops import Backend, use_backend

Precision = Literal["float32", "bfloat16"]
Execution = Literal["eager", "compiled"]

_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class PreparedNetwork(nn.Module):
    """`net` in a fixed precision, execution mode and ops backend; call it like `net`."""

    def __init__(self, net: nn.Module, dtype: Precision, mode: Execution, backend: Backend):
        super().__init__()
        self.net = net
        self.dtype, self.mode, self.backend = dtype, mode, backend
        self._compiled: dict[tuple, Callable] = {}  # input shapes → compiled graph

    def forward(self, imgs: Sequence[torch.Tensor], t_imgs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        imgs, t_imgs = list(imgs), list(t_imgs)
        with torch.no_grad(), use_backend(self.backend):
            if self.mode == "eager":
                return self.net(imgs, t_imgs)
            import torch._inductor.config as inductor_config  # scoped: changes nothing outside this call

            with inductor_config.patch(freezing=True):
                return self._graph_for(imgs, t_imgs)(imgs, t_imgs)

    def _graph_for(self, imgs: list[torch.Tensor], t_imgs: list[torch.Tensor]) -> Callable:
        """The compiled graph for these input shapes, traced on first use.

        The network is first captured by `torch.export` in non-strict mode, which runs the Python code as is and so
        resolves every `rsinfer.ops` call to the implementation of the selected backend (the dispatch reads a
        ContextVar, which `torch.compile` cannot trace and would split the graph at every op); inductor then compiles
        the one resulting graph.
        """
        key = tuple((tuple(x.shape), x.dtype) for x in (*imgs, *t_imgs))
        if key not in self._compiled:
            exported = torch.export.export(self.net, (imgs, t_imgs), strict=False)
            self._compiled[key] = torch.compile(exported.module(), dynamic=False)
        return self._compiled[key]


def prepare(net: nn.Module, dtype: Precision = "float32", mode: Execution = "eager",
            backend: Backend = "auto") -> PreparedNetwork:
    """`net` ready for inference in `dtype` and `mode` on ops `backend`; see the module docstring."""
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {get_args(Precision)}")
    if mode not in get_args(Execution):
        raise ValueError(f"unknown mode {mode!r}; choose one of {get_args(Execution)}")
    if backend not in get_args(Backend):
        raise ValueError(f"unknown backend {backend!r}; choose one of {get_args(Backend)}")
    net = net.eval().requires_grad_(False).to(_DTYPES[dtype])
    return PreparedNetwork(net, dtype, mode, backend)
