"""DB-CR cloud removal: a cloudy Sentinel-2 scene + Sentinel-1 in, a clear 13-band (or 12-band L2A) scene out.

Per tile: normalise (`rsinfer.pipelines.sentinel`), run a bridge sampler from the cloudy image y = x_1 down to x_0
with the network as the x0-denoiser, served by an engine (`rsinfer.engines`), and map back to DN. Whole scenes go
through the scene engine (`rsinfer.scene.run_scene`) on the S2 grid; S1 on another grid/CRS is resampled onto it.

Samplers (`SamplerName`):
- ``alpha-ratio`` (default, DB-CR's own): the deterministic sine bridge x_t = α_t·y + (1 − α_t)·x0, α_t = sin(πt/2).
- ``i2sb``, ``i2sb-ode``, ``dbim``: the I2SB bridge (symmetric β schedule, σ_1² ≈ 0.14) with its posterior step,
  its OT-ODE, or DBIM with `eta`. DB-CR's network is trained on the noise-free bridge; these exist for bridge networks
  trained with noise and for comparison. Every schedule's α_t is handed to the network as the time at which its sine
  α equals it, t = (2T/π)·asin(α_t), so the network always sees the interpolation weight it was trained on.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch

from rsinfer.engines import Engine, EngineKind, GraphSignature, MemoryFormat, Precision, TensorSpec, create_engine
from rsinfer.io import open_raster
from rsinfer.models import build, load
from rsinfer.models.dbcr import DbCrNet
from rsinfer.pipelines.preview import write_png
from rsinfer.pipelines.sentinel import (S1Scale, S2Layout, denormalise_s2, detect_s1_scale, normalise_s1,
                                        normalise_s2, s2_layout)
from rsinfer.samplers import alpha_ratio, dbim, i2sb
from rsinfer.samplers.bridge_schedules import BridgeSchedule, dbcr_sine, i2sb_symmetric, uniform_times
from rsinfer.scene import OutputSummary, run_scene

SamplerName = Literal["alpha-ratio", "i2sb", "i2sb-ode", "dbim"]
SAMPLERS: tuple[str, ...] = get_args(SamplerName)
MAX_STEPS = 50

DBCR_SIGNATURE = GraphSignature(
    inputs=(TensorSpec("x_t", ("batch", 13, "height", "width")), TensorSpec("sar", ("batch", 2, "height", "width")),
            TensorSpec("t", ("batch",))),
    output=TensorSpec("x0", ("batch", 13, "height", "width")),
)


def schedule_for(sampler: SamplerName) -> BridgeSchedule:
    return dbcr_sine() if sampler == "alpha-ratio" else i2sb_symmetric()


@dataclass(frozen=True)
class SamplingPlan:
    """How each tile is restored: sampler, network evaluations (steps), DBIM's η, and the noise seed."""

    sampler: SamplerName = "alpha-ratio"
    steps: int = 1
    eta: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose one of {SAMPLERS}")
        if not isinstance(self.steps, int) or not 1 <= self.steps <= MAX_STEPS:
            raise ValueError(f"steps must be an integer in 1..{MAX_STEPS}, got {self.steps!r}")
        if not 0 <= self.eta <= 1:
            raise ValueError(f"eta must lie in [0, 1], got {self.eta}")
        if self.eta and self.sampler != "dbim":
            raise ValueError(f"eta applies to the dbim sampler only, not {self.sampler!r}")


class DbCr:
    """The DB-CR pipeline over a network served by an engine."""

    def __init__(self, net: DbCrNet, plan: SamplingPlan = SamplingPlan(), engine: EngineKind = "torch",
                 precision: Precision = "fp32", cache_dir: str | os.PathLike | None = None, threads: int | None = None,
                 tile: int = 256, batch_size: int = 4, weights: str = "random",
                 memory_format: MemoryFormat | None = None) -> None:
        self.net, self.plan, self.weights = net.eval(), plan, weights
        self.tile, self.batch_size = tile, batch_size
        self.schedule = schedule_for(plan.sampler)
        example = (torch.rand(1, 13, tile, tile), torch.rand(1, 2, tile, tile), torch.full((1,), 1000.0))
        self.engine: Engine = create_engine(engine, self.net, DBCR_SIGNATURE, example, precision=precision,
                                            memory_format=memory_format, cache_dir=cache_dir, threads=threads,
                                            tile_sizes=((tile, tile),), max_batch=batch_size)
        self._generator = torch.Generator().manual_seed(plan.seed)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **kwargs) -> DbCr:
        """Load weights in rsinfer's DB-CR key layout (strict; see `rsinfer.models.dbcr`)."""
        return cls(load("dbcr", path), weights=str(path), **kwargs)

    @classmethod
    def with_random_weights(cls, seed: int = 0, **kwargs) -> DbCr:
        """A seeded, untrained network: for smoke runs and benchmarks; its output is not a cloud-free image."""
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            net = build("dbcr")
        return cls(net, weights="random", **kwargs)

    def with_plan(self, plan: SamplingPlan) -> DbCr:
        """The same network and engine (no new export or compilation) under another sampling plan."""
        other = copy.copy(self)
        other.plan, other.schedule = plan, schedule_for(plan.sampler)
        other._generator = torch.Generator().manual_seed(plan.seed)
        return other

    def _network_time(self, t: float, batch: int) -> torch.Tensor:
        alpha = min(max(float(self.schedule.alpha(t)), 0.0), 1.0)
        timesteps = self.net.config.timesteps
        return torch.full((batch,), 2 * timesteps / math.pi * math.asin(alpha), dtype=torch.float32)

    def restore(self, cloudy: torch.Tensor, sar: torch.Tensor) -> torch.Tensor:
        """cloudy (B, 13, H, W) reflectance in [0, 1], sar (B, 2, H, W) in [0, 1] → x̂0 (B, 13, H, W)."""
        batch = cloudy.shape[0]

        def denoise(x_t: torch.Tensor, t: float) -> torch.Tensor:
            return self.engine(x_t, sar, self._network_time(t, batch))

        times = uniform_times(self.plan.steps)
        if self.plan.sampler == "alpha-ratio":
            return alpha_ratio.sample(denoise, cloudy, self.schedule, times)
        if self.plan.sampler in ("i2sb", "i2sb-ode"):
            mode = "stochastic" if self.plan.sampler == "i2sb" else "ot_ode"
            return i2sb.sample(denoise, cloudy, self.schedule, times, mode, self._generator)
        return dbim.sample(denoise, cloudy, self.schedule, times, self.plan.eta, self._generator)

    def tile_function(self, layout: S2Layout, s1_scale: S1Scale):
        """The scene engine's fn: {"s2": (B, n, h, w) DN, "s1": (B, 2, h, w)} → (B, n, h, w) DN."""

        def restore_tiles(batch: dict[str, torch.Tensor]) -> torch.Tensor:
            x0 = self.restore(normalise_s2(batch["s2"], layout), normalise_s1(batch["s1"], s1_scale))
            return denormalise_s2(x0, layout)

        restore_tiles.band_descriptions = layout.input_bands
        restore_tiles.out_channels = len(layout.slots)
        restore_tiles.output_tags = {"model": "DB-CR", "weights": self.weights, "sampler": self.plan.sampler,
                                     "steps": str(self.plan.steps), "engine": self.engine.kind,
                                     "precision": self.engine.precision, "s2_level": layout.level,
                                     "s1_scale": s1_scale}
        return restore_tiles

    def run_scene(self, s2: str | os.PathLike, s1: str | os.PathLike, output: str | os.PathLike, *,
                  s1_scale: S1Scale | Literal["auto"] = "auto", overlap: int = 32,
                  preview: str | os.PathLike | None = None, overwrite: bool = False,
                  progress: bool = True) -> OutputSummary:
        """Declould the scene `s2` with `s1` into `output` on the S2 grid, in the S2 input's dtype, bands and nodata;
        tiles of `self.tile` pixels, `self.batch_size` per network call, overlapping by `overlap` (cosine blend)."""
        with open_raster(s2) as dataset:
            layout = s2_layout(dataset.count, dataset.descriptions)
            dtype = dataset.dtypes[0]
        if s1_scale == "auto":
            s1_scale = detect_s1_scale(_decimated_band(s1, 1))
        summary = run_scene(self.tile_function(layout, s1_scale), {"s2": s2, "s1": s1}, output, grid="s2",
                            tile=self.tile, overlap=overlap, batch_size=self.batch_size, dtype=dtype,
                            overwrite=overwrite,
                            progress=progress)
        if preview is not None:
            write_png(preview, _rgb_preview(output, layout), {"model": "DB-CR", "weights": self.weights},
                      banner="RANDOM WEIGHTS" if self.weights == "random" else None)
        return summary


def _decimated_band(path: str | os.PathLike, band: int, side: int = 512) -> torch.Tensor:
    """Band `band` of `path` read at ≤ side × side (nodata as NaN)."""
    with open_raster(path) as dataset:
        scale = max(dataset.height, dataset.width) / side
        shape = (max(1, round(dataset.height / max(scale, 1))), max(1, round(dataset.width / max(scale, 1))))
        values = dataset.read(band, out_shape=shape, masked=True).astype(np.float32).filled(np.nan)
    return torch.from_numpy(values)


def _rgb_preview(path: str | os.PathLike, layout: S2Layout, side: int = 1024) -> torch.Tensor:
    """(3, h, w) uint8 true colour (B4, B3, B2) of a written scene, 2–98 % percentile stretch."""
    rgb = torch.stack([_decimated_band(path, layout.input_bands.index(b) + 1, side) for b in ("B4", "B3", "B2")])
    finite = rgb[torch.isfinite(rgb)]
    if finite.numel() == 0:
        return torch.zeros(3, *rgb.shape[1:], dtype=torch.uint8)
    low, high = torch.quantile(finite[:: max(1, finite.numel() // 100_000)], torch.tensor([0.02, 0.98]))
    scaled = ((rgb - low) / (high - low).clamp_min(1e-6)).nan_to_num(0.0).clamp(0, 1)
    return (scaled * 255).round().to(torch.uint8)
