"""Reference implementations of every rsinfer op: the specification.

Pure PyTorch, computed in float32 whatever the input dtype, results cast back to the input dtype. Every other backend
(`rsinfer.kernels` under Triton, `rsinfer._C` in C++) must equal these functions within the tolerances of GUIDE §3.
Each docstring states the math exactly; tensors are never modified except where an op says "in place".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["attention", "modulate", "residual_modulate", "add_layernorm", "group_modulate", "accumulate"]


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """softmax(q kᵀ · scale) v over the key axis.

    q: (B, heads, N, D), k, v: (B, heads, M, D), D ≤ 128; scale defaults to 1/√D. Returns (B, heads, N, D).
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    scores = torch.einsum("bhnd,bhmd->bhnm", q.float(), k.float()) * scale  # (B, heads, N, M)
    probs = scores.softmax(dim=-1)
    return torch.einsum("bhnm,bhmd->bhnd", probs, v.float()).to(q.dtype)


def expand_segments(p: torch.Tensor, n_tokens: int, segments: Sequence[int] | None) -> torch.Tensor:
    """Broadcast per-sample (B, D) or per-segment (B, S, D) parameters to per-token (B, N or 1, D).

    `segments` lists the token count of each of the S consecutive segments; it must sum to N.
    """
    if segments is None:
        if p.dim() != 2:
            raise ValueError(f"without segments, modulation parameters must be (B, D), got shape {tuple(p.shape)}")
        return p[:, None, :]  # (B, 1, D)
    if p.dim() != 3 or p.shape[1] != len(segments):
        raise ValueError(f"with {len(segments)} segments, modulation parameters must be (B, {len(segments)}, D), "
                         f"got shape {tuple(p.shape)}")
    if sum(segments) != n_tokens or any(s < 0 for s in segments):
        raise ValueError(f"segments {list(segments)} must be non-negative and sum to the token count {n_tokens}")
    counts = torch.as_tensor(list(segments), device=p.device)
    return p.repeat_interleave(counts, dim=1, output_size=n_tokens)  # (B, N, D)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, segments: Sequence[int] | None = None,
             eps: float = 1e-6) -> torch.Tensor:
    """adaLN: LayerNorm(x) · (1 + scale) + shift.

    x: (B, N, D). LayerNorm has no affine and normalises over D with biased variance and `eps` inside the square root.
    shift, scale: (B, D) per sample, or (B, S, D) per segment where token n takes the parameters of the segment that
    contains it (`segments` = token counts of the S consecutive segments, summing to N). Returns (B, N, D).
    """
    n = x.shape[1]
    xf = F.layer_norm(x.float(), x.shape[-1:], eps=eps)
    shift = expand_segments(shift.float(), n, segments)
    scale = expand_segments(scale.float(), n, segments)
    return (xf * (1 + scale) + shift).to(x.dtype)


def residual_modulate(x: torch.Tensor, y: torch.Tensor, gate: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
                      segments: Sequence[int] | None = None, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """The step between two adaLN-Zero sub-blocks: x' = x + gate · y, then modulate(x', shift, scale).

    x, y: (B, N, D); gate, shift, scale: (B, D) or (B, S, D) with `segments` as in `modulate`.
    Returns (x', modulate(x', shift, scale, segments, eps)), both (B, N, D) in x's dtype.
    """
    n = x.shape[1]
    residual = (x.float() + expand_segments(gate.float(), n, segments) * y.float()).to(x.dtype)
    return residual, modulate(residual, shift, scale, segments, eps)


def add_layernorm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                  eps: float = 1e-5) -> torch.Tensor:
    """Post-LN block step: LayerNorm(x + residual) · weight + bias over the last dim (biased variance).

    x, residual: (..., D); weight, bias: (D,). Returns (..., D) in x's dtype.
    """
    s = x.float() + residual.float()
    return F.layer_norm(s, s.shape[-1:], weight.float(), bias.float(), eps).to(x.dtype)


def group_modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Time modulation of feature maps: normalise each sample over C·H·W, then x̂ · (1 + scale_c) + shift_c.

    x: (B, C, H, W); mean and biased variance per sample over C, H, W with `eps` inside the square root
    (GroupNorm with one group, no affine). shift, scale: (B, C). Returns (B, C, H, W).
    """
    # contiguous: F.group_norm on a channels-last float tensor loses precision (3e-5 relative measured at mean 50).
    xf = F.group_norm(x.float().contiguous(), 1, eps=eps)
    return (xf * (1 + scale.float()[:, :, None, None]) + shift.float()[:, :, None, None]).to(x.dtype)


def accumulate(canvas: torch.Tensor, weight_canvas: torch.Tensor, tile: torch.Tensor, tile_weight: torch.Tensor,
               row: int, col: int) -> None:
    """Weighted overlap-add of one tile, in place.

    canvas[:, row:row+h, col:col+w] += tile · tile_weight and weight_canvas[row:row+h, col:col+w] += tile_weight,
    with canvas (C, H, W), weight_canvas (H, W), tile (C, h, w), tile_weight (h, w); the tile must lie inside the
    canvas.
    """
    check_accumulate(canvas, weight_canvas, tile, tile_weight, row, col)
    h, w = tile.shape[-2:]
    canvas[:, row:row + h, col:col + w] += (tile.float() * tile_weight.float()).to(canvas.dtype)
    weight_canvas[row:row + h, col:col + w] += tile_weight.to(weight_canvas.dtype)


def check_accumulate(canvas: torch.Tensor, weight_canvas: torch.Tensor, tile: torch.Tensor, tile_weight: torch.Tensor,
                     row: int, col: int) -> None:
    """Shape and bounds checks shared by every `accumulate` backend (out-of-bounds writes are never silent)."""
    if canvas.dim() != 3 or tile.dim() != 3 or weight_canvas.dim() != 2 or tile_weight.dim() != 2:
        raise ValueError("accumulate expects canvas (C, H, W), weight_canvas (H, W), tile (C, h, w), "
                         "tile_weight (h, w); "
                         f"got {tuple(canvas.shape)}, {tuple(weight_canvas.shape)}, {tuple(tile.shape)}, "
                         f"{tuple(tile_weight.shape)}")
    c, height, width = canvas.shape
    tc, h, w = tile.shape
    if tc != c or tuple(weight_canvas.shape) != (height, width) or tuple(tile_weight.shape) != (h, w):
        raise ValueError(f"accumulate shapes disagree: canvas {tuple(canvas.shape)}, weight_canvas "
                         f"{tuple(weight_canvas.shape)}, tile {tuple(tile.shape)}, "
                         f"tile_weight {tuple(tile_weight.shape)}")
    if row < 0 or col < 0 or row + h > height or col + w > width:
        raise ValueError(f"tile of {h}x{w} at row={row}, col={col} does not fit in a {height}x{width} canvas")
