"""DBIM, diffusion bridge implicit models (Zheng et al., ICLR 2025): a non-Markovian bridge sampler with a
stochasticity knob η ∈ [0, 1], for bridges with noise (c_t > 0 between the endpoints).

Booting step (the bridge is singular at t = 1, where c_1 = 0): x̂0 = D(y, 1), x_{t_1} = a·y + b·x̂0 + c·z.
Step t → s (s < t), with ω = η·(std of q(x_s | x_t, x0)) and r = √(c_s² − ω²)/c_t:
    x_s = (b_s − r·b_t)·x̂0 + (a_s − r·a_t)·y + r·x_t + ω·z,   x̂0 = D(x_t, t),   no noise on the last step.
η = 0 is the deterministic (DDIM-like) sampler; η = 1 is the ancestral posterior step, for the I2SB bridge exactly the
stochastic I2SB step. The final step to t = 0 (c_0 = 0, b_0 = 1) returns x̂0. NFE = len(times) − 1, booting included.
"""

from __future__ import annotations

import math

import torch

from rsinfer.samplers.bridge_schedules import BridgeSchedule, Denoiser, NoiseFn, check_times


def boot(x0_hat: torch.Tensor, y: torch.Tensor, t: float, schedule: BridgeSchedule,
         noise: torch.Tensor) -> torch.Tensor:
    """The booting step: a draw from the bridge marginal q(x_t | x̂0, y)."""
    a, b, c = (float(v) for v in schedule.coefficients(t))
    return a * y + b * x0_hat + c * noise


def step(x_t: torch.Tensor, x0_hat: torch.Tensor, y: torch.Tensor, t: float, s: float, schedule: BridgeSchedule,
         eta: float, noise: torch.Tensor | None = None) -> torch.Tensor:
    """One DBIM step from t to s < t; `noise` is needed when η > 0 and s > 0."""
    if not 0 <= eta <= 1:
        raise ValueError(f"DBIM eta must lie in [0, 1], got {eta}")
    a_t, b_t, c_t = (float(v) for v in schedule.coefficients(t))
    a_s, b_s, c_s = (float(v) for v in schedule.coefficients(s))
    if not 0 <= s < t or c_t <= 0:
        raise ValueError(f"a DBIM step needs 0 ≤ s < t and c_t > 0 (a bridge with noise), got t={t}, s={s}, c_t={c_t}")
    omega = eta * float(schedule.posterior_std(t, s))
    r = math.sqrt(max(c_s * c_s - omega * omega, 0.0)) / c_t
    x_s = (b_s - r * b_t) * x0_hat + (a_s - r * a_t) * y + r * x_t
    if omega == 0:
        return x_s
    if noise is None:
        raise ValueError("a stochastic DBIM step (eta > 0, s > 0) needs noise")
    return x_s + omega * noise


def sample(denoise: Denoiser, y: torch.Tensor, schedule: BridgeSchedule, times: torch.Tensor,
           noise: NoiseFn | None = None, *, eta: float = 0.0) -> torch.Tensor:
    """Booting at times[0] = 1 with `noise(0)`, then DBIM steps down `times` to 0; the step from times[i] draws
    `noise(i)` when η > 0."""
    times = check_times(times)
    if not 0 <= eta <= 1:
        raise ValueError(f"DBIM eta must lie in [0, 1], got {eta}")
    if len(times) > 2 and float(schedule.coefficients(float(times[1]))[2]) <= 0:
        raise ValueError(f"DBIM needs a bridge with noise (c_t > 0 inside (0, 1)); {type(schedule).__name__} has none: "
                         "use the α-ratio sampler for a deterministic bridge")
    if noise is None and len(times) > 2:
        raise ValueError("DBIM sampling with more than one step needs noise (its booting step draws from the bridge)")
    x0_hat = denoise(y, 1.0)
    if len(times) == 2:
        return x0_hat
    x = boot(x0_hat, y, float(times[1]), schedule, noise(0))
    for i in range(1, len(times) - 1):
        t, s = float(times[i]), float(times[i + 1])
        x0_hat = denoise(x, t)
        x = step(x, x0_hat, y, t, s, schedule, eta, noise(i) if eta > 0 and s > 0 else None)
    return x
