"""adaLN modulation of token rows: LayerNorm(x)·(1 + scale) + shift, per sample or per segment of tokens.

One program normalises BLOCK_ROWS token rows of D features: float32 mean and biased variance over D (eps inside the
square root), then the row's shift/scale. Parameters come as (B, D) per sample or (B, S, D) per segment; every row
looks up its segment in an int32 index of length N that the launcher builds once per (segments, device). The
residual variant first forms x' = x + gate·y, rounds it to x's dtype exactly as the reference does, writes it, and
modulates it in the same pass: one read of x and y, two writes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import triton
import triton.language as tl

from rsinfer.kernels.arguments import INTERPRETING, check_device, check_float, check_rank, check_same_dtype
from rsinfer.kernels.rounding import cast_rounded

# Elements one program handles: a few KiB per program on a GPU; far more under the interpreter, whose cost is
# per program (~1 ms), so a test-sized tensor is a handful of programs.
_ELEMENTS_PER_PROGRAM = 1 << 16 if INTERPRETING else 1 << 12


@triton.jit
def _modulate_rows_kernel(
    X, Y, GATE, SHIFT, SCALE, SEGMENT, RESIDUAL_OUT, OUT,
    stride_xb, stride_xn, stride_xd,
    stride_yb, stride_yn, stride_yd,
    stride_gb, stride_gs, stride_gd,
    stride_hb, stride_hs, stride_hd,
    stride_cb, stride_cs, stride_cd,
    rows, tokens, features, eps,
    WITH_RESIDUAL: tl.constexpr, BLOCK_ROWS: tl.constexpr, BLOCK_D: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)  # flat b·N + n, (BLOCK_ROWS,)
    dims = tl.arange(0, BLOCK_D)
    row_ok = row < rows
    ok = row_ok[:, None] & (dims < features)[None, :]  # (BLOCK_ROWS, BLOCK_D)
    b = row // tokens
    n = row % tokens
    seg = tl.load(SEGMENT + n, mask=row_ok, other=0).to(tl.int64)  # the segment of each token

    x = tl.load(X + (b * stride_xb + n * stride_xn)[:, None] + dims[None, :] * stride_xd, mask=ok, other=0.0)
    if WITH_RESIDUAL:
        y = tl.load(Y + (b * stride_yb + n * stride_yn)[:, None] + dims[None, :] * stride_yd, mask=ok, other=0.0)
        gate = tl.load(GATE + (b * stride_gb + seg * stride_gs)[:, None] + dims[None, :] * stride_gd, mask=ok,
                       other=0.0)
        x = cast_rounded(x.to(tl.float32) + gate.to(tl.float32) * y.to(tl.float32), X.dtype.element_ty)
        tl.store(RESIDUAL_OUT + row[:, None] * features + dims[None, :], x, mask=ok)
    x = x.to(tl.float32)

    mean = tl.sum(x, axis=1) / features
    centred = tl.where(ok, x - mean[:, None], 0.0)
    var = tl.sum(centred * centred, axis=1) / features
    x_hat = centred / tl.sqrt(var + eps)[:, None]

    shift = tl.load(SHIFT + (b * stride_hb + seg * stride_hs)[:, None] + dims[None, :] * stride_hd, mask=ok, other=0.0)
    scale = tl.load(SCALE + (b * stride_cb + seg * stride_cs)[:, None] + dims[None, :] * stride_cd, mask=ok, other=0.0)
    out = x_hat * (1.0 + scale.to(tl.float32)) + shift.to(tl.float32)
    tl.store(OUT + row[:, None] * features + dims[None, :], cast_rounded(out, OUT.dtype.element_ty), mask=ok)


@functools.lru_cache(maxsize=64)
def _segment_index(segments: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Token n → index of the segment that contains it, (N,) int32 (built once per segments and device)."""
    counts = torch.tensor(segments, dtype=torch.int64)
    index = torch.repeat_interleave(torch.arange(len(segments), dtype=torch.int32), counts)
    return index.to(device)


def _per_segment(name: str, p: torch.Tensor, x: torch.Tensor, segments: Sequence[int] | None) -> torch.Tensor:
    """Check a modulation parameter against x (B, N, D) and view it as (B, S, D) (S = 1 without segments)."""
    check_float(name, p)
    batch, n, d = x.shape
    if segments is None:
        if tuple(p.shape) != (batch, d):
            raise ValueError(f"without segments, {name} must be (B, D) = ({batch}, {d}), got shape {tuple(p.shape)}")
        return p[:, None, :]  # (B, 1, D)
    if tuple(p.shape) != (batch, len(segments), d):
        raise ValueError(f"with {len(segments)} segments, {name} must be (B, S, D) = ({batch}, {len(segments)}, {d}), "
                         f"got shape {tuple(p.shape)}")
    return p


def _segments(segments: Sequence[int] | None, n: int) -> tuple[int, ...]:
    if segments is None:
        return (n,)
    segments = tuple(int(s) for s in segments)
    if not segments or sum(segments) != n or any(s < 0 for s in segments):
        raise ValueError(f"segments {list(segments)} must be non-negative and sum to the token count {n}")
    return segments


def _launch(x: torch.Tensor, y: torch.Tensor | None, gate: torch.Tensor | None, shift: torch.Tensor,
            scale: torch.Tensor, segments: Sequence[int] | None, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    check_float("x", x)
    check_rank("x", x, 3, "(B, N, D)")
    batch, n, d = x.shape
    segment = _segment_index(_segments(segments, n), x.device)
    shift = _per_segment("shift", shift, x, segments)
    scale = _per_segment("scale", scale, x, segments)
    with_residual = y is not None
    if with_residual:
        check_float("y", y)
        if y.shape != x.shape:
            raise ValueError(f"y must have x's shape {tuple(x.shape)}, got {tuple(y.shape)}")
        check_same_dtype(x=x, y=y)
        gate = _per_segment("gate", gate, x, segments)
        check_device(x=x, y=y, gate=gate, shift=shift, scale=scale)
    else:
        check_device(x=x, shift=shift, scale=scale)
        y, gate = x, shift  # unread placeholders (WITH_RESIDUAL=False)

    out = torch.empty((batch, n, d), dtype=x.dtype, device=x.device)
    residual = torch.empty_like(out) if with_residual else out
    rows = batch * n
    if rows == 0 or d == 0:
        return residual, out
    block_d = triton.next_power_of_2(d)
    block_rows = max(1, min(triton.next_power_of_2(rows), _ELEMENTS_PER_PROGRAM // block_d))
    _modulate_rows_kernel[(triton.cdiv(rows, block_rows),)](
        x, y, gate, shift, scale, segment, residual, out,
        *x.stride(), *y.stride(), *gate.stride(), *shift.stride(), *scale.stride(),
        rows, n, d, float(eps),
        WITH_RESIDUAL=with_residual, BLOCK_ROWS=block_rows, BLOCK_D=block_d,
        num_warps=4 if block_d <= 1024 else 8,
    )
    return residual, out


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, segments: Sequence[int] | None = None,
             eps: float = 1e-6) -> torch.Tensor:
    """adaLN: LayerNorm(x)·(1 + scale) + shift; x (B, N, D), shift/scale (B, D) or (B, S, D) with `segments`.

    Returns a new (B, N, D) tensor in x's dtype (see `rsinfer.ops.reference.modulate`).
    """
    return _launch(x, None, None, shift, scale, segments, eps)[1]


def residual_modulate(x: torch.Tensor, y: torch.Tensor, gate: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
                      segments: Sequence[int] | None = None, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """x' = x + gate·y and modulate(x', shift, scale) in one pass; returns (x', modulated), both (B, N, D).

    See `rsinfer.ops.reference.residual_modulate`.
    """
    return _launch(x, y, gate, shift, scale, segments, eps)
