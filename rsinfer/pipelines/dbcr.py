"""DB-CR cloud removal on tensors: a cloudy Sentinel-2 tile + Sentinel-1 in, a clear 13-band tile out.

`DbCr.restore(cloudy, sar, windows)`: run a bridge sampler (`rsinfer.samplers.bridge_samplers`, by name) from the
cloudy image y = x_1 down to x_0 with the network as the x0-denoiser, served by an engine (`rsinfer.engines`). The
``decloud`` scene pipeline (`rsinfer.pipelines.decloud`) adds normalisation and the scene engine.

Samplers (`SamplerName`):
- ``alpha-ratio`` (default, DB-CR's own): the deterministic sine bridge x_t = α_t·y + (1 − α_t)·x0, α_t = sin(πt/2).
- ``i2sb``, ``i2sb-ode``, ``dbim``: the I2SB bridge (symmetric β schedule, σ_1² ≈ 0.14) with its posterior step,
  its OT-ODE, or DBIM with `eta`. DB-CR's network is trained on the noise-free bridge; these exist for bridge networks
  trained with noise and for comparison. Every schedule's α_t is handed to the network as the time at which its sine
  α equals it, t = (2T/π)·asin(α_t), so the network always sees the interpolation weight it was trained on.

Randomness: the noise of step i for a tile is `rsinfer.tiling.batch_noise(seed, "dbcr", i, windows, 13)`, a pure
function of the seed and the tile's place on the output grid, so a stochastic run is identical for any batch size,
tile order, skipped tiles or number of workers.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from rsinfer.engines import Engine, EngineKind, GraphSignature, MemoryFormat, Precision, TensorSpec, create_engine
from rsinfer.engines.onnxruntime_engine import ThreadWait
from rsinfer.models import build, load
from rsinfer.models.dbcr import DbCrNet
from rsinfer.ops import Backend
from rsinfer.pipelines.microbatch import in_microbatches
from rsinfer.samplers.bridge_samplers import BridgeSampler, bridge_sampler
from rsinfer.samplers.bridge_schedules import uniform_times
from rsinfer.samplers.names import BRIDGE_SAMPLERS, BridgeSamplerName
from rsinfer.pipelines.vocabulary import S1Scale
from rsinfer.tiling import Window, batch_noise

SamplerName = BridgeSamplerName
SAMPLERS: tuple[str, ...] = BRIDGE_SAMPLERS
MAX_STEPS = 50
NOISE_STREAM = "dbcr"

DBCR_SIGNATURE = GraphSignature(
    inputs=(TensorSpec("x_t", ("batch", 13, "height", "width")), TensorSpec("sar", ("batch", 2, "height", "width")),
            TensorSpec("t", ("batch",))),
    output=TensorSpec("x0", ("batch", 13, "height", "width")),
)


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
        if not isinstance(self.steps, int) or isinstance(self.steps, bool) or not 1 <= self.steps <= MAX_STEPS:
            raise ValueError(f"steps must be an integer in 1..{MAX_STEPS}, got {self.steps!r}")
        bridge_sampler(self.sampler, self.eta)  # η in [0, 1], and for dbim only

    @property
    def bridge(self) -> BridgeSampler:
        return bridge_sampler(self.sampler, self.eta)


class DbCr:
    """The DB-CR network behind an engine, restoring tiles with a sampling plan.

    engine, precision, memory_format, backend, cache_dir, threads, thread_wait: see `rsinfer.engines.create_engine`.
    tile, batch_size: the tile side and batch the engine is prepared for (the ONNX export example, TensorRT profiles).
    weights: what the parameters are, as a `PipelineSpec` weights string ("random:SEED" or the checkpoint path).
    """

    def __init__(self, net: DbCrNet, plan: SamplingPlan = SamplingPlan(), engine: EngineKind = "torch",
                 precision: Precision = "float32", cache_dir: str | os.PathLike | None = None,
                 threads: int | None = None, tile: int = 256, batch_size: int = 4, weights: str = "random:0",
                 memory_format: MemoryFormat | None = None, backend: Backend = "auto",
                 thread_wait: ThreadWait = "spin") -> None:
        self.net, self.plan, self.weights = net.eval(), plan, weights
        self.tile, self.batch_size = tile, batch_size
        self.sampler = plan.bridge
        example = (torch.rand(1, 13, tile, tile), torch.rand(1, 2, tile, tile), torch.full((1,), 1000.0))
        self.engine: Engine = create_engine(engine, self.net, DBCR_SIGNATURE, example, precision=precision,
                                            memory_format=memory_format, backend=backend, cache_dir=cache_dir,
                                            threads=threads, thread_wait=thread_wait, tile_sizes=((tile, tile),),
                                            max_batch=batch_size)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, network: dict | None = None, **kwargs) -> DbCr:
        """Load weights in rsinfer's DB-CR key layout (strict; see `rsinfer.models.dbcr`); `network`: config
        overrides of a non-default size."""
        return cls(load("dbcr", path, **(network or {})), weights=os.fspath(path), **kwargs)

    @classmethod
    def with_random_weights(cls, seed: int = 0, network: dict | None = None, **kwargs) -> DbCr:
        """A seeded, untrained network: for smoke runs and benchmarks; its output is not a cloud-free image."""
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            net = build("dbcr", **(network or {}))
        return cls(net, weights=f"random:{seed}", **kwargs)

    def with_plan(self, plan: SamplingPlan) -> DbCr:
        """The same network and engine (no new export or compilation) under another sampling plan."""
        other = copy.copy(self)
        other.plan, other.sampler = plan, plan.bridge
        return other

    def _network_time(self, t: float, batch: int) -> torch.Tensor:
        alpha = min(max(float(self.sampler.schedule.alpha(t)), 0.0), 1.0)
        timesteps = self.net.config.timesteps
        return torch.full((batch,), 2 * timesteps / math.pi * math.asin(alpha), dtype=torch.float32)

    def restore(self, cloudy: torch.Tensor, sar: torch.Tensor, windows: Sequence[Window] | None = None,
                network_batch: int | None = None) -> torch.Tensor:
        """cloudy (B, 13, H, W) reflectance in [0, 1], sar (B, 2, H, W) in [0, 1] → x̂0 (B, 13, H, W).

        windows: each sample's place on the output grid, which seeds its noise (stochastic samplers); None: the
        tensors are whole grids, Window(0, 0, H, W) each.
        network_batch: run the network in calls of exactly this many samples (`rsinfer.pipelines.microbatch`), so the
        result does not depend on B; None: one call for the whole batch.
        """
        batch, _, height, width = cloudy.shape

        def network(x_t: torch.Tensor, sar_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.engine(x_t, sar_t, t)

        def denoise(x_t: torch.Tensor, t: float) -> torch.Tensor:
            inputs = (x_t, sar, self._network_time(t, batch))
            return network(*inputs) if network_batch is None else in_microbatches(network, inputs, network_batch)

        noise = None
        if self.sampler.stochastic:
            places = list(windows) if windows is not None else [Window(0, 0, height, width)] * batch
            if len(places) != batch:
                raise ValueError(f"{len(places)} windows for a batch of {batch} tiles")

            def noise(step: int) -> torch.Tensor:
                return batch_noise(self.plan.seed, NOISE_STREAM, step, places, cloudy.shape[1],
                                   size=(height, width)).to(cloudy)

        return self.sampler(denoise, cloudy, uniform_times(self.plan.steps), noise)

    def run_scene(self, s2: str | os.PathLike, s1: str | os.PathLike, output: str | os.PathLike, *,
                  s1_scale: S1Scale = "auto", overlap: int = 32,
                  preview: str | os.PathLike | None = None, overwrite: bool = False, progress: bool = True):
        """Deprecated: the ``decloud`` pipeline, `rsinfer.pipelines.run(Decloud.around(dbcr), {"s2": s2, "s1": s1},
        output, tiling=Tiling(tile, overlap, "cosine", batch_size), ...)`."""
        from rsinfer.engines.base import warn_deprecated
        from rsinfer.io import OutputOptions
        from rsinfer.pipelines.decloud import Decloud
        from rsinfer.pipelines.runner import run
        from rsinfer.tiling import Tiling

        warn_deprecated("DbCr.run_scene", "rsinfer.pipelines.run(Decloud.around(dbcr), inputs, output, ...)")
        return run(Decloud.around(self, s1_scale=s1_scale), {"s2": s2, "s1": s1}, output,
                   tiling=Tiling(self.tile, overlap, "cosine", self.batch_size),
                   output_options=OutputOptions(overwrite=overwrite), preview=preview, progress=progress)
