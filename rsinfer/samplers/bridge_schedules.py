"""Bridge schedules: the marginal x_t = a_t·y + b_t·x0 + c_t·ε of a bridge from data x0 (t = 0) to the degraded
endpoint y (t = 1), ε ~ N(0, I).

Time is continuous, t ∈ [0, 1] (a network trained on T discrete steps is called with t·T). Every coefficient is computed
in float64 (GUIDE §3; research/dbcr.md §3.8: ratios of small coefficients lose digits in float32). Samplers step from
the current time t to the next time s < t, and every function taking two times takes them in that order (t, s).

Two families cover DB-CR, InDI and I2SB:
- `DeterministicBridge`: x_t = α_t·y + (1 − α_t)·x0, no noise (c ≡ 0). DB-CR uses α_t = sin(πt/2) (`dbcr_sine`).
- `VarianceBridge`: the Brownian-type bridge of I2SB, built from a forward variance σ²(t) (increasing, σ²(0) = 0):
  a_t = σ_t²/σ_1², b_t = 1 − a_t, c_t² = σ_t²·(σ_1² − σ_t²)/σ_1².
In both, α_t ≡ a_t is the quantity of the α-ratio update.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

AlphaShape = Literal["sine", "linear"]


def _float64(t: torch.Tensor | float) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=torch.float64)
    if torch.any((t < 0) | (t > 1)):
        raise ValueError(f"bridge time must lie in [0, 1], got {t.tolist()}")
    return t


def _ordered(t: torch.Tensor | float, s: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    """(t, s) as float64 with s ≤ t: the current time first, the next one second."""
    t, s = _float64(t), _float64(s)
    if torch.any(s > t):
        raise ValueError(f"times go from t to s ≤ t (current first, next second), got t={t.tolist()}, s={s.tolist()}")
    return t, s


@dataclass(frozen=True)
class DeterministicBridge:
    """x_t = α_t·y + (1 − α_t)·x0, α(0) = 0, α(1) = 1: "sine" α_t = sin(πt/2) (DB-CR) or "linear" α_t = t (InDI)."""

    shape: AlphaShape = "sine"

    def __post_init__(self) -> None:
        if self.shape not in ("sine", "linear"):
            raise ValueError(f"alpha shape {self.shape!r} is not one of ('sine', 'linear')")

    def alpha(self, t: torch.Tensor | float) -> torch.Tensor:
        t = _float64(t)
        return torch.sin(0.5 * math.pi * t) if self.shape == "sine" else t

    def coefficients(self, t: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(a_t, b_t, c_t) in float64."""
        a = self.alpha(t)
        return a, 1 - a, torch.zeros_like(a)

    def posterior_std(self, t: torch.Tensor | float, s: torch.Tensor | float) -> torch.Tensor:
        """Std of q(x_s | x_t, x0) for s < t: zero, the bridge is deterministic."""
        t, s = _ordered(t, s)
        return torch.zeros_like(s)


@dataclass(frozen=True)
class VarianceBridge:
    """I2SB's bridge from a piecewise-constant β on an N-cell grid over [0, 1]: σ²(t) = ∫₀ᵗ β, linear inside each cell.

    `betas` are the per-cell increments (float64 tuple); use `i2sb_symmetric` or `brownian` to build one.
    """

    betas: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.betas or any(b <= 0 for b in self.betas):
            raise ValueError("a variance bridge needs at least one cell and positive betas")

    def _cumulative(self) -> torch.Tensor:
        return torch.cat([torch.zeros(1, dtype=torch.float64),
                          torch.tensor(self.betas, dtype=torch.float64).cumsum(0)])  # (N+1,)

    @property
    def total_variance(self) -> float:
        """σ_1² = Σ β (the same float64 cumulative sum as `variance(1)`, so a_1 = 1 exactly)."""
        return float(self._cumulative()[-1])

    def variance(self, t: torch.Tensor | float) -> torch.Tensor:
        """σ²(t): the cumulative sum of β, linearly interpolated inside a cell (exact for a constant β per cell)."""
        t = _float64(t)
        cumulative = self._cumulative()
        position = t * len(self.betas)
        cell = position.floor().clamp(max=len(self.betas) - 1).long()
        frac = position - cell
        return cumulative[cell] + frac * (cumulative[cell + 1] - cumulative[cell])

    def alpha(self, t: torch.Tensor | float) -> torch.Tensor:
        return self.variance(t) / self.total_variance

    def coefficients(self, t: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(a_t, b_t, c_t) in float64."""
        var, total = self.variance(t), self.total_variance
        a = var / total
        return a, 1 - a, (var * (total - var) / total).clamp_min(0).sqrt()

    def posterior_std(self, t: torch.Tensor | float, s: torch.Tensor | float) -> torch.Tensor:
        """Std of q(x_s | x_t, x0) for s < t: √(σ_s²(σ_t² − σ_s²)/σ_t²) (the I2SB/DDPM posterior)."""
        t, s = _ordered(t, s)
        var_t, var_s = self.variance(t), self.variance(s)
        return (var_s * (var_t - var_s) / var_t).clamp_min(0).sqrt()


BridgeSchedule = DeterministicBridge | VarianceBridge
Denoiser = Callable[[torch.Tensor, float], torch.Tensor]
"""D(x_t, t) → x̂0: the network's estimate of the clean image from the bridge state at time t ∈ [0, 1]."""
NoiseFn = Callable[[int], torch.Tensor]
"""noise(i) → standard normal noise shaped like the state, for the i-th transition of a sampler's time grid (the same i
always gives the same draw: pipelines derive it from the seed and the tile's place on the output grid)."""


def generator_noise(like: torch.Tensor, generator: torch.Generator | None = None) -> NoiseFn:
    """A `NoiseFn` drawing from `generator` in call order (for standalone use; pipelines use grid-anchored noise)."""

    def draw(step: int) -> torch.Tensor:
        return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)

    return draw


def marginal(schedule: BridgeSchedule, x0: torch.Tensor, y: torch.Tensor, t: float,
             noise: torch.Tensor | None = None) -> torch.Tensor:
    """x_t = a_t·y + b_t·x0 + c_t·noise (noise defaults to zero: the bridge mean)."""
    a, b, c = (float(v) for v in schedule.coefficients(t))
    x_t = a * y + b * x0
    return x_t if noise is None else x_t + c * noise


def dbcr_sine() -> DeterministicBridge:
    """DB-CR's bridge: x_t = sin(πt/2)·y + (1 − sin(πt/2))·x0."""
    return DeterministicBridge("sine")


def i2sb_symmetric(steps: int = 1000, beta_max: float = 0.3, beta_min: float = 1e-4) -> VarianceBridge:
    """I2SB's schedule (NVlabs/I2SB runner): √β ramps linearly from √β_min towards √(β_max/steps) over `steps` points,
    the first half of that ramp is kept and mirrored, so β peaks mid-way at about a third of β_max/steps.

    For odd `steps` the middle cell belongs to the rising half.
    """
    if steps < 2:
        raise ValueError(f"the I2SB schedule needs at least 2 steps, got {steps}")
    ramp = torch.linspace(beta_min ** 0.5, (beta_max / steps) ** 0.5, steps, dtype=torch.float64) ** 2
    rising = ramp[: (steps + 1) // 2]
    betas = torch.cat([rising, rising[: steps // 2].flip(0)])
    return VarianceBridge(tuple(betas.tolist()))


def brownian(total_variance: float = 1.0) -> VarianceBridge:
    """Constant β: σ_t² = t·σ_1², so a_t = t, b_t = 1 − t, c_t² = σ_1²·t(1 − t) (research/dbcr.md §3.8 fact 5)."""
    if total_variance <= 0:
        raise ValueError(f"total variance must be positive, got {total_variance}")
    return VarianceBridge((float(total_variance),))


def uniform_times(steps: int) -> torch.Tensor:
    """`steps`+1 descending times 1 = t_0 > t_1 > … > t_steps = 0, evenly spaced (float64)."""
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer ≥ 1, got {steps!r}")
    return torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)


def check_times(times: torch.Tensor) -> torch.Tensor:
    """Validate a sampler's time grid: float64, strictly descending from 1 to 0, at least 2 points."""
    times = torch.as_tensor(times, dtype=torch.float64)
    if times.dim() != 1 or times.numel() < 2 or times[0] != 1 or times[-1] != 0 or torch.any(times[1:] >= times[:-1]):
        raise ValueError(f"times must descend strictly from 1 to 0 with at least 2 points, got {times.tolist()}")
    return times
