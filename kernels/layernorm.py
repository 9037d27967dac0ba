"""Post-LN block step: LayerNorm(x + residual)·weight + bias over the last dim, in one pass.

One program handles BLOCK_ROWS rows of D features: the sum x + residual is formed in float32, normalised with a float32
mean and biased variance (eps inside the square root) and given the affine weight and bias. Leading dims are flattened
into rows (a view when the layout allows, else a copy); row and feature strides are passed to the kernel.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from rsinfer.kernels.arguments import INTERPRETING, check_device, check_float, check_same_dtype
from rsinfer.kernels.rounding import cast_rounded

_ELEMENTS_PER_PROGRAM = 1 << 16 if INTERPRETING else 1 << 12  # see modulation.py


@triton.jit
def _add_layernorm_kernel(
    X, R, W, B, OUT,
    stride_xr, stride_xd, stride_rr, stride_rd, stride_w, stride_b,
    rows, features, eps,
    BLOCK_ROWS: tl.constexpr, BLOCK_D: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)  # (BLOCK_ROWS,)
    dims = tl.arange(0, BLOCK_D)
    dim_ok = dims < features
    ok = (row < rows)[:, None] & dim_ok[None, :]  # (BLOCK_ROWS, BLOCK_D)

    x = tl.load(X + row[:, None] * stride_xr + dims[None, :] * stride_xd, mask=ok, other=0.0)
    r = tl.load(R + row[:, None] * stride_rr + dims[None, :] * stride_rd, mask=ok, other=0.0)
    s = x.to(tl.float32) + r.to(tl.float32)

    mean = tl.sum(s, axis=1) / features
    centred = tl.where(ok, s - mean[:, None], 0.0)
    var = tl.sum(centred * centred, axis=1) / features
    s_hat = centred / tl.sqrt(var + eps)[:, None]

    w = tl.load(W + dims * stride_w, mask=dim_ok, other=0.0).to(tl.float32)
    b = tl.load(B + dims * stride_b, mask=dim_ok, other=0.0).to(tl.float32)
    out = s_hat * w[None, :] + b[None, :]
    tl.store(OUT + row[:, None] * features + dims[None, :], cast_rounded(out, OUT.dtype.element_ty), mask=ok)


def add_layernorm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                  eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm(x + residual)·weight + bias over the last dim; x, residual (..., D), weight, bias (D,).

    Returns a new tensor of x's shape and dtype (see `rsinfer.ops.reference.add_layernorm`).
    """
    for name, t in (("x", x), ("residual", residual), ("weight", weight), ("bias", bias)):
        check_float(name, t)
    check_same_dtype(x=x, residual=residual)
    check_device(x=x, residual=residual, weight=weight, bias=bias)
    if x.dim() == 0 or residual.shape != x.shape:
        raise ValueError(f"x and residual must share one shape (..., D), got {tuple(x.shape)} and "
                         f"{tuple(residual.shape)}")
    d = x.shape[-1]
    if tuple(weight.shape) != (d,) or tuple(bias.shape) != (d,):
        raise ValueError(f"weight and bias must be (D,) = ({d},), got {tuple(weight.shape)} and {tuple(bias.shape)}")

    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    x2, r2 = x.reshape(-1, d), residual.reshape(-1, d)  # (rows, D), views where possible
    rows = x2.shape[0]
    block_d = triton.next_power_of_2(d)
    block_rows = max(1, min(triton.next_power_of_2(rows), _ELEMENTS_PER_PROGRAM // block_d))
    _add_layernorm_kernel[(triton.cdiv(rows, block_rows),)](
        x2, r2, weight, bias, out,
        *x2.stride(), *r2.stride(), weight.stride(0), bias.stride(0),
        rows, d, float(eps),
        BLOCK_ROWS=block_rows, BLOCK_D=block_d, num_warps=4 if block_d <= 1024 else 8,
    )
    return out
