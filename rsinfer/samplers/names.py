"""Sampler names by family (importable without torch).

- `PfOdeSampler`: probability-flow ODE solvers of ε-prediction diffusion models (COP-GEN-Beta; `pf_ode`);
- `BridgeSamplerName`: bridge samplers from a degraded image to a clean one (DB-CR; `bridge_samplers`).
"""

from typing import Literal, get_args

PfOdeSampler = Literal["dpm-solver++3s", "dpm-solver++2m", "unipc"]
PF_ODE_SAMPLERS: tuple[str, ...] = get_args(PfOdeSampler)
BridgeSamplerName = Literal["alpha-ratio", "i2sb", "i2sb-ode", "dbim"]
BRIDGE_SAMPLERS: tuple[str, ...] = get_args(BridgeSamplerName)
