"""The numerics policy of GUIDE §3 as one assertion, shared by every test package.

Low-precision budgets are relative: 2× the error PyTorch's own eager computation makes in that dtype. A relative
budget alone grows with a wrong reference (the eager error against a wrong reference is O(1), so twice it passes
anything), so each dtype also has an absolute ceiling, `LOWP_CEILING`. Measured on the cases that use it (parity and
Triton-kernel cases of tests/ops, the COP-GEN-Beta network under bf16 autocast; AMD EPYC with avx512_bf16, torch 2.13):

    dtype     largest error of our outputs            largest eager error           ceiling
    bfloat16  2.4e-3 (one op), 5.9e-3 (whole network)  8.4e-2 (add_layernorm, |mean|/std = 100)  1e-2
    float16   3.2e-4 (one op)                          1.1e-2 (the same rows)                   1e-3

Output rounding alone costs ~2⁻⁹ (bf16) and ~2⁻¹² (fp16) relative, so the ceilings leave a 3-4× margin over the
measured errors, and any O(1) disagreement with the reference (a wrong reference included) fails in every dtype.
"""

from __future__ import annotations

import torch

LOWP_CEILING: dict[torch.dtype, float] = {torch.bfloat16: 1e-2, torch.float16: 1e-3}


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """‖out − ref‖₂ / ‖ref‖₂ in float64; NaN anywhere gives inf so it never passes."""
    out64, ref64 = out.detach().double(), ref.detach().double()
    if not torch.isfinite(out64).all():
        return float("inf")
    return float((out64 - ref64).norm() / ref64.norm().clamp_min(1e-30))


def assert_matches_reference(out: torch.Tensor, ref32: torch.Tensor, eager_lowp: torch.Tensor | None = None,
                             fp32_tol: float = 1e-5, factor: float = 2.0) -> None:
    """fp32 outputs: relative L2 ≤ fp32_tol. Low-precision outputs: ≤ factor × the error PyTorch's own eager
    computation makes in that dtype (`eager_lowp`) against the same float32 reference, and never more than the
    dtype's `LOWP_CEILING`."""
    assert out.shape == ref32.shape, f"shape {tuple(out.shape)} != reference {tuple(ref32.shape)}"
    err = relative_error(out, ref32)
    if out.dtype == torch.float32 or eager_lowp is None:
        assert err <= fp32_tol, f"relative L2 error {err:.3e} > {fp32_tol:.1e}"
        return
    if out.dtype not in LOWP_CEILING:
        raise ValueError(f"no low-precision ceiling for {out.dtype}; known: {sorted(map(str, LOWP_CEILING))}")
    relative = factor * max(relative_error(eager_lowp, ref32), 1e-7)
    budget = min(relative, LOWP_CEILING[out.dtype])
    assert err <= budget, (f"relative L2 error {err:.3e} > {budget:.3e} = min({factor}x eager {out.dtype} error "
                           f"{relative:.3e}, ceiling {LOWP_CEILING[out.dtype]:.0e})")
