"""DBIM, diffusion bridge implicit models (Zheng et al., ICLR 2025): a non-Markovian bridge sampler with a
stochasticity knob η ∈ [0, 1], for bridges with noise (c_t > 0 between the endpoints).

Booting step (the bridge is singular at t = 1, where c_1 = 0): x̂0 = D(y, 1), x_{t_1} = a·y + b·x̂0 + c·z.
Step s → t (t < s), with ω = η·(std of q(x_t | x_s, x0)) and r = √(c_t² − ω²)/c_s:
    x_t = (b_t − r·b_s)·x̂0 + (a_t − r·a_s)·y + r·x_s + ω·z,   x̂0 = D(x_s, s),   no noise on the last step.
η = 0 is the deterministic (DDIM-like) sampler; η = 1 is the ancestral posterior step, for the I2SB bridge exactly the
stochastic I2SB step. The final step to t = 0 (c_0 = 0, b_0 = 1) returns x̂0. NFE = len(times) − 1, booting included.
"""

from __future__ import annotations

import math

import torch

from rsinfer.samplers.bridge_schedules import BridgeSchedule, Denoiser, check_times


def boot(x0_hat: torch.Tensor, y: torch.Tensor, t: float, schedule: BridgeSchedule,
         noise: torch.Tensor) -> torch.Tensor:
    """The booting step: a draw from the bridge marginal q(x_t | x̂0, y)."""
    a, b, c = (float(v) for v in schedule.coefficients(t))
    return a * y + b * x0_hat + c * noise


def step(x_s: torch.Tensor, x0_hat: torch.Tensor, y: torch.Tensor, s: float, t: float, schedule: BridgeSchedule,
         eta: float, noise: torch.Tensor | None = None) -> torch.Tensor:
    """One DBIM step from s to t < s; `noise` is needed when η > 0 and t > 0."""
    if not 0 <= eta <= 1:
        raise ValueError(f"DBIM eta must lie in [0, 1], got {eta}")
    a_s, b_s, c_s = (float(v) for v in schedule.coefficients(s))
    a_t, b_t, c_t = (float(v) for v in schedule.coefficients(t))
    if not 0 <= t < s or c_s <= 0:
        raise ValueError(f"a DBIM step needs 0 ≤ t < s and c_s > 0 (a bridge with noise), got s={s}, t={t}, c_s={c_s}")
    omega = eta * float(schedule.posterior_std(t, s))
    r = math.sqrt(max(c_t * c_t - omega * omega, 0.0)) / c_s
    x_t = (b_t - r * b_s) * x0_hat + (a_t - r * a_s) * y + r * x_s
    if omega == 0:
        return x_t
    if noise is None:
        raise ValueError("a stochastic DBIM step (eta > 0, t > 0) needs noise")
    return x_t + omega * noise


def sample(denoise: Denoiser, y: torch.Tensor, schedule: BridgeSchedule, times: torch.Tensor, eta: float = 0.0,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Booting at times[0] = 1, then DBIM steps down `times` to 0; the booting noise is `generator`'s first draw."""
    times = check_times(times)
    if not 0 <= eta <= 1:
        raise ValueError(f"DBIM eta must lie in [0, 1], got {eta}")
    if len(times) > 2 and float(schedule.coefficients(float(times[1]))[2]) <= 0:
        raise ValueError(f"DBIM needs a bridge with noise (c_t > 0 inside (0, 1)); {type(schedule).__name__} has none: "
                         "use the α-ratio sampler for a deterministic bridge")

    def draw() -> torch.Tensor:
        return torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)

    x0_hat = denoise(y, 1.0)
    if len(times) == 2:
        return x0_hat
    x = boot(x0_hat, y, float(times[1]), schedule, draw())
    for i in range(1, len(times) - 1):
        s, t = float(times[i]), float(times[i + 1])
        x0_hat = denoise(x, s)
        x = step(x, x0_hat, y, s, t, schedule, eta, draw() if eta > 0 and t > 0 else None)
    return x
