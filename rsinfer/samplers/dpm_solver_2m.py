"""DPM-Solver++(2M): the multistep second-order data-prediction solver ("dpm-solver++2m").

Lu et al., "DPM-Solver++" (2022), Alg. 2. One model call per step; the previous data prediction is reused as a
backward difference in λ. With h = λ_t − λ_0, h₀ = λ_0 − λ_{−1}, r₀ = h₀/h and φ₁ = e^{−h} − 1:

    x_t = (σ_t/σ_0) x − α_t φ₁ D_0 − ½ α_t φ₁ (D_0 − D_{−1}) / r₀

The first step has no history and is first order (DDIM). For small budgets (< 15 NFE) the last step is first order
too ("lower order final", as DPM-Solver recommends: it steadies the end of short trajectories).
The history is a value: each step takes it and returns the new one.
"""

from __future__ import annotations

import torch

from rsinfer.samplers.vp_schedule import EpsModel, Spacing, VPSchedule, time_grid

# ((t, data prediction at t), ...), newest last.
History = tuple[tuple[torch.Tensor, torch.Tensor], ...]
LOWER_ORDER_FINAL_BELOW_NFE = 15


def dpm_solver_2m_update(x: torch.Tensor, schedule: VPSchedule, history: History, t: torch.Tensor) -> torch.Tensor:
    """Step from the time of history[-1] to `t`: first order with one history entry, second order with two."""
    t_0, d_0 = history[-1]
    lam_0, lam_t = schedule.lambda_(t_0), schedule.lambda_(t)
    h = lam_t - lam_0
    alpha_t = schedule.alpha(t)
    phi_1 = torch.expm1(-h)
    x_t = (schedule.sigma(t) / schedule.sigma(t_0)) * x - (alpha_t * phi_1) * d_0
    if len(history) == 1:
        return x_t
    t_1, d_1 = history[-2]
    r_0 = (lam_0 - schedule.lambda_(t_1)) / h
    return x_t - 0.5 * (alpha_t * phi_1) * (d_0 - d_1) / r_0


def dpm_solver_2m_step(eps_model: EpsModel, x: torch.Tensor, schedule: VPSchedule, t: torch.Tensor,
                       t_next: torch.Tensor, history: History, order: int = 2) -> tuple[torch.Tensor, History]:
    """One model call at (x, t), then the step to t_next of at most `order`; returns (x_next, new history)."""
    history = (history + ((t, schedule.data_prediction(eps_model, x, t)),))[-2:]
    return dpm_solver_2m_update(x, schedule, history[-order:], t_next), history


def dpm_solver_pp_2m(eps_model: EpsModel, x: torch.Tensor, schedule: VPSchedule, nfe: int,
                     spacing: Spacing = "logSNR", t_start: float = 1.0, t_end: float = 1e-3) -> torch.Tensor:
    """Integrate the probability-flow ODE from t_start to t_end with `nfe` model calls on a `spacing` grid."""
    grid = time_grid(schedule, nfe, spacing, t_start, t_end).to(x.device)
    history: History = ()
    for i in range(nfe):
        last_and_short = i == nfe - 1 and nfe < LOWER_ORDER_FINAL_BELOW_NFE
        x, history = dpm_solver_2m_step(eps_model, x, schedule, grid[i], grid[i + 1], history,
                                        order=1 if last_and_short else 2)
    return x
