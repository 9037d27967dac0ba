"""The cosine noise schedule of Nichol & Dhariwal (2021) and the DDPM quantities a discrete schedule defines.

The schedule discretises ᾱ(τ) = cos²(((τ + s) / (1 + s)) · π/2), τ ∈ [0, 1], offset s = 0.008, into T steps:

    β_i = min(1 − ᾱ((i + 1)/T) / ᾱ(i/T), β_max),   i = 0 … T−1,   β_max = 0.999

and from the betas (all in float64, as the reference implementations do):

    ᾱ_i = ∏_{k≤i} (1 − β_k),   ᾱ_prev,i = ᾱ_{i−1} (ᾱ_prev,0 = 1)
    posterior q(x_{i−1} | x_i, x_0): variance β_i (1 − ᾱ_prev,i) / (1 − ᾱ_i),
        mean coefficients β_i √ᾱ_prev,i / (1 − ᾱ_i) on x_0 and (1 − ᾱ_prev,i) √(1 − β_i) / (1 − ᾱ_i) on x_i.

`signal_level(t)` = √ᾱ_{t−1} (1 for t = 0) is the noise level of *integer* step t in 1-based DDPM notation: the
coefficient of x_0 in x_t = √ᾱ · x_0 + √(1 − ᾱ) · ε (SR3 and CrossDiff call the table of these values
`sqrt_alphas_cumprod_prev`, of length T + 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DiscreteSchedule:
    """A T-step DDPM schedule; every table is float64 of shape (T,)."""

    betas: torch.Tensor

    @property
    def num_steps(self) -> int:
        return self.betas.numel()

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return torch.cumprod(1.0 - self.betas, dim=0)

    @property
    def alphas_cumprod_prev(self) -> torch.Tensor:
        return torch.cat([self.betas.new_ones(1), self.alphas_cumprod[:-1]])

    def signal_level(self, t: int) -> float:
        """√ᾱ before step t, i.e. √(∏_{i<t} (1 − β_i)), for integer t in 0 … T (float64)."""
        if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t <= self.num_steps:
            raise ValueError(f"step t must be an integer in 0..{self.num_steps}, got {t!r}")
        return 1.0 if t == 0 else math.sqrt(float(self.alphas_cumprod[t - 1]))

    def ddpm_quantities(self) -> dict[str, torch.Tensor]:
        """The standard DDPM tables (names of Ho et al.'s reference code), each float64 (T,)."""
        betas, cumprod, cumprod_prev = self.betas, self.alphas_cumprod, self.alphas_cumprod_prev
        posterior_variance = betas * (1.0 - cumprod_prev) / (1.0 - cumprod)
        return {
            "betas": betas,
            "alphas_cumprod": cumprod,
            "alphas_cumprod_prev": cumprod_prev,
            "sqrt_alphas_cumprod": cumprod.sqrt(),
            "sqrt_one_minus_alphas_cumprod": (1.0 - cumprod).sqrt(),
            "log_one_minus_alphas_cumprod": (1.0 - cumprod).log(),
            "sqrt_recip_alphas_cumprod": (1.0 / cumprod).sqrt(),
            "sqrt_recipm1_alphas_cumprod": (1.0 / cumprod - 1.0).sqrt(),
            "posterior_variance": posterior_variance,
            # clipped because the posterior variance is 0 at the first step
            "posterior_log_variance_clipped": posterior_variance.clamp_min(1e-20).log(),
            "posterior_mean_coef1": betas * cumprod_prev.sqrt() / (1.0 - cumprod),
            "posterior_mean_coef2": (1.0 - cumprod_prev) * (1.0 - betas).sqrt() / (1.0 - cumprod),
        }


def cosine_schedule(num_steps: int = 1000, offset: float = 0.008, max_beta: float = 0.999) -> DiscreteSchedule:
    """Nichol-Dhariwal cosine betas (float64), each step's ratio of ᾱ evaluated in double precision."""
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")

    def alpha_bar(tau: float) -> float:
        return math.cos((tau + offset) / (1 + offset) * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar((i + 1) / num_steps) / alpha_bar(i / num_steps), max_beta) for i in range(num_steps)]
    return DiscreteSchedule(torch.tensor(betas, dtype=torch.float64))
