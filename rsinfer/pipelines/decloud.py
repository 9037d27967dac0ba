"""The ``decloud`` pipeline: DB-CR cloud removal of a Sentinel-2 scene fused with Sentinel-1.

Inputs: ``s2``, the cloudy Sentinel-2 scene (13 bands L1C, or 12 bands L2A without B10; identified by band name when
the file describes its bands, else by count in the standard order), and ``s1``, Sentinel-1 VV and VH (dB or linear σ0;
`s1_scale="auto"` decides from the data). Output: on the S2 grid, with the S2 input's bands, order, dtype and nodata,
in DN (reflectance × 10000). Per tile: `rsinfer.pipelines.sentinel` normalisation, `DbCr.restore` with the tile's
windows (its noise is seeded by them), and back to DN. The network runs in micro-batches of a size fixed per scene
(`rsinfer.pipelines.microbatch`), so the raster is bit-identical for any batch size, tile order or number of workers.

Uncertainty: with a stochastic sampler (``i2sb``, or ``dbim``: its η > 0 adds noise at every step, and any η draws
the booting step's) and at least 2 steps, `samples` = K > 1 restores every tile K times, draw k with the noise seed
seed + k, and the output is the per-pixel mean of the K draws; the runner can also write their per-band standard
deviation (`rsinfer.pipelines.uncertainty`). A deterministic sampler, or a single step (the network's first estimate
from the cloudy image), would give K equal draws, so K > 1 with either is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from rsinfer.errors import UsageError
from rsinfer.io import RasterInfo, read_decimated
from rsinfer.pipelines.bands import resolve_bands
from rsinfer.pipelines.contract import (EngineOptions, InputContract, OutputContract, ScenePipeline, ScenePlan,
                                       scene_tile_count)
from rsinfer.pipelines.dbcr import DbCr, SamplerName, SamplingPlan
from rsinfer.pipelines.demo_weights import demo_card
from rsinfer.pipelines.microbatch import balanced_batch
from rsinfer.pipelines.preview import rgb_preview
from rsinfer.pipelines.sentinel import (denormalise_s2, detect_s1_scale, normalise_s1, normalise_s2, s1_bands,
                                        s2_bands, s2_layout)
from rsinfer.pipelines.spec import PipelineSpec
from rsinfer.pipelines.uncertainty import check_samples, stack_draws
from rsinfer.pipelines.vocabulary import S1Scale
from rsinfer.scene import Tiles
from rsinfer.tiling import Tiling


@dataclass(frozen=True)
class DecloudOptions(EngineOptions):
    """sampler, steps, eta, seed: the sampling plan (`SamplingPlan`; seed also seeds random weights). samples: K
    draws (seeds seed … seed + K − 1) whose mean is the output; K > 1 needs a stochastic sampler and 2 steps or more.
    engine, precision, backend, threads, thread_wait, cache_dir: how the network runs (`rsinfer.engines`).
    s1_scale: the S1 values, "auto" to detect from the median VV. network: DB-CR config overrides (a smaller network
    for random weights, or the size of a checkpoint that is not the paper's)."""

    sampler: SamplerName = "alpha-ratio"
    steps: int = 1
    eta: float = 0.0
    seed: int = 0
    samples: int = 1
    s1_scale: S1Scale = "auto"
    network: Mapping[str, Any] | None = None


class Decloud(ScenePipeline):
    name = "decloud"
    model = "DB-CR"
    Options = DecloudOptions
    demo_weights = "dbcr-demo"

    def __init__(self, spec: PipelineSpec, dbcr: DbCr | None = None) -> None:
        super().__init__(spec)
        o = self.options
        sampling = SamplingPlan(o.sampler, o.steps, o.eta, o.seed)
        if check_samples(o.samples) > 1:
            check_draws_differ(sampling, o.samples)
        if dbcr is None:
            kwargs = dict(plan=sampling, engine=o.engine,
                          **o.engine_kwargs(), tile=self.default_tiling.tile,
                          batch_size=self.default_tiling.batch_size,
                          network={**self._preset(), **dict(o.network or {})})
            dbcr = (DbCr.with_random_weights(self.weights.seed, **kwargs) if self.weights.random
                    else DbCr.from_checkpoint(self.weights.file(), **kwargs))
        self.dbcr = dbcr

    def _preset(self) -> dict[str, str]:
        """The network preset demo weights were trained with (their model card's ``preset``)."""
        if self.weights.demo is None:
            return {}
        return {"preset": demo_card(self.weights.demo)["preset"]}

    @classmethod
    def around(cls, dbcr: DbCr, s1_scale: S1Scale = "auto", samples: int = 1) -> Decloud:
        """The pipeline over an existing `DbCr` (its network, engine and sampling plan), `samples` draws."""
        plan = dbcr.plan
        spec = PipelineSpec(cls.name, dbcr.weights, {
            "sampler": plan.sampler, "steps": plan.steps, "eta": plan.eta, "seed": plan.seed, "samples": samples,
            "engine": dbcr.engine.kind, "precision": dbcr.engine.precision, "s1_scale": s1_scale})
        return cls(spec, dbcr)

    def inputs(self) -> tuple[InputContract, ...]:
        return (InputContract("s2", "cloudy Sentinel-2: 13 bands L1C or 12 bands L2A (no B10), DN",
                              s2_bands()),
                InputContract("s1", "Sentinel-1 VV and VH backscatter, dB or linear",
                              s1_bands()))

    def plan(self, rasters: Mapping[str, RasterInfo], tiling: Tiling) -> ScenePlan:
        s2, s1 = (resolve_bands(c.bands, rasters[c.name], c.name) for c in self.inputs())
        layout = s2_layout(len(s2.names), s2.names)
        s1_scale: S1Scale = self.options.s1_scale  # resolved below
        if s1_scale == "auto":
            s1_scale = detect_s1_scale(torch.from_numpy(read_decimated(rasters["s1"].path, s1.indexes[0])))

        network_batch = balanced_batch(scene_tile_count(rasters["s2"].shape, tiling))
        plan = self.dbcr.plan
        draws = [self.dbcr.with_plan(dataclasses.replace(plan, seed=plan.seed + k)) if k else self.dbcr
                 for k in range(self.options.samples)]  # draw k: noise seed seed + k

        def restore_tiles(tiles: Tiles) -> torch.Tensor:  # (B, K·C, h, w), draw-major
            cloudy, sar = normalise_s2(tiles.inputs["s2"], layout), normalise_s1(tiles.inputs["s1"], s1_scale)
            return stack_draws(lambda k: denormalise_s2(draws[k].restore(cloudy, sar, tiles.windows, network_batch),
                                                        layout), len(draws))

        return ScenePlan(restore_tiles, "s2", {"s2": s2.indexes, "s1": s1.indexes},
                         OutputContract(layout.input_bands, rasters["s2"].dtypes[0]),
                         tags={"RSINFER_S2_LEVEL": layout.level, "RSINFER_S1_SCALE": s1_scale},
                         samples=len(draws))

    def run_tags(self) -> dict[str, str]:
        plan, engine = self.dbcr.plan, self.dbcr.engine
        tags = {"RSINFER_SAMPLER": plan.sampler, "RSINFER_STEPS": str(plan.steps), "RSINFER_SEED": str(plan.seed),
                "RSINFER_ENGINE": engine.kind, "RSINFER_PRECISION": engine.precision}
        if plan.sampler == "dbim":
            tags["RSINFER_ETA"] = str(plan.eta)
        return tags

    def preview(self, output: str, plan: ScenePlan) -> torch.Tensor:
        return rgb_preview(output, plan.output.bands)


def check_draws_differ(plan: SamplingPlan, samples: int) -> None:
    """Several draws need noise: a stochastic sampler (i2sb, dbim) and at least 2 steps (one step returns the
    network's first estimate from the cloudy image, the same for every seed)."""
    if not plan.bridge.stochastic:
        raise UsageError("{samples} draws need a stochastic sampler (i2sb, or dbim): {sampler} is deterministic, "
                         "so every draw would be the same", samples=samples, sampler=plan.sampler)
    if plan.steps < 2:
        raise UsageError(f"{{samples}} draws need at least 2 sampler steps: with {{steps}} the {plan.sampler} sampler "
                         "returns the network's first estimate, the same for every seed", samples=samples,
                         steps=plan.steps)
