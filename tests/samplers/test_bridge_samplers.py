"""Bridge schedules and samplers against known answers (research/dbcr.md §3.8)."""

from __future__ import annotations

import math

import pytest
import torch

from rsinfer.samplers import alpha_ratio, dbim, i2sb
from rsinfer.samplers.bridge_samplers import BRIDGE_SAMPLERS, bridge_sampler
from rsinfer.samplers.bridge_schedules import (
    DeterministicBridge, VarianceBridge, brownian, check_times, dbcr_sine, generator_noise, i2sb_symmetric, marginal,
    uniform_times,
)

STEPS = [1, 2, 3, 5, 7]


def nonlinear_denoiser(x: torch.Tensor, t: float) -> torch.Tensor:
    """An arbitrary smooth stand-in for a network."""
    return torch.tanh(x) * (1 + t) + 0.1 * torch.sin(3 * x)


# --- schedules ---------------------------------------------------------------------------------------------------

def test_brownian_bridge_coefficients_are_closed_form() -> None:
    t = torch.rand(50, dtype=torch.float64)
    a, b, c = brownian(2.5).coefficients(t)
    torch.testing.assert_close(a, t, rtol=0, atol=1e-15)
    torch.testing.assert_close(b, 1 - t, rtol=0, atol=1e-15)
    torch.testing.assert_close(c ** 2, 2.5 * t * (1 - t), rtol=1e-12, atol=1e-15)
    s = t + (1 - t) * torch.rand(50, dtype=torch.float64)  # s ≥ t: from time s to time t (current first)
    torch.testing.assert_close(brownian(2.5).posterior_std(s, t) ** 2, 2.5 * t * (s - t) / s, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="current first"):
        brownian(2.5).posterior_std(0.2, 0.7)


def test_i2sb_schedule_is_symmetric_and_matches_the_cumulative_betas() -> None:
    schedule = i2sb_symmetric(1000)
    betas = torch.tensor(schedule.betas, dtype=torch.float64)
    ramp_step = ((0.3 / 1000) ** 0.5 - 1e-2) / 999  # √β rises linearly over 1000 points; the first 500 are kept
    assert betas[0] == pytest.approx(1e-4) and betas.max() == pytest.approx((1e-2 + 499 * ramp_step) ** 2)
    torch.testing.assert_close(betas, betas.flip(0))
    grid = torch.arange(1001, dtype=torch.float64) / 1000
    torch.testing.assert_close(schedule.variance(grid)[1:], betas.cumsum(0), rtol=1e-12, atol=0)
    t = torch.rand(40, dtype=torch.float64)
    # σ²(t) + σ²(1 − t) = σ_1² for a symmetric β
    torch.testing.assert_close(schedule.variance(t) + schedule.variance(1 - t),
                               torch.full_like(t, schedule.total_variance), rtol=1e-12, atol=0)


@pytest.mark.parametrize("schedule", [dbcr_sine(), DeterministicBridge("linear"), i2sb_symmetric(), brownian(0.3)])
def test_bridge_endpoints(schedule) -> None:
    a0, b0, c0 = schedule.coefficients(0.0)
    a1, b1, c1 = schedule.coefficients(1.0)
    assert (float(a0), float(b0), float(c0), float(a1), float(b1), float(c1)) == (0, 1, 0, 1, 0, 0)


def test_marginal_moments_match_the_coefficients() -> None:
    schedule, t = i2sb_symmetric(), 0.3
    x0, y = torch.randn(3), torch.randn(3)
    draws = marginal(schedule, x0.expand(200_000, 3), y.expand(200_000, 3), t, torch.randn(200_000, 3))
    a, b, c = (float(v) for v in schedule.coefficients(t))
    torch.testing.assert_close(draws.mean(0), a * y + b * x0, rtol=0, atol=5 * c / math.sqrt(200_000))
    torch.testing.assert_close(draws.var(0), torch.full((3,), c * c), rtol=0.02, atol=0)


@pytest.mark.parametrize("bad", [[1.0, 0.5], [0.9, 0.0], [1.0, 0.5, 0.5, 0.0], [1.0, 0.7, 0.8, 0.0], [0.0]])
def test_time_grids_are_validated(bad) -> None:
    with pytest.raises(ValueError, match="descend"):
        check_times(torch.tensor(bad))
    with pytest.raises(ValueError, match="steps"):
        uniform_times(0)


# --- oracle denoiser: every sampler returns x0 exactly, for every step count ---------------------------------------

SAMPLERS = {
    "alpha_ratio/sine": lambda d, y, n, z: alpha_ratio.sample(d, y, dbcr_sine(), uniform_times(n)),
    "alpha_ratio/linear": lambda d, y, n, z: alpha_ratio.sample(d, y, DeterministicBridge("linear"), uniform_times(n)),
    "alpha_ratio/i2sb": lambda d, y, n, z: alpha_ratio.sample(d, y, i2sb_symmetric(), uniform_times(n)),
    "i2sb/stochastic": lambda d, y, n, z: i2sb.sample(d, y, i2sb_symmetric(), uniform_times(n), z, mode="stochastic"),
    "i2sb/ot_ode": lambda d, y, n, z: i2sb.sample(d, y, brownian(0.5), uniform_times(n), z, mode="ot_ode"),
    "dbim/eta0": lambda d, y, n, z: dbim.sample(d, y, i2sb_symmetric(), uniform_times(n), z, eta=0.0),
    "dbim/eta0.5": lambda d, y, n, z: dbim.sample(d, y, brownian(0.5), uniform_times(n), z, eta=0.5),
    "dbim/eta1": lambda d, y, n, z: dbim.sample(d, y, i2sb_symmetric(), uniform_times(n), z, eta=1.0),
}


@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_oracle_denoiser_gives_x0_exactly(name: str, steps: int) -> None:
    x0, y = torch.randn(2, 13, 9, 7), torch.randn(2, 13, 9, 7)
    calls = []

    def oracle(x: torch.Tensor, t: float) -> torch.Tensor:
        calls.append(t)
        return x0.clone()

    out = SAMPLERS[name](oracle, y, steps, generator_noise(y, torch.Generator().manual_seed(1)))
    assert torch.equal(out, x0)
    assert len(calls) == steps  # NFE = steps, DBIM's booting evaluation included
    assert calls[0] == 1.0


@pytest.mark.parametrize("schedule", [dbcr_sine(), DeterministicBridge("linear"), i2sb_symmetric()])
def test_alpha_ratio_oracle_states_stay_on_the_bridge(schedule) -> None:
    x0, y = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)

    def oracle(x: torch.Tensor, t: float) -> torch.Tensor:
        torch.testing.assert_close(x, marginal(schedule, x0, y, t), rtol=0, atol=1e-12)
        return x0

    alpha_ratio.sample(oracle, y, schedule, uniform_times(6))


def test_dbim_eta0_oracle_states_are_the_bridge_with_the_booting_noise() -> None:
    schedule = i2sb_symmetric()
    x0, y = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    z = torch.randn(y.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    seen = []

    def oracle(x: torch.Tensor, t: float) -> torch.Tensor:
        torch.testing.assert_close(x, marginal(schedule, x0, y, t, z), rtol=0, atol=1e-12)
        seen.append(t)
        return x0

    dbim.sample(oracle, y, schedule, uniform_times(6), generator_noise(y, torch.Generator().manual_seed(3)), eta=0.0)
    assert len(seen) == 6


def test_i2sb_ot_ode_oracle_states_are_the_bridge_mean() -> None:
    schedule = i2sb_symmetric()
    x0, y = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)

    def oracle(x: torch.Tensor, t: float) -> torch.Tensor:
        torch.testing.assert_close(x, marginal(schedule, x0, y, t), rtol=0, atol=1e-12)
        return x0

    i2sb.sample(oracle, y, schedule, uniform_times(5), mode="ot_ode")


def test_one_step_is_schedule_independent_bit_for_bit() -> None:
    y = torch.randn(2, 13, 11, 6)
    sine = alpha_ratio.sample(nonlinear_denoiser, y, dbcr_sine(), uniform_times(1))
    linear = alpha_ratio.sample(nonlinear_denoiser, y, DeterministicBridge("linear"), uniform_times(1))
    assert torch.equal(sine, linear)
    assert torch.equal(sine, nonlinear_denoiser(y, 1.0))


# --- Gaussian data with the exact posterior-mean denoiser ----------------------------------------------------------

def test_deterministic_bridge_two_steps_give_the_known_answer() -> None:
    """x0 ~ N(0,1), y = x0 + e, e ~ N(0,1); one extra step at α = 0.5 gives 0.6·y (not E[x0|y] = 0.5·y)."""
    schedule = dbcr_sine()

    def mmse(x: torch.Tensor, t: float) -> torch.Tensor:
        alpha = float(schedule.alpha(t))
        return x / (1 + alpha * alpha)

    y = torch.randn(1000, dtype=torch.float64)
    times = torch.tensor([1.0, 1 / 3, 0.0], dtype=torch.float64)  # sin(π/6) = 0.5
    torch.testing.assert_close(alpha_ratio.sample(mmse, y, schedule, times), 0.6 * y, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(alpha_ratio.sample(mmse, y, schedule, uniform_times(1)), 0.5 * y, rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("steps", STEPS)
def test_deterministic_bridge_output_distribution_matches_closed_form(steps: int) -> None:
    """x0 ~ N(μ, a), y = x0 + e with e ~ N(m, b): the α-ratio output is μ + G·(y − μ − m) with G from a recursion."""
    mu, a, m, b = 0.3, 0.8, -0.2, 1.7
    schedule = dbcr_sine()
    times = uniform_times(steps)
    alphas = [float(v) for v in schedule.alpha(times)]

    def mmse(x: torch.Tensor, t: float) -> torch.Tensor:
        alpha = float(schedule.alpha(t))
        return mu + a / (a + alpha * alpha * b) * (x - mu - alpha * m)

    gain = 1.0  # x_t = μ + α_t·m + g_t·(y − μ − m)
    for alpha_t, alpha_s in zip(alphas, alphas[1:]):
        ratio = alpha_s / alpha_t
        gain *= (1 - ratio) * a / (a + alpha_t * alpha_t * b) + ratio

    n = 200_000
    x0 = mu + math.sqrt(a) * torch.randn(n, dtype=torch.float64)
    y = x0 + m + math.sqrt(b) * torch.randn(n, dtype=torch.float64)
    out = alpha_ratio.sample(mmse, y, schedule, times)
    torch.testing.assert_close(out, mu + gain * (y - mu - m), rtol=1e-10, atol=1e-10)  # the exact linear map
    cov = torch.cov(torch.stack([out, x0]))
    expected = torch.tensor([[gain * gain * (a + b), gain * a], [gain * a, a]], dtype=torch.float64)
    assert abs(float(out.mean()) - mu) < 5 * math.sqrt(gain * gain * (a + b) / n)
    torch.testing.assert_close(cov, expected, rtol=0.03, atol=0.01)
    if steps == 1:
        assert gain == pytest.approx(a / (a + b))  # NFE 1 = E[x0 | y]


def _gaussian_variance_recursion(sampler: str, schedule, times: torch.Tensor, s0: float, eta: float = 0.0) -> float:
    """Variance of the output under x0 ~ N(μ0, s0²) with the exact linear denoiser (float64, independent of rsinfer's
    samplers): track d_t = x_t − a_t·y − b_t·μ0, which each step scales by a coefficient and adds noise to."""
    coeffs = [tuple(float(v) for v in schedule.coefficients(float(t))) for t in times]

    def gain(a_t, b_t, c_t):  # E[x0 | x_t] − μ0 = gain · d_t (0 at t = 1, where x_t = y carries no information)
        return 0.0 if b_t == 0 else b_t * s0 * s0 / (b_t * b_t * s0 * s0 + c_t * c_t)

    if sampler.startswith("i2sb"):
        var = 0.0
        for (t, (a_t, b_t, c_t)), (s, (a_s, _, _)) in zip(zip(times, coeffs), zip(times[1:], coeffs[1:])):
            ratio = a_s / a_t
            noise = 0.0 if sampler == "i2sb/ot_ode" else float(schedule.posterior_std(t, s)) ** 2
            var = ((1 - ratio) * gain(a_t, b_t, c_t) + ratio) ** 2 * var + noise
        return var
    var = coeffs[1][2] ** 2  # the booting step: x̂0 = μ0, then d = c·z
    for (s, (a_s, b_s, c_s)), (t, (a_t, b_t, c_t)) in zip(zip(times[1:], coeffs[1:]), zip(times[2:], coeffs[2:])):
        omega = eta * float(schedule.posterior_std(s, t))  # from s (current) to t (next)
        r = math.sqrt(max(c_t * c_t - omega * omega, 0)) / c_s
        var = ((b_t - r * b_s) * gain(a_s, b_s, c_s) + r) ** 2 * var + omega * omega
    return var


@pytest.mark.parametrize("steps", [1, 2, 5])
@pytest.mark.parametrize("sampler, eta", [("i2sb/stochastic", 0), ("i2sb/ot_ode", 0), ("dbim", 0.0), ("dbim", 0.5),
                                          ("dbim", 1.0)])
def test_stochastic_bridge_output_distribution_matches_closed_form(sampler: str, eta: float, steps: int) -> None:
    """x0 ~ N(μ0, s0²) per column, a fixed endpoint y: mean μ0 exactly, variance (per column) from the recursion."""
    schedule = brownian(0.6) if steps == 5 else i2sb_symmetric()
    mu0 = torch.tensor([0.4, -1.0], dtype=torch.float64)
    s0 = torch.tensor([0.5, 0.9], dtype=torch.float64)
    y = torch.tensor([0.9, 0.2], dtype=torch.float64).expand(100_000, 2)
    times = uniform_times(steps)

    def exact(x: torch.Tensor, t: float) -> torch.Tensor:
        a, b, c = (float(v) for v in schedule.coefficients(t))
        if b == 0:  # t = 1: x_t = y, the posterior is the prior
            return mu0.expand_as(x)
        return mu0 + b * s0 ** 2 / (b * b * s0 ** 2 + c * c) * (x - a * y - b * mu0)

    noise = generator_noise(y, torch.Generator().manual_seed(7))
    if sampler == "dbim":
        out = dbim.sample(exact, y, schedule, times, noise, eta=eta)
    else:
        out = i2sb.sample(exact, y, schedule, times, noise, mode=sampler.split("/")[1])
    expected_var = torch.tensor([_gaussian_variance_recursion(sampler, schedule, times, float(s), eta) for s in s0],
                                dtype=torch.float64)
    assert torch.all(expected_var <= s0 ** 2 + 1e-12)  # never more spread than the data
    n = out.shape[0]
    assert torch.all((out.mean(0) - mu0).abs() <= 5 * (expected_var / n).sqrt() + 1e-12)
    cov = torch.cov(out.T)
    torch.testing.assert_close(torch.diagonal(cov), expected_var, rtol=0.03, atol=1e-12)
    assert abs(float(cov[0, 1])) <= 5 * float(expected_var.prod().sqrt()) / math.sqrt(n) + 1e-12


# --- limits in which I2SB and DBIM reduce to the α-ratio update ----------------------------------------------------

@pytest.mark.parametrize("steps", STEPS)
def test_i2sb_ot_ode_is_the_alpha_ratio_update(steps: int) -> None:
    y, schedule = torch.randn(2, 13, 10, 9), i2sb_symmetric()
    ode = i2sb.sample(nonlinear_denoiser, y, schedule, uniform_times(steps), mode="ot_ode")
    assert torch.equal(ode, alpha_ratio.sample(nonlinear_denoiser, y, schedule, uniform_times(steps)))


@pytest.mark.parametrize("steps", STEPS)
def test_stochastic_i2sb_tends_to_alpha_ratio_as_the_bridge_noise_vanishes(steps: int) -> None:
    y = torch.randn(2, 13, 10, 9, dtype=torch.float64)
    errors = []
    for variance in (1e-2, 1e-4, 1e-6):
        schedule = brownian(variance)
        stochastic = i2sb.sample(nonlinear_denoiser, y, schedule, uniform_times(steps),
                                 generator_noise(y, torch.Generator().manual_seed(0)), mode="stochastic")
        ode = alpha_ratio.sample(nonlinear_denoiser, y, schedule, uniform_times(steps))
        errors.append(float((stochastic - ode).norm() / ode.norm()))
    if steps == 1:
        assert errors == [0.0, 0.0, 0.0]
    else:
        assert 50 < errors[0] / errors[2] < 200 and errors[2] < 1e-3  # the gap shrinks ∝ σ_1 (100x for 1e4x variance)


@pytest.mark.parametrize("steps", STEPS)
def test_dbim_with_eta_one_is_the_stochastic_i2sb_step(steps: int) -> None:
    y, schedule = torch.randn(2, 13, 10, 9, dtype=torch.float64), i2sb_symmetric()
    step_noise = [torch.randn(y.shape, dtype=y.dtype) for _ in range(steps)]  # the same draw per transition
    times, noise = uniform_times(steps), step_noise.__getitem__
    out_dbim = dbim.sample(nonlinear_denoiser, y, schedule, times, noise, eta=1.0)
    out_i2sb = i2sb.sample(nonlinear_denoiser, y, schedule, times, noise, mode="stochastic")
    torch.testing.assert_close(out_dbim, out_i2sb, rtol=1e-10, atol=1e-10)


def test_dbim_refuses_a_bridge_without_noise_and_a_bad_eta() -> None:
    y = torch.randn(3, 4)
    with pytest.raises(ValueError, match="noise"):
        dbim.sample(nonlinear_denoiser, y, dbcr_sine(), uniform_times(3))
    with pytest.raises(ValueError, match="eta"):
        dbim.sample(nonlinear_denoiser, y, i2sb_symmetric(), uniform_times(3), eta=1.5)
    with pytest.raises(ValueError, match="mode"):
        i2sb.sample(nonlinear_denoiser, y, i2sb_symmetric(), uniform_times(3), generator_noise(y),
                    mode="sde")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs noise"):
        i2sb.sample(nonlinear_denoiser, y, i2sb_symmetric(), uniform_times(3))
    with pytest.raises(ValueError, match="needs noise"):
        dbim.sample(nonlinear_denoiser, y, i2sb_symmetric(), uniform_times(3))
    with pytest.raises(ValueError, match="shape"):
        DeterministicBridge("cosine")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        VarianceBridge((1.0, -1.0))


# --- the table of samplers by name ---------------------------------------------------------------------------------

def test_the_table_runs_each_sampler_with_its_schedule() -> None:
    y = torch.randn(2, 5, 6, 7, dtype=torch.float64)
    step_noise = [torch.randn(y.shape, dtype=y.dtype) for _ in range(4)]
    times = uniform_times(4)
    direct = {
        "alpha-ratio": alpha_ratio.sample(nonlinear_denoiser, y, dbcr_sine(), times),
        "i2sb": i2sb.sample(nonlinear_denoiser, y, i2sb_symmetric(), times, step_noise.__getitem__, mode="stochastic"),
        "i2sb-ode": i2sb.sample(nonlinear_denoiser, y, i2sb_symmetric(), times, None, mode="ot_ode"),
        "dbim": dbim.sample(nonlinear_denoiser, y, i2sb_symmetric(), times, step_noise.__getitem__, eta=0.3),
    }
    assert set(direct) == set(BRIDGE_SAMPLERS)
    for name, expected in direct.items():
        sampler = bridge_sampler(name, eta=0.3 if name == "dbim" else 0.0)
        assert torch.equal(sampler(nonlinear_denoiser, y, times, step_noise.__getitem__), expected), name
        assert sampler.stochastic == (name in ("i2sb", "dbim"))


def test_the_table_refuses_unknown_names_and_eta_outside_dbim() -> None:
    with pytest.raises(ValueError, match="unknown bridge sampler 'ddpm'.*alpha-ratio"):
        bridge_sampler("ddpm")
    with pytest.raises(ValueError, match="eta applies to the dbim sampler only"):
        bridge_sampler("i2sb", eta=0.5)
    with pytest.raises(ValueError, match=r"eta must lie in \[0, 1\]"):
        bridge_sampler("dbim", eta=2.0)
