"""PF-ODE solvers against the exact solution on Gaussian data, and the VP schedule they share."""

from __future__ import annotations


import pytest
import torch

from rsinfer.samplers.dpm_solver_2m import dpm_solver_2m_step
from rsinfer.samplers.pf_ode import SAMPLER_NAMES, solve_pf_ode
from rsinfer.samplers.unipc import UniPCState, unipc, unipc_step
from rsinfer.samplers.vp_schedule import scaled_linear_betas, stable_diffusion_schedule, time_grid

SCHEDULE = stable_diffusion_schedule()


def _gaussian(dim: int = 1001, seed: int = 0):
    """x₀ ~ N(μ, diag s²): exact ε and the exact PF-ODE map from t = 1 to t = 1e-3 (affine, quantile to quantile)."""
    g = torch.Generator().manual_seed(seed)
    mu, s = torch.rand(dim, generator=g) * 2 - 1, torch.rand(dim, generator=g) * 1.5 + 0.1

    def eps(x, t):
        a, sig = SCHEDULE.alpha(t), SCHEDULE.sigma(t)
        return sig * (x - a * mu) / (a * a * s * s + sig * sig)

    x1 = torch.randn(4, dim, generator=g)
    one, end = torch.tensor(1.0), torch.tensor(1e-3)
    a1, s1, a0, s0 = (v.double() for v in (SCHEDULE.alpha(one), SCHEDULE.sigma(one), SCHEDULE.alpha(end),
                                           SCHEDULE.sigma(end)))
    var = s.double() ** 2
    z = (x1.double() - a1 * mu) / torch.sqrt(a1 ** 2 * var + s1 ** 2)  # the quantile, preserved by the flow
    exact = a0 * mu + torch.sqrt(a0 ** 2 * var + s0 ** 2) * z
    return eps, x1, exact


def _error(sampler: str, nfe: int) -> float:
    eps, x1, exact = _gaussian()
    x = solve_pf_ode(sampler, eps, x1, SCHEDULE, nfe)
    return float((x.double() - exact).norm() / exact.norm())


def test_schedule_reproduces_the_discrete_alphas() -> None:
    betas = scaled_linear_betas().double()
    alphas_bar = torch.cumprod(1 - betas, 0)
    t = torch.arange(1, 1001, dtype=torch.float32) / 1000
    torch.testing.assert_close(SCHEDULE.alpha(t).double() ** 2, alphas_bar, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(SCHEDULE.alpha(t) ** 2 + SCHEDULE.sigma(t) ** 2, torch.ones(1000), rtol=0, atol=1e-6)
    probe = torch.tensor([1e-3, 0.0137, 0.5, 0.9991, 1.0])
    torch.testing.assert_close(SCHEDULE.inverse_lambda(SCHEDULE.lambda_(probe)), probe, rtol=0, atol=5e-5)
    lam = SCHEDULE.lambda_(time_grid(SCHEDULE, 7, "logSNR"))
    torch.testing.assert_close(lam[1:] - lam[:-1], (lam[1:] - lam[:-1]).mean().expand(7), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("sampler", SAMPLER_NAMES)
def test_solvers_converge_to_the_exact_solution(sampler: str) -> None:
    coarse, fine = _error(sampler, 20), _error(sampler, 100)
    assert fine < coarse and fine < 5e-3, (coarse, fine)


def test_multistep_orders() -> None:
    """Doubling the steps divides the error by ≈ 2^order once the steps are small."""
    ratio_2m = _error("dpm-solver++2m", 50) / _error("dpm-solver++2m", 100)
    ratio_unipc = _error("unipc", 50) / _error("unipc", 100)
    assert 3.0 < ratio_2m < 5.5, ratio_2m
    assert ratio_unipc > 7.0, ratio_unipc


def test_fast_solvers_at_20_nfe_beat_the_official_50() -> None:
    official = _error("dpm-solver++3s", 50)
    assert _error("dpm-solver++2m", 20) <= official
    assert _error("unipc", 12) <= official


def test_steps_are_pure() -> None:
    eps, x1, _ = _gaussian(dim=17)
    grid = time_grid(SCHEDULE, 4, "logSNR")
    x, history = dpm_solver_2m_step(eps, x1, SCHEDULE, grid[0], grid[1], ())
    again, history_again = dpm_solver_2m_step(eps, x1, SCHEDULE, grid[0], grid[1], ())
    assert torch.equal(x, again) and len(history) == 1 and torch.equal(history[0][1], history_again[0][1])
    x2, history2 = dpm_solver_2m_step(eps, x, SCHEDULE, grid[1], grid[2], history)
    assert len(history) == 1 and len(history2) == 2  # the input history is not mutated
    state = UniPCState()
    y, state1 = unipc_step(eps, x1, SCHEDULE, grid[0], grid[1], state, order=3)
    assert state == UniPCState() and state1.last_order == 1 and len(state1.history) == 1
    # Driving the steps by hand reproduces the driver.
    for i in range(1, 4):
        y, state1 = unipc_step(eps, y, SCHEDULE, grid[i], grid[i + 1], state1, order=min(3, 4 - i))
    torch.testing.assert_close(y, unipc(eps, x1, SCHEDULE, 4), rtol=0, atol=0)


def test_bad_arguments() -> None:
    eps, x1, _ = _gaussian(dim=5)
    with pytest.raises(ValueError, match="unknown sampler 'euler'"):
        solve_pf_ode("euler", eps, x1, SCHEDULE, 4)
    with pytest.raises(ValueError, match="at least 1"):
        solve_pf_ode("unipc", eps, x1, SCHEDULE, 0)
    with pytest.raises(ValueError, match="order must be 1, 2 or 3"):
        unipc(eps, x1, SCHEDULE, 4, order=4)
    with pytest.raises(ValueError, match="unknown time spacing"):
        time_grid(SCHEDULE, 4, "karras")
