"""Time modulation of feature maps: normalise each sample over C·H·W, then x̂·(1 + scale_c) + shift_c.

A sample can hold millions of elements, so its statistics are a two-stage reduction that keeps every program busy:
1. `_partial_stats_kernel`, grid (chunks, B): each program reads BLOCK elements of one sample and writes their mean
   and M2 (sum of squared deviations from that mean), both float32.
2. `_combine_stats_kernel`, grid (B,): merges the chunks of one sample with Chan's parallel formula
   (mean = Σ nᵢ·meanᵢ / n, M2 = Σ M2ᵢ + nᵢ·(meanᵢ − mean)²) and writes the sample's mean and 1/√(var + eps).
   Centred partial sums avoid the cancellation of E[x²] − E[x]² when |mean| ≫ std.
3. `_group_modulate_kernel`, grid (chunks, B): normalises and modulates with each element's channel parameters.
x may have any strides: element i of a sample sits at channel i // (H·W), row (i // W) mod H, column i mod W; a
sample stored densely in (C, H, W) order (the common case) skips that arithmetic.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from rsinfer.kernels.arguments import INTERPRETING, check_device, check_float, check_rank
from rsinfer.kernels.rounding import cast_rounded

_BLOCK = 1 << 14 if INTERPRETING else 1 << 11  # elements per program (see modulation.py)
_BLOCK_CHUNKS = 1 << 10  # partial statistics merged per step of the combine loop


@triton.jit
def _sample_offsets(flat, height, width, stride_c, stride_h, stride_w, CONTIGUOUS: tl.constexpr):
    """Memory offset of flat element index `flat` within one (C, H, W) sample."""
    if CONTIGUOUS:  # the common layout: no index arithmetic, and loads the compiler can vectorise
        return flat
    return (flat // (height * width)) * stride_c + ((flat // width) % height) * stride_h + (flat % width) * stride_w


@triton.jit
def _partial_stats_kernel(
    X, MEAN, M2,
    stride_b, stride_c, stride_h, stride_w,
    numel, height, width, chunks,
    CONTIGUOUS: tl.constexpr, BLOCK: tl.constexpr,
):
    chunk = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    flat = chunk.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    ok = flat < numel
    offsets = b * stride_b + _sample_offsets(flat, height, width, stride_c, stride_h, stride_w, CONTIGUOUS)
    x = tl.load(X + offsets, mask=ok, other=0.0)
    x = x.to(tl.float32)
    count = tl.minimum(numel - chunk.to(tl.int64) * BLOCK, BLOCK).to(tl.float32)
    mean = tl.sum(x, axis=0) / count
    centred = tl.where(ok, x - mean, 0.0)
    tl.store(MEAN + b * chunks + chunk, mean)
    tl.store(M2 + b * chunks + chunk, tl.sum(centred * centred, axis=0))


@triton.jit
def _combine_stats_kernel(
    MEAN, M2, SAMPLE_MEAN, SAMPLE_RSTD,
    numel, chunks, eps,
    BLOCK: tl.constexpr, BLOCK_CHUNKS: tl.constexpr,
):
    b = tl.program_id(0).to(tl.int64)
    ids = tl.arange(0, BLOCK_CHUNKS)
    total = numel * 1.0

    weighted = tl.zeros((BLOCK_CHUNKS,), tl.float32)  # Σ nᵢ·meanᵢ, lane-wise
    for start in range(0, chunks, BLOCK_CHUNKS):
        chunk = start + ids
        ok = chunk < chunks
        count = tl.minimum(numel - chunk.to(tl.int64) * BLOCK, BLOCK).to(tl.float32)
        weighted += tl.where(ok, count * tl.load(MEAN + b * chunks + chunk, mask=ok, other=0.0), 0.0)
    mean = tl.sum(weighted, axis=0) / total

    m2 = tl.zeros((BLOCK_CHUNKS,), tl.float32)  # Σ M2ᵢ + nᵢ·(meanᵢ − mean)², lane-wise
    for start in range(0, chunks, BLOCK_CHUNKS):
        chunk = start + ids
        ok = chunk < chunks
        count = tl.minimum(numel - chunk.to(tl.int64) * BLOCK, BLOCK).to(tl.float32)
        delta = tl.load(MEAN + b * chunks + chunk, mask=ok, other=0.0) - mean
        m2 += tl.where(ok, tl.load(M2 + b * chunks + chunk, mask=ok, other=0.0) + count * delta * delta, 0.0)
    var = tl.sum(m2, axis=0) / total

    tl.store(SAMPLE_MEAN + b, mean)
    tl.store(SAMPLE_RSTD + b, 1.0 / tl.sqrt(var + eps))


@triton.jit
def _group_modulate_kernel(
    X, SHIFT, SCALE, SAMPLE_MEAN, SAMPLE_RSTD, OUT,
    stride_b, stride_c, stride_h, stride_w,
    stride_hb, stride_hc, stride_sb, stride_sc,
    numel, height, width,
    CONTIGUOUS: tl.constexpr, BLOCK: tl.constexpr,
):
    chunk = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    flat = chunk.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    ok = flat < numel
    offsets = b * stride_b + _sample_offsets(flat, height, width, stride_c, stride_h, stride_w, CONTIGUOUS)
    x = tl.load(X + offsets, mask=ok, other=0.0)
    channel = flat // (height * width)
    shift = tl.load(SHIFT + b * stride_hb + channel * stride_hc, mask=ok, other=0.0).to(tl.float32)
    scale = tl.load(SCALE + b * stride_sb + channel * stride_sc, mask=ok, other=0.0).to(tl.float32)
    x_hat = (x.to(tl.float32) - tl.load(SAMPLE_MEAN + b)) * tl.load(SAMPLE_RSTD + b)
    out = x_hat * (1.0 + scale) + shift
    tl.store(OUT + b * numel + flat, cast_rounded(out, OUT.dtype.element_ty), mask=ok)


def group_modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Normalise each sample of x (B, C, H, W) over C·H·W, then x̂·(1 + scale_c) + shift_c; shift, scale (B, C).

    Returns a new contiguous (B, C, H, W) tensor in x's dtype (see `rsinfer.ops.reference.group_modulate`).
    """
    for name, t in (("x", x), ("shift", shift), ("scale", scale)):
        check_float(name, t)
    check_rank("x", x, 4, "(B, C, H, W)")
    check_device(x=x, shift=shift, scale=scale)
    batch, channels, height, width = x.shape
    for name, p in (("shift", shift), ("scale", scale)):
        if tuple(p.shape) != (batch, channels):
            raise ValueError(f"{name} must be (B, C) = ({batch}, {channels}), got shape {tuple(p.shape)}")

    out = torch.empty((batch, channels, height, width), dtype=x.dtype, device=x.device)
    numel = channels * height * width
    if out.numel() == 0:
        return out
    chunks = triton.cdiv(numel, _BLOCK)
    contiguous = x[0].is_contiguous()  # each sample dense in (C, H, W) order; samples may sit at any stride
    partial_mean = torch.empty((batch, chunks), dtype=torch.float32, device=x.device)
    partial_m2 = torch.empty_like(partial_mean)
    sample_mean = torch.empty((batch,), dtype=torch.float32, device=x.device)
    sample_rstd = torch.empty_like(sample_mean)

    _partial_stats_kernel[(chunks, batch)](
        x, partial_mean, partial_m2, *x.stride(), numel, height, width, chunks,
        CONTIGUOUS=contiguous, BLOCK=_BLOCK, num_warps=8)
    _combine_stats_kernel[(batch,)](
        partial_mean, partial_m2, sample_mean, sample_rstd, numel, chunks, float(eps),
        BLOCK=_BLOCK, BLOCK_CHUNKS=min(_BLOCK_CHUNKS, triton.next_power_of_2(chunks)), num_warps=4)
    _group_modulate_kernel[(chunks, batch)](
        x, shift, scale, sample_mean, sample_rstd, out, *x.stride(), *shift.stride(), *scale.stride(),
        numel, height, width, CONTIGUOUS=contiguous, BLOCK=_BLOCK, num_warps=8)
    return out
