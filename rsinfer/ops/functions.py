"""The op functions: each dispatches to the implementation of the current backend (`rsinfer.ops.backends`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rsinfer.ops.backends import implementation


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """softmax(q kᵀ · scale) v; q (B, heads, N, D), k, v (B, heads, M, D); see `reference.attention`."""
    return implementation("attention", q.device)(q, k, v, scale)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, segments: Sequence[int] | None = None,
             eps: float = 1e-6) -> torch.Tensor:
    """adaLN LayerNorm(x)·(1+scale)+shift, per sample or per segment; see `reference.modulate`."""
    return implementation("modulate", x.device)(x, shift, scale, segments, eps)


def residual_modulate(x: torch.Tensor, y: torch.Tensor, gate: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
                      segments: Sequence[int] | None = None, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """x' = x + gate·y and modulate(x') in one pass; see `reference.residual_modulate`."""
    return implementation("residual_modulate", x.device)(x, y, gate, shift, scale, segments, eps)


def add_layernorm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                  eps: float = 1e-5) -> torch.Tensor:
    """Post-LN step LayerNorm(x + residual); see `reference.add_layernorm`."""
    return implementation("add_layernorm", x.device)(x, residual, weight, bias, eps)


def group_modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-sample normalisation over C·H·W, then per-channel x·(1+scale)+shift; see `reference.group_modulate`."""
    return implementation("group_modulate", x.device)(x, shift, scale, eps)


def accumulate(canvas: torch.Tensor, weight_canvas: torch.Tensor, tile: torch.Tensor, tile_weight: torch.Tensor,
               row: int, col: int) -> None:
    """In place: canvas[:, r:r+h, c:c+w] += tile·tile_weight, weight_canvas[...] += tile_weight."""
    implementation("accumulate", canvas.device)(canvas, weight_canvas, tile, tile_weight, row, col)
