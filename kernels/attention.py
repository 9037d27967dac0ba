"""Fused attention forward, FlashAttention-2 style: softmax(q kᵀ · scale) v without materialising the scores.

One program owns BLOCK_M query rows of one (batch, head) and streams the keys and values in blocks of BLOCK_N. It keeps
an online softmax in float32 (running row max m, running sum l, an accumulator rescaled whenever m grows) and works in
base 2: the scale is multiplied by log2(e) once so every exponential is an exp2. Both sequence tails are masked
(N = 4 + 4·256 = 1028 query tokens is the normal case); the head dim is padded to a power of two (at least 16, the
smallest `tl.dot`) and masked, so D = 40 or 72 work. Inputs may have any strides; accumulation is float32 for every
input dtype, and the output has q's dtype.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from rsinfer.kernels.arguments import INTERPRETING, check_device, check_float, check_rank, check_same_dtype
from rsinfer.kernels.rounding import cast_rounded

MAX_HEAD_DIM = 128

# One config under the interpreter (autotune with 2+ configs needs a driver), with large blocks: its cost is per
# program and per block step, not per element. A small sweep on CUDA.
_CONFIGS = [triton.Config({"BLOCK_M": 128, "BLOCK_N": 256})] if INTERPRETING else [
    triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s)
    for bm, bn, w, s in [(128, 64, 8, 3), (128, 32, 4, 3), (64, 64, 4, 3), (64, 32, 4, 4)]
]


@triton.autotune(configs=_CONFIGS, key=["n_queries", "n_keys", "HEAD_DIM"])
@triton.jit
def _attention_fwd_kernel(
    Q, K, V, O,
    stride_qb, stride_qh, stride_qn, stride_qd,
    stride_kb, stride_kh, stride_km, stride_kd,
    stride_vb, stride_vh, stride_vm, stride_vd,
    stride_ob, stride_oh, stride_on, stride_od,
    heads, n_queries, n_keys, qk_scale,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, DOT_FP32: tl.constexpr, DOT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    block = tl.program_id(0)
    batch_head = tl.program_id(1)
    b = (batch_head // heads).to(tl.int64)
    h = (batch_head % heads).to(tl.int64)

    rows = block * BLOCK_M + tl.arange(0, BLOCK_M)  # query index, (BLOCK_M,)
    cols = tl.arange(0, BLOCK_N)  # key index within a block, (BLOCK_N,)
    dims = tl.arange(0, BLOCK_D)  # (BLOCK_D,)
    row_ok = rows < n_queries
    dim_ok = dims < HEAD_DIM  # a compile-time mask: loads along D stay vectorised (all true when D = BLOCK_D)

    # q stays in registers for the whole key loop: (BLOCK_M, BLOCK_D).
    q_ptrs = Q + b * stride_qb + h * stride_qh + rows[:, None] * stride_qn + dims[None, :] * stride_qd
    q = tl.load(q_ptrs, mask=row_ok[:, None] & dim_ok[None, :], other=0.0)
    if DOT_FP32:
        q = q.to(tl.float32)
    k_base = K + b * stride_kb + h * stride_kh
    v_base = V + b * stride_vb + h * stride_vh

    m_i = tl.full((BLOCK_M,), float("-inf"), tl.float32)  # running row max of the base-2 scores
    l_i = tl.zeros((BLOCK_M,), tl.float32)  # running sum of exp2(score - m_i)
    acc = tl.zeros((BLOCK_M, BLOCK_D), tl.float32)  # running sum of exp2(score - m_i) · v

    for start in range(0, n_keys, BLOCK_N):
        keys = start + cols
        key_ok = keys < n_keys
        kt = tl.load(k_base + keys[None, :] * stride_km + dims[:, None] * stride_kd,
                     mask=dim_ok[:, None] & key_ok[None, :], other=0.0)  # kᵀ block, (BLOCK_D, BLOCK_N)
        if DOT_FP32:
            kt = kt.to(tl.float32)
        scores = tl.dot(q, kt, input_precision=DOT_PRECISION) * qk_scale  # (BLOCK_M, BLOCK_N), log2 units
        scores = tl.where(key_ok[None, :], scores, float("-inf"))

        m_new = tl.maximum(m_i, tl.max(scores, axis=1))  # finite: every block holds at least one valid key
        p = tl.math.exp2(scores - m_new[:, None])
        alpha = tl.math.exp2(m_i - m_new)  # rescales what was accumulated under the old max (0 on the first block)
        l_i = l_i * alpha + tl.sum(p, axis=1)

        v = tl.load(v_base + keys[:, None] * stride_vm + dims[None, :] * stride_vd,
                    mask=key_ok[:, None] & dim_ok[None, :], other=0.0)  # (BLOCK_N, BLOCK_D)
        if DOT_FP32:
            v = v.to(tl.float32)
        acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None], input_precision=DOT_PRECISION)
        m_i = m_new

    out = acc / l_i[:, None]
    o_ptrs = O + b * stride_ob + h * stride_oh + rows[:, None] * stride_on + dims[None, :] * stride_od
    tl.store(o_ptrs, cast_rounded(out, O.dtype.element_ty), mask=row_ok[:, None] & dim_ok[None, :])


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """softmax(q kᵀ · scale) v over the key axis; q (B, heads, N, D), k, v (B, heads, M, D), D ≤ 128.

    `scale` defaults to 1/√D. Returns a new contiguous (B, heads, N, D) tensor in q's dtype (see
    `rsinfer.ops.reference.attention`).
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_float(name, t)
        check_rank(name, t, 4, "(B, heads, tokens, D)")
    check_same_dtype(q=q, k=k, v=v)
    check_device(q=q, k=k, v=v)
    batch, heads, n, d = q.shape
    if k.shape != v.shape or k.shape[:2] != q.shape[:2] or k.shape[3] != d:
        raise ValueError(f"attention expects q (B, heads, N, D) and k, v (B, heads, M, D); got q {tuple(q.shape)}, "
                         f"k {tuple(k.shape)}, v {tuple(v.shape)}")
    m = k.shape[2]
    if not 1 <= d <= MAX_HEAD_DIM:
        raise ValueError(f"head dim D={d} is not supported; the kernel takes 1 ≤ D ≤ {MAX_HEAD_DIM}")
    if m == 0 and n > 0:
        raise ValueError(f"attention over zero keys is undefined (k has shape {tuple(k.shape)})")
    scale = d ** -0.5 if scale is None else float(scale)
    if not math.isfinite(scale):
        raise ValueError(f"scale must be finite, got {scale}")

    out = torch.empty((batch, heads, n, d), dtype=q.dtype, device=q.device)
    if out.numel() == 0:
        return out
    # Interpreter trap: tl.dot on bf16 operands is silently wrong there, so bf16 is multiplied in fp32 when
    # interpreting; a GPU keeps the native low-precision dot. fp32 inputs use IEEE fp32 dots, not TF32, so the fp32
    # path meets the 1e-5 tolerance of GUIDE §3.
    dot_fp32 = INTERPRETING and q.dtype == torch.bfloat16
    dot_precision = "ieee" if q.dtype == torch.float32 or dot_fp32 else "tf32"

    def grid(meta: dict) -> tuple[int, int]:
        return triton.cdiv(n, meta["BLOCK_M"]), batch * heads

    _attention_fwd_kernel[grid](
        q, k, v, out,
        *q.stride(), *k.stride(), *v.stride(), *out.stride(),
        heads, n, m, scale * math.log2(math.e),
        HEAD_DIM=d, BLOCK_D=max(16, triton.next_power_of_2(d)), DOT_FP32=dot_fp32, DOT_PRECISION=dot_precision,
    )
    return out
