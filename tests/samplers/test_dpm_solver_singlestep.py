"""`singlestep_update` (DPM-Solver++ singlestep, orders 1-3) against the exact solution of the probability-flow ODE.

For a data prediction that depends on λ only, D(x, λ) = D(λ), the ODE in λ (DPM-Solver++, Lu et al. 2022, eq. 9) has
the closed-form solution

    x_t = (σ_t / σ_s) x_s + σ_t ∫_{λ_s}^{λ_t} e^λ D(λ) dλ,     σ = 1 / sqrt(1 + e^{2λ}) on a VP schedule.

With D(λ) = a·e^{kλ} + c the integral is a·(e^{(1+k)λ_t} − e^{(1+k)λ_s})/(1 + k) + c·(e^{λ_t} − e^{λ_s}). A solver of
order p makes a local error O(h^{p+1}) in h = λ_t − λ_s: halving h divides it by 2^{p+1}. A wrong sign or a wrong
coefficient in the update lowers that order (or breaks convergence altogether), whatever the solution's scale.
"""

from __future__ import annotations

import math

import pytest
import torch

from rsinfer.samplers.dpm_solver import singlestep_update
from rsinfer.samplers.vp_schedule import stable_diffusion_schedule

SCHEDULE = stable_diffusion_schedule()
K = 1.3
A = torch.linspace(-1.5, 2.0, 7)
C = 0.3 * A**2


def _eps_model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The ε whose data prediction (x − σ ε)/α is D(λ_t) = A·e^{K λ_t} + C, whatever x."""
    data = A * torch.exp(K * SCHEDULE.lambda_(t)) + C
    return (x - SCHEDULE.alpha(t) * data) / SCHEDULE.sigma(t)


def _exact(x: torch.Tensor, lam_s: float, lam_t: float) -> torch.Tensor:
    """The closed-form solution from λ_s to λ_t, in float64."""
    sigma_s, sigma_t = (1.0 / math.sqrt(1.0 + math.exp(2.0 * lam)) for lam in (lam_s, lam_t))
    integral = (A.double() * (math.exp((1 + K) * lam_t) - math.exp((1 + K) * lam_s)) / (1 + K)
                + C.double() * (math.exp(lam_t) - math.exp(lam_s)))
    return sigma_t / sigma_s * x.double() + sigma_t * integral


def _step_error(order: int, r1: float | None, r2: float | None, h: float) -> float:
    """‖one step − exact‖ from λ = −0.5 to −0.5 + h (the schedule's own λ of the two times)."""
    x = torch.linspace(-2.0, 1.0, 7)
    s, t = SCHEDULE.inverse_lambda(torch.tensor([-0.5, -0.5 + h]))
    fractions = [None if r is None else torch.tensor(r) for r in (r1, r2)]
    out = singlestep_update(_eps_model, x, SCHEDULE, s, t, order, *fractions)
    return float((out.double() - _exact(x, SCHEDULE.lambda_(s).item(), SCHEDULE.lambda_(t).item())).norm())


@pytest.mark.parametrize("order, r1, r2", [
    (1, None, None),
    (2, 0.5, None),  # the midpoint in λ (the official singlestep second-order default)
    (2, 0.3, None),  # any r1 gives second order
    (3, 1 / 3, 2 / 3),  # the official third-order fractions
])
def test_local_error_shrinks_with_the_order(order: int, r1: float | None, r2: float | None) -> None:
    coarse, fine = _step_error(order, r1, r2, 0.4), _step_error(order, r1, r2, 0.2)
    # measured: 2.2, 3.2, 3.2, 4.2 (the next term of the expansion still shows at these step sizes)
    assert abs(math.log2(coarse / fine) - (order + 1)) < 0.5, (coarse, fine)
    # and small in absolute terms (measured at h = 0.2: 2.6e-2, 1.5e-3, 2.1e-3, 5.5e-5)
    assert fine < {1: 5e-2, 2: 5e-3, 3: 2e-4}[order], fine


@pytest.mark.parametrize("order, r1, r2, match", [
    (2, None, None, "order 2 needs r1, got r1=None"),
    (3, 1 / 3, None, "order 3 needs r1 and r2"),
    (3, None, 2 / 3, "order 3 needs r1 and r2"),
    (4, 0.25, 0.5, "order must be 1, 2 or 3, got 4"),
])
def test_missing_fractions_and_unknown_orders_are_refused(order: int, r1: float | None, r2: float | None,
                                                          match: str) -> None:
    x = torch.zeros(3)
    fractions = [None if r is None else torch.tensor(r) for r in (r1, r2)]
    with pytest.raises(ValueError, match=match):
        singlestep_update(_eps_model, x, SCHEDULE, torch.tensor(0.5), torch.tensor(0.4), order, *fractions)
