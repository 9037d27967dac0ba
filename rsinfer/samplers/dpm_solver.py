"""DPM-Solver++ singlestep, order 3 ("dpm-solver++3s"): the sampler COP-GEN-Beta ships.

Lu et al., "DPM-Solver++" (2022), data-prediction form of the singlestep solvers of "DPM-Solver" (2022, Alg. 1-2),
with the step plan of DPM-Solver's "fast" method. For an NFE budget `nfe`:

- the time grid is `nfe + 1` points uniform in t from 1 to 1e-3 (`time_uniform`, eps = 1e-3);
- K = nfe // 3 + 1 steps with orders [3]·(K−1) + [2] if nfe ≡ 2 (mod 3), [3]·(K−1) + [1] if ≡ 1, and
  [3]·(K−2) + [2, 1] if ≡ 0: 50 NFE is 16 third-order steps and one second-order step;
- a step of order k spans k grid intervals; its intermediate points sit at the λ of the grid points it spans
  (r1, r2 are those λ fractions), so every network call lands on a grid time.

Each step, with h = λ_t − λ_s, data predictions D = x̂₀(x, ·) and φ₁ = e^{−h} − 1 (written `expm1(−h)`):

    order 1:  x_t = (σ_t/σ_s) x − α_t φ₁ D_s
    order 2:  u   = (σ_{s1}/σ_s) x − α_{s1} (e^{−r1 h} − 1) D_s
              x_t = (σ_t/σ_s) x − α_t φ₁ D_s − (1 / 2r1) α_t φ₁ (D_{s1} − D_s)
    order 3:  u1  = (σ_{s1}/σ_s) x − α_{s1} (e^{−r1 h} − 1) D_s
              u2  = (σ_{s2}/σ_s) x − α_{s2} (e^{−r2 h} − 1) D_s + (r2/r1) α_{s2} φ₂(r2 h) (D_{s1} − D_s)
              x_t = (σ_t/σ_s) x − α_t φ₁ D_s + (1/r2) α_t φ₂(h) (D_{s2} − D_s),   φ₂(h) = (e^{−h} − 1)/h + 1

No thresholding and no final denoising step, as in the official call `sample(x, steps=50, eps=1e-3, T=1)`.
"""

from __future__ import annotations

import torch

from rsinfer.samplers.vp_schedule import EpsModel, VPSchedule, time_grid


def singlestep_orders(nfe: int) -> list[int]:
    """The order of every step of the order-3 "fast" plan; the orders sum to `nfe`."""
    if nfe < 1:
        raise ValueError(f"dpm-solver++3s needs at least 1 function evaluation, got {nfe}")
    steps = nfe // 3 + 1
    tail = {0: [2, 1], 1: [1], 2: [2]}[nfe % 3]
    return [3] * (steps - len(tail)) + tail


def singlestep_update(eps_model: EpsModel, x: torch.Tensor, schedule: VPSchedule, s: torch.Tensor, t: torch.Tensor,
                      order: int, r1: torch.Tensor | None, r2: torch.Tensor | None) -> torch.Tensor:
    """One singlestep DPM-Solver++ step of `order` (1, 2 or 3) from time s to t. r1 (orders 2 and 3) and r2 (order 3)
    place the intermediate points as fractions of h in λ; None where the order has no such point."""
    if order not in (1, 2, 3):
        raise ValueError(f"singlestep DPM-Solver++ order must be 1, 2 or 3, got {order}")
    if (order >= 2 and r1 is None) or (order == 3 and r2 is None):
        raise ValueError(f"a singlestep DPM-Solver++ step of order {order} needs r1{' and r2' if order == 3 else ''}, "
                         f"got r1={r1}, r2={r2}")
    lam_s, lam_t = schedule.lambda_(s), schedule.lambda_(t)
    h = lam_t - lam_s
    sigma_s, sigma_t, alpha_t = schedule.sigma(s), schedule.sigma(t), schedule.alpha(t)
    phi_1 = torch.expm1(-h)
    d_s = schedule.data_prediction(eps_model, x, s)
    if order == 1:
        return (sigma_t / sigma_s) * x - (alpha_t * phi_1) * d_s
    if order == 2:
        s1 = schedule.inverse_lambda(lam_s + r1 * h)
        u = (schedule.sigma(s1) / sigma_s) * x - (schedule.alpha(s1) * torch.expm1(-r1 * h)) * d_s
        d_s1 = schedule.data_prediction(eps_model, u, s1)
        return ((sigma_t / sigma_s) * x - (alpha_t * phi_1) * d_s
                - (0.5 / r1) * (alpha_t * phi_1) * (d_s1 - d_s))
    s1 = schedule.inverse_lambda(lam_s + r1 * h)  # order 3
    s2 = schedule.inverse_lambda(lam_s + r2 * h)
    alpha_s1, alpha_s2 = schedule.alpha(s1), schedule.alpha(s2)
    phi_22 = torch.expm1(-r2 * h) / (r2 * h) + 1.0
    phi_2 = phi_1 / h + 1.0
    u1 = (schedule.sigma(s1) / sigma_s) * x - (alpha_s1 * torch.expm1(-r1 * h)) * d_s
    d_s1 = schedule.data_prediction(eps_model, u1, s1)
    u2 = ((schedule.sigma(s2) / sigma_s) * x - (alpha_s2 * torch.expm1(-r2 * h)) * d_s
          + r2 / r1 * (alpha_s2 * phi_22) * (d_s1 - d_s))
    d_s2 = schedule.data_prediction(eps_model, u2, s2)
    return (sigma_t / sigma_s) * x - (alpha_t * phi_1) * d_s + (1.0 / r2) * (alpha_t * phi_2) * (d_s2 - d_s)


def dpm_solver_pp_3s(eps_model: EpsModel, x: torch.Tensor, schedule: VPSchedule, nfe: int,
                     t_start: float = 1.0, t_end: float = 1e-3) -> torch.Tensor:
    """Integrate the probability-flow ODE from `x` at t_start to t_end with exactly `nfe` model calls."""
    grid = time_grid(schedule, nfe, "time_uniform", t_start, t_end).to(x.device)
    lam = schedule.lambda_(grid)
    i = 0
    for order in singlestep_orders(nfe):
        h = lam[i + order] - lam[i]
        r1 = (lam[i + 1] - lam[i]) / h if order >= 2 else None
        r2 = (lam[i + 2] - lam[i]) / h if order >= 3 else None
        x = singlestep_update(eps_model, x, schedule, grid[i], grid[i + order], order, r1, r2)
        i += order
    return x
