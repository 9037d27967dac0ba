"""Bridge samplers by name, one call signature: `sampler(denoise, y, times, noise) -> x̂0`.

| name          | schedule                     | step                                        | noise       |
|---------------|------------------------------|---------------------------------------------|-------------|
| ``alpha-ratio`` | DB-CR's sine bridge        | α-ratio (DB-CR, InDI)                       | none        |
| ``i2sb``        | I2SB's symmetric β bridge  | I2SB posterior step                         | every step  |
| ``i2sb-ode``    | I2SB's symmetric β bridge  | I2SB OT-ODE (= α-ratio on that bridge)      | none        |
| ``dbim``        | I2SB's symmetric β bridge  | DBIM with η (`bridge_sampler(name, eta)`)   | boot, η > 0 |

`noise(i)` is the standard normal draw of the transition from times[i] (`NoiseFn`); a pipeline makes it from the
seed and the tile's place on the output grid, so results do not depend on how tiles are batched or ordered.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from rsinfer.samplers import alpha_ratio, dbim, i2sb
from rsinfer.samplers.bridge_schedules import BridgeSchedule, Denoiser, NoiseFn, dbcr_sine, i2sb_symmetric
from rsinfer.samplers.names import BRIDGE_SAMPLERS

SampleFn = Callable[[Denoiser, torch.Tensor, BridgeSchedule, torch.Tensor, "NoiseFn | None"], torch.Tensor]


@dataclass(frozen=True)
class BridgeSampler:
    """A named bridge sampler bound to its schedule."""

    name: str
    schedule: BridgeSchedule
    sample_fn: SampleFn
    stochastic: bool

    def __call__(self, denoise: Denoiser, y: torch.Tensor, times: torch.Tensor,
                 noise: NoiseFn | None = None) -> torch.Tensor:
        return self.sample_fn(denoise, y, self.schedule, times, noise)


_TABLE: dict[str, Callable[[float], BridgeSampler]] = {
    "alpha-ratio": lambda eta: BridgeSampler("alpha-ratio", dbcr_sine(), alpha_ratio.sample, False),
    "i2sb": lambda eta: BridgeSampler("i2sb", i2sb_symmetric(), functools.partial(i2sb.sample, mode="stochastic"),
                                      True),
    "i2sb-ode": lambda eta: BridgeSampler("i2sb-ode", i2sb_symmetric(), functools.partial(i2sb.sample, mode="ot_ode"),
                                          False),
    "dbim": lambda eta: BridgeSampler("dbim", i2sb_symmetric(), functools.partial(dbim.sample, eta=eta), True),
}
assert tuple(_TABLE) == BRIDGE_SAMPLERS, "the table and rsinfer.samplers.names list the same samplers"


def bridge_sampler(name: str, eta: float = 0.0) -> BridgeSampler:
    """The sampler `name` (η applies to ``dbim`` only; another sampler with η ≠ 0 is an error)."""
    if name not in _TABLE:
        raise ValueError(f"unknown bridge sampler {name!r}; choose one of {BRIDGE_SAMPLERS}")
    if not 0 <= eta <= 1:
        raise ValueError(f"eta must lie in [0, 1], got {eta}")
    if eta and name != "dbim":
        raise ValueError(f"eta applies to the dbim sampler only, not {name!r}")
    return _TABLE[name](eta)
