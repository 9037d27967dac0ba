"""The ``ext`` backend: the compiled extension `rsinfer._C` behind the reference signatures.

Importing `rsinfer._C` registers the C++ ops as torch custom ops ``torch.ops.rsinfer.*`` (CPU kernels vectorised with
ATen's Vectorized for the best SIMD level of the CPU, OpenMP-parallel through at::parallel_for, float32 accumulation
for float32, bfloat16 and float16 tensors). This module adds their fake (meta) implementations, so the ops trace under
`torch.compile`, and exposes the six op names of `rsinfer.ops.reference` with the same signatures and math.

`attention` is ATen's fused scaled-dot-product kernel (on CPU the flash kernel
``aten::_scaled_dot_product_flash_attention_for_cpu``: online softmax over key blocks in float32, no N×M score
matrix), the fastest correct CPU attention we have; the extension adds no attention of its own.

Importing this module raises ImportError when the extension is not built (the backend table reports that reason).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from rsinfer import _C  # registers torch.ops.rsinfer.*; ImportError when not built

__all__ = ["attention", "modulate", "residual_modulate", "add_layernorm", "group_modulate", "accumulate",
           "build_info"]


def build_info() -> dict[str, str]:
    """How the extension was built: compiler, OpenMP, threads, SIMD levels compiled and selected, CUDA objects."""
    return dict(_C.build_info())


# Fake implementations: shapes, dtypes and layouts of the outputs (contiguous, like the C++ kernels' outputs, except
# group_modulate, which keeps a channels-last input channels-last).
@torch.library.register_fake("rsinfer::modulate")
def _modulate_fake(x, shift, scale, segments=None, eps=1e-6):
    return x.new_empty(x.shape)


@torch.library.register_fake("rsinfer::residual_modulate")
def _residual_modulate_fake(x, y, gate, shift, scale, segments=None, eps=1e-6):
    return x.new_empty(x.shape), x.new_empty(x.shape)


@torch.library.register_fake("rsinfer::add_layernorm")
def _add_layernorm_fake(x, residual, weight, bias, eps=1e-5):
    return x.new_empty(x.shape)


@torch.library.register_fake("rsinfer::group_modulate")
def _group_modulate_fake(x, shift, scale, eps=1e-6):
    channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    return torch.empty_like(x, memory_format=torch.channels_last if channels_last else torch.contiguous_format)


@torch.library.register_fake("rsinfer::accumulate")
def _accumulate_fake(canvas, weight_canvas, tile, tile_weight, row, col):
    return None


def _segment_list(segments: Sequence[int] | None) -> list[int] | None:
    return None if segments is None else [int(s) for s in segments]


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """softmax(q kᵀ · scale) v through ATen's fused scaled-dot-product attention; see `reference.attention`."""
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, segments: Sequence[int] | None = None,
             eps: float = 1e-6) -> torch.Tensor:
    """adaLN LayerNorm(x)·(1+scale)+shift in one pass over x; see `reference.modulate`."""
    return torch.ops.rsinfer.modulate(x, shift, scale, _segment_list(segments), eps)


def residual_modulate(x: torch.Tensor, y: torch.Tensor, gate: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
                      segments: Sequence[int] | None = None, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """x' = x + gate·y and modulate(x') in one pass (y with x's shape and dtype); see `reference.residual_modulate`."""
    residual, out = torch.ops.rsinfer.residual_modulate(x, y, gate, shift, scale, _segment_list(segments), eps)
    return residual, out


def add_layernorm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                  eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm(x + residual)·weight + bias (residual with x's shape and dtype); see `reference.add_layernorm`."""
    return torch.ops.rsinfer.add_layernorm(x, residual, weight, bias, eps)


def group_modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-sample normalisation over C·H·W, then per-channel x̂·(1+scale)+shift; see `reference.group_modulate`."""
    return torch.ops.rsinfer.group_modulate(x, shift, scale, eps)


def accumulate(canvas: torch.Tensor, weight_canvas: torch.Tensor, tile: torch.Tensor, tile_weight: torch.Tensor,
               row: int, col: int) -> None:
    """In place, bounds-checked: canvas[:, r:r+h, c:c+w] += tile·tile_weight, weight_canvas[...] += tile_weight."""
    torch.ops.rsinfer.accumulate(canvas, weight_canvas, tile, tile_weight, row, col)
