"""The α-ratio bridge sampler (DB-CR; InDI, Delbracio & Milanfar 2023; I2SB's OT-ODE step).

From time t to s < t: x_s = (1 − α_s/α_t)·x̂0 + (α_s/α_t)·x_t with x̂0 = D(x_t, t). For the deterministic bridge
x_t = α_t·y + (1 − α_t)·x0 this is exact whenever x̂0 is: the states telescope along the bridge. One step per network
evaluation; the last step (s = 0) returns x̂0. With one step the output is D(y, 1) whatever the schedule.
"""

from __future__ import annotations

import torch

from rsinfer.samplers.bridge_schedules import BridgeSchedule, Denoiser, NoiseFn, check_times


def step(x_t: torch.Tensor, x0_hat: torch.Tensor, alpha_t: float, alpha_s: float) -> torch.Tensor:
    """One α-ratio update from α_t to α_s ≤ α_t (α_t > 0)."""
    if not 0 <= alpha_s <= alpha_t or alpha_t <= 0:
        raise ValueError(f"the α-ratio step needs 0 ≤ α_s ≤ α_t and α_t > 0, got α_t={alpha_t}, α_s={alpha_s}")
    ratio = alpha_s / alpha_t
    return (1 - ratio) * x0_hat + ratio * x_t


def sample(denoise: Denoiser, y: torch.Tensor, schedule: BridgeSchedule, times: torch.Tensor,
           noise: NoiseFn | None = None) -> torch.Tensor:
    """Run the bridge from x_1 = y down the grid `times` (1 → 0, see `uniform_times`); NFE = len(times) − 1.

    Deterministic: `noise` (the bridge samplers' common signature) is never drawn."""
    times = check_times(times)
    alphas = schedule.alpha(times)  # float64
    x = y
    for i in range(len(times) - 1):
        x0_hat = denoise(x, float(times[i]))
        x = step(x, x0_hat, float(alphas[i]), float(alphas[i + 1]))
    return x
