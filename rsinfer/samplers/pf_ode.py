"""Probability-flow ODE solvers for epsilon-prediction VP diffusion models, by name.

Every solver maps x at t = 1 to x at t = 1e-3 with exactly `nfe` model calls:

- ``dpm-solver++3s``: singlestep order 3 on a time-uniform grid, COP-GEN-Beta's official sampler (50 NFE there);
- ``dpm-solver++2m``: multistep order 2 on a logSNR-uniform grid, good from ~15 NFE;
- ``unipc``: UniPC-3 (bh2) predictor-corrector on a logSNR-uniform grid, good from ~10 NFE.

`bench/samplers.py` measures each against the exact solution on Gaussian data (bench/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from rsinfer.samplers.dpm_solver import dpm_solver_pp_3s
from rsinfer.samplers.dpm_solver_2m import dpm_solver_pp_2m
from rsinfer.samplers.names import PF_ODE_SAMPLERS, PfOdeSampler
from rsinfer.samplers.unipc import unipc
from rsinfer.samplers.vp_schedule import EpsModel, VPSchedule

SamplerName = PfOdeSampler
SAMPLER_NAMES: tuple[str, ...] = PF_ODE_SAMPLERS

_SOLVERS: dict[str, Callable[[EpsModel, torch.Tensor, VPSchedule, int], torch.Tensor]] = {
    "dpm-solver++3s": dpm_solver_pp_3s,
    "dpm-solver++2m": dpm_solver_pp_2m,
    "unipc": unipc,
}


def solve_pf_ode(sampler: SamplerName, eps_model: EpsModel, x: torch.Tensor, schedule: VPSchedule,
                 nfe: int) -> torch.Tensor:
    """Denoise `x` (pure noise at t = 1) to t = 1e-3 with the named solver and `nfe` calls of `eps_model(x, t)`."""
    if sampler not in _SOLVERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {SAMPLER_NAMES}")
    if nfe < 1:
        raise ValueError(f"steps must be at least 1, got {nfe}")
    return _SOLVERS[sampler](eps_model, x, schedule, nfe)
