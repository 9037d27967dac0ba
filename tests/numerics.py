"""The numerics policy of GUIDE §3 as one assertion, shared by every test package."""

from __future__ import annotations

import torch


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """‖out − ref‖₂ / ‖ref‖₂ in float64; NaN anywhere gives inf so it never passes."""
    out64, ref64 = out.detach().double(), ref.detach().double()
    if not torch.isfinite(out64).all():
        return float("inf")
    return float((out64 - ref64).norm() / ref64.norm().clamp_min(1e-30))


def assert_matches_reference(out: torch.Tensor, ref32: torch.Tensor, eager_lowp: torch.Tensor | None = None,
                             fp32_tol: float = 1e-5, factor: float = 2.0) -> None:
    """fp32 outputs: relative L2 ≤ fp32_tol. Low-precision outputs: ≤ factor × the error PyTorch's own eager
    computation makes in that dtype (`eager_lowp`) against the same float32 reference."""
    assert out.shape == ref32.shape, f"shape {tuple(out.shape)} != reference {tuple(ref32.shape)}"
    err = relative_error(out, ref32)
    if out.dtype == torch.float32 or eager_lowp is None:
        assert err <= fp32_tol, f"relative L2 error {err:.3e} > {fp32_tol:.1e}"
    else:
        budget = factor * max(relative_error(eager_lowp, ref32), 1e-7)
        assert err <= budget, f"relative L2 error {err:.3e} > {factor}x eager {out.dtype} error ({budget:.3e})"
