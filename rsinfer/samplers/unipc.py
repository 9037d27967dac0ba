"""UniPC with B(h) = e^{−h} − 1 ("bh2"), data prediction ("unipc").

Zhao et al., "UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of Diffusion Models" (2023),
Alg. 2 (UniP-p) and Alg. 1 (UniC-p), in the data-prediction form. One model call per step:

- predictor UniP-p from t_0 to t with the p − 1 previous data predictions as differences in λ;
- the model is evaluated at the predicted x_t, and that value corrects the *same* step (UniC-p, order p + 1)
  before the next predictor starts; the evaluation is reused, so the corrector costs no extra NFE.
  The last step is not corrected (it would need one more call).

With h = λ_t − λ_0, hh = −h, r_k = (λ_{−k} − λ_0)/h (k = 1..p−1), r_p = 1, D_k = (D_{−k} − D_0)/r_k and
B(h) = e^{hh} − 1, the coefficients ρ solve R ρ = b where R_{jk} = r_k^{j−1} and b_j = j!·φ_{j+1}(hh)/B(h)
(φ₁(hh) = (e^{hh} − 1)/hh, φ_{k+1} = (φ_k − 1/k!)/hh):

    x̃_t = (σ_t/σ_0) x − α_t (e^{hh} − 1) D_0
    UniP:  x_t   = x̃_t − α_t B(h) Σ_{k<p} ρ^p_k D_k            (ρ^p from the leading (p−1)×(p−1) block; ½ if p = 2)
    UniC:  x_t^c = x̃_t − α_t B(h) (Σ_{k<p} ρ^c_k D_k + ρ^c_p (D_t − D_0))   (ρ^c from the full p×p system; ½ if p = 1)

Small budgets (< 15 NFE) lower the order of the final steps so it never exceeds the steps left.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rsinfer.samplers.vp_schedule import EpsModel, Spacing, VPSchedule, time_grid

# ((t, data prediction at t), ...), newest last.
History = tuple[tuple[torch.Tensor, torch.Tensor], ...]
LOWER_ORDER_FINAL_BELOW_NFE = 15


@dataclass(frozen=True)
class UniPCState:
    """What the next UniPC step needs: data-prediction history, the last (corrected) sample and its step order."""

    history: History = ()
    last_sample: torch.Tensor | None = None
    last_order: int = 0


@dataclass(frozen=True)
class _StepTerms:
    base: torch.Tensor          # x̃_t
    scale: torch.Tensor         # α_t B(h)
    differences: list[torch.Tensor]
    r_matrix: torch.Tensor      # (p, p)
    b: torch.Tensor             # (p,)
    d_0: torch.Tensor


def _step_terms(x: torch.Tensor, schedule: VPSchedule, history: History, t: torch.Tensor, order: int) -> _StepTerms:
    t_0, d_0 = history[-1]
    lam_0 = schedule.lambda_(t_0)
    h = schedule.lambda_(t) - lam_0
    hh = -h
    rks, differences = [], []
    for k in range(1, order):
        t_k, d_k = history[-(k + 1)]
        r_k = (schedule.lambda_(t_k) - lam_0) / h
        rks.append(r_k)
        differences.append((d_k - d_0) / r_k)
    rks.append(torch.ones_like(h))
    rks = torch.cat([r.reshape(1) for r in rks])
    h_phi_1 = torch.expm1(hh)
    b_h = h_phi_1
    rows, b = [], []
    h_phi_k, factorial = h_phi_1 / hh - 1.0, 1.0
    for j in range(1, order + 1):
        rows.append(rks ** (j - 1))
        b.append(h_phi_k * factorial / b_h)
        factorial *= j + 1
        h_phi_k = h_phi_k / hh - 1.0 / factorial
    alpha_t = schedule.alpha(t)
    base = (schedule.sigma(t) / schedule.sigma(t_0)) * x - (alpha_t * h_phi_1) * d_0
    return _StepTerms(base, alpha_t * b_h, differences, torch.stack(rows), torch.cat([v.reshape(1) for v in b]), d_0)


def unipc_predict(x: torch.Tensor, schedule: VPSchedule, history: History, t: torch.Tensor, order: int) -> torch.Tensor:
    """UniP-`order` from the time of history[-1] (where the sample is `x`) to `t`."""
    terms = _step_terms(x, schedule, history, t, order)
    if order == 1:
        return terms.base
    rhos = torch.tensor([0.5]) if order == 2 else torch.linalg.solve(terms.r_matrix[:-1, :-1], terms.b[:-1])
    return terms.base - terms.scale * sum(rho * d for rho, d in zip(rhos, terms.differences))


def unipc_correct(last_sample: torch.Tensor, schedule: VPSchedule, history: History, t: torch.Tensor, order: int,
                  d_t: torch.Tensor) -> torch.Tensor:
    """UniC: redo the step history[-1] → t that UniP-`order` took, using the data prediction `d_t` at its end."""
    terms = _step_terms(last_sample, schedule, history, t, order)
    rhos = torch.tensor([0.5]) if order == 1 else torch.linalg.solve(terms.r_matrix, terms.b)
    correction = sum(rho * d for rho, d in zip(rhos[:-1], terms.differences)) + rhos[-1] * (d_t - terms.d_0)
    return terms.base - terms.scale * correction


def unipc_step(eps_model: EpsModel, x: torch.Tensor, schedule: VPSchedule, t: torch.Tensor, t_next: torch.Tensor,
               state: UniPCState, order: int) -> tuple[torch.Tensor, UniPCState]:
    """One model call at (x, t): correct the previous step with it, then predict x at t_next with UniP-`order`."""
    d_t = schedule.data_prediction(eps_model, x, t)
    if state.history:
        x = unipc_correct(state.last_sample, schedule, state.history, t, state.last_order, d_t)
    history = (state.history + ((t, d_t),))[-max(order, 1):]
    order = min(order, len(history))
    return unipc_predict(x, schedule, history, t_next, order), UniPCState(history, x, order)


def unipc(eps_model: EpsModel, x: torch.Tensor, schedule: VPSchedule, nfe: int, order: int = 3,
          spacing: Spacing = "logSNR", t_start: float = 1.0, t_end: float = 1e-3) -> torch.Tensor:
    """Integrate the probability-flow ODE from t_start to t_end with `nfe` model calls (UniPC-`order`, bh2)."""
    if order not in (1, 2, 3):
        raise ValueError(f"UniPC order must be 1, 2 or 3, got {order}")
    grid = time_grid(schedule, nfe, spacing, t_start, t_end).to(x.device)
    state = UniPCState()
    for i in range(nfe):
        steps_left = nfe - i
        step_order = min(order, steps_left) if nfe < LOWER_ORDER_FINAL_BELOW_NFE else order
        x, state = unipc_step(eps_model, x, schedule, grid[i], grid[i + 1], state, step_order)
    return x
