"""I2SB (Liu et al., ICML 2023): the posterior step of a Brownian-type bridge, stochastic or as the OT-ODE.

From t to s < t, with the forward variances σ² of a `VarianceBridge` (for a `DeterministicBridge`, σ² ∝ α):
    x_s = (1 − σ_s²/σ_t²)·x̂0 + (σ_s²/σ_t²)·x_t + √(σ_s²(σ_t² − σ_s²)/σ_t²)·z,   z ~ N(0, I), no noise on the last step.
"ot_ode" drops z: the step is then exactly the α-ratio update (σ_s²/σ_t² = α_s/α_t). The stochastic step tends to the
α-ratio update as the bridge variance σ_1² → 0.
"""

from __future__ import annotations

from typing import Literal

import torch

from rsinfer.samplers.bridge_schedules import BridgeSchedule, Denoiser, NoiseFn, check_times

Mode = Literal["stochastic", "ot_ode"]


def step(x_t: torch.Tensor, x0_hat: torch.Tensor, t: float, s: float, schedule: BridgeSchedule, mode: Mode,
         noise: torch.Tensor | None = None) -> torch.Tensor:
    """One I2SB step from t to s < t; `noise` (standard normal) is needed for stochastic steps to s > 0."""
    if mode not in ("stochastic", "ot_ode"):
        raise ValueError(f"I2SB mode {mode!r} is not one of ('stochastic', 'ot_ode')")
    alpha_t, alpha_s = float(schedule.alpha(t)), float(schedule.alpha(s))
    if not 0 <= alpha_s <= alpha_t or alpha_t <= 0:
        raise ValueError(f"an I2SB step needs 0 ≤ s < t with σ_t > 0, got t={t}, s={s}")
    ratio = alpha_s / alpha_t
    x_s = (1 - ratio) * x0_hat + ratio * x_t
    std = float(schedule.posterior_std(t, s))
    if mode == "ot_ode" or s == 0 or std == 0:
        return x_s
    if noise is None:
        raise ValueError("a stochastic I2SB step to s > 0 needs noise")
    return x_s + std * noise


def sample(denoise: Denoiser, y: torch.Tensor, schedule: BridgeSchedule, times: torch.Tensor,
           noise: NoiseFn | None = None, *, mode: Mode = "stochastic") -> torch.Tensor:
    """Run the bridge from x_1 = y down the grid `times` (1 → 0); NFE = len(times) − 1. Returns x_0 = the last x̂0.

    The stochastic step from times[i] draws `noise(i)`."""
    times = check_times(times)
    if mode == "stochastic" and noise is None and len(times) > 2:
        raise ValueError("stochastic I2SB sampling with more than one step needs noise")
    x = y
    for i in range(len(times) - 1):
        t, s = float(times[i]), float(times[i + 1])
        x0_hat = denoise(x, t)
        x = step(x, x0_hat, t, s, schedule, mode, noise(i) if mode == "stochastic" and s > 0 else None)
    return x
