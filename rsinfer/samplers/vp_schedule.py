"""Discrete variance-preserving (VP) noise schedule, read as a continuous-time one (DPM-Solver's "discrete" mode).

A discrete DDPM with betas β_1..β_N defines ᾱ_n = Π_{k≤n} (1 − β_k). Following DPM-Solver (Lu et al. 2022, App. D),
discrete step n sits at continuous time t_n = n / N, and log α(t) = ½ log ᾱ is the piecewise-linear interpolation
of the knots (t_n, ½ log ᾱ_n), extended linearly beyond the first and last knot. From it:

    α_t = exp(log α_t),   σ_t = sqrt(1 − α_t²),   λ_t = log α_t − log σ_t   (half log-SNR)

and λ ↦ t is inverted the same way (piecewise-linear in log α over the flipped knots). All of this runs in float32,
in the same order of operations as the official COP-GEN-Beta sampler, so the times the network sees agree with it
to the last bits, not just to interpolation accuracy.

A network trained on discrete steps n ∈ [0, N] is fed `t · N` (COP-GEN-Beta's convention: `t_cont * 1000`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

# An epsilon-prediction model in continuous time: eps_model(x_t, t) with t a 0-dim float32 tensor in (0, 1].
EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Spacing = Literal["time_uniform", "logSNR"]
SPACINGS: tuple[str, ...] = ("time_uniform", "logSNR")


def scaled_linear_betas(n: int = 1000, start: float = 0.00085, end: float = 0.012) -> torch.Tensor:
    """Stable Diffusion's "scaled linear" betas: linspace(√start, √end, n)², computed in float64, returned float32."""
    return (torch.linspace(start ** 0.5, end ** 0.5, n, dtype=torch.float64) ** 2).float()


def _interpolate(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear y(x) through knots (xp, fp), xp increasing; the end segments extend to ±∞."""
    xp, fp = xp.to(x.device), fp.to(x.device)
    segment = (torch.searchsorted(xp, x.contiguous()) - 1).clamp(0, xp.numel() - 2)
    x0, x1, y0, y1 = xp[segment], xp[segment + 1], fp[segment], fp[segment + 1]
    return y0 + (x - x0) * (y1 - y0) / (x1 - x0)


@dataclass(frozen=True)
class VPSchedule:
    """Continuous-time view of a discrete VP schedule; every method is elementwise over a float32 tensor `t`."""

    t_knots: torch.Tensor          # (N,) = [1/N, 2/N, ..., 1]
    log_alpha_knots: torch.Tensor  # (N,) = ½ log ᾱ_n, decreasing

    @classmethod
    def from_betas(cls, betas: torch.Tensor) -> VPSchedule:
        betas = betas.float()
        n = betas.numel()
        return cls(t_knots=torch.linspace(1.0 / n, 1.0, n), log_alpha_knots=0.5 * torch.log(1 - betas).cumsum(dim=0))

    @property
    def num_steps(self) -> int:
        """N, the number of discrete steps (the network's time unit is t·N)."""
        return self.t_knots.numel()

    def log_alpha(self, t: torch.Tensor) -> torch.Tensor:
        return _interpolate(t, self.t_knots, self.log_alpha_knots)

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.log_alpha(t))

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(1.0 - torch.exp(2.0 * self.log_alpha(t)))

    def lambda_(self, t: torch.Tensor) -> torch.Tensor:
        """Half log-SNR λ_t = log α_t − log σ_t."""
        log_alpha = self.log_alpha(t)
        return log_alpha - 0.5 * torch.log(1.0 - torch.exp(2.0 * log_alpha))

    def inverse_lambda(self, lam: torch.Tensor) -> torch.Tensor:
        """The time t with λ_t = lam (log α = −½ log(1 + e^{−2λ}), then t(log α) from the flipped knots)."""
        log_alpha = -0.5 * torch.logaddexp(torch.zeros(1, device=lam.device), -2.0 * lam)
        return _interpolate(log_alpha, self.log_alpha_knots.flip(0), self.t_knots.flip(0))

    def data_prediction(self, eps_model: EpsModel, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x̂₀ = (x − σ_t ε̂(x, t)) / α_t: the data prediction DPM-Solver++ and UniPC integrate."""
        return (x - self.sigma(t) * eps_model(x, t)) / self.alpha(t)


def stable_diffusion_schedule() -> VPSchedule:
    """The schedule COP-GEN-Beta was trained with: 1000 SD scaled-linear betas."""
    return VPSchedule.from_betas(scaled_linear_betas())


def time_grid(schedule: VPSchedule, intervals: int, spacing: Spacing, t_start: float = 1.0,
              t_end: float = 1e-3) -> torch.Tensor:
    """`intervals + 1` decreasing times from t_start to t_end, uniform in t or in λ (float32, on the CPU)."""
    if intervals < 1:
        raise ValueError(f"a time grid needs at least 1 interval, got {intervals}")
    if spacing == "time_uniform":
        return torch.linspace(t_start, t_end, intervals + 1)
    if spacing == "logSNR":
        lam_start = schedule.lambda_(torch.tensor(t_start)).item()
        lam_end = schedule.lambda_(torch.tensor(t_end)).item()
        return schedule.inverse_lambda(torch.linspace(lam_start, lam_end, intervals + 1))
    raise ValueError(f"unknown time spacing {spacing!r}; choose one of {SPACINGS}")
