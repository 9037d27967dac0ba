"""The ``translate`` pipeline: any-to-any translation of real rasters with COP-GEN-Beta.

Inputs: any of ``dem``, ``s1_rtc``, ``s2_l1c``, ``s2_l2a`` (at least one, never the target); the first given defines
the output grid, the others are resampled onto it. Bands are found by name or standard position: B4, B3, B2 of a
Sentinel-2 file, VV and VH of a Sentinel-1 file, the one band of a DEM. Output: the Major TOM rendering of the target
as uint8 bands (1..255 where every input was valid, 0 = nodata; descriptions say which rendering; not physical
values).

The job needs the whole scene at once (one latent canvas, `rsinfer.pipelines.copgen_scene`), so the scene engine runs
it as one whole-grid tile. The user's `Tiling` describes the latent tiles in output pixels: the tile is the network's
256 pixels (32 latents), the overlap a multiple of 8 pixels (default 96 = 12 latents), the blend and the number of
latent tiles per network call (batch size, default 16).

Weights: {"network": nnet_ema.pth, "vae": autoencoder_kl_ema.pth}, or "random:SEED" (both networks seeded).

Uncertainty: `samples` = K > 1 translates the scene K times, draw k with the seed seed + k (its own initial and
ignored-modality noise), and the output is the per-pixel mean of the K renderings; the runner can also write their
per-band standard deviation (`rsinfer.pipelines.uncertainty`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from rsinfer import models
from rsinfer.engines import EngineKind, Precision, prepare
from rsinfer.io import RasterInfo, read_decimated
from rsinfer.models.copgen import MODALITIES
from rsinfer.ops import Backend
from rsinfer.pipelines.bands import BandRule, resolve_bands
from rsinfer.pipelines.contract import InputContract, OutputContract, ScenePipeline, ScenePlan
from rsinfer.pipelines.copgen import CopGenBeta, IgnoredModalities, check_modalities
from rsinfer.pipelines.copgen_scene import (LATENT_SCALE, LATENT_TILE, Fusion, render_input, rendering_for_output,
                                            translate_images)
from rsinfer.pipelines.majortom import RENDERING_DESCRIPTIONS
from rsinfer.pipelines.sentinel import S1Scale, s1_bands, s2_bands
from rsinfer.pipelines.spec import PipelineSpec
from rsinfer.pipelines.uncertainty import check_samples, stack_draws
from rsinfer.samplers.pf_ode import SamplerName
from rsinfer.scene import Tiles
from rsinfer.tiling import Tiling

_INPUT_DESCRIPTIONS = {"dem": "a DEM (1 band, metres)", "s1_rtc": "Sentinel-1 RTC VV and VH (dB or linear)",
                       "s2_l1c": "Sentinel-2 L1C (B4, B3, B2 are read)",
                       "s2_l2a": "Sentinel-2 L2A (B4, B3, B2 are read)"}


def _band_rule(modality: str) -> BandRule:
    if modality == "dem":
        return BandRule.count_only(1)
    if modality == "s1_rtc":
        return s1_bands()
    return s2_bands(("B4", "B3", "B2"))


@dataclass(frozen=True)
class TranslateOptions:
    """target: the modality to generate. steps, sampler, seed: the PF-ODE solve (seed: posterior, initial and
    ignored-modality noise; random weights too). samples: K draws (seeds seed … seed + K − 1) whose mean is the output.
    engine ("torch" | "compile"), precision, backend: how the network runs.
    ignored: how modalities neither given nor generated are fed ("marginal" or the official "official-noise-t0").
    fusion: latent tiles fused at every step ("per-step") or once at the end ("per-tile"). s1_scale: S1 values.
    network, vae: config overrides (smaller networks for random weights)."""

    target: str | None = None
    steps: int = 10
    sampler: SamplerName = "unipc"
    seed: int = 0
    samples: int = 1
    engine: EngineKind = "torch"
    precision: Precision = "float32"
    backend: Backend = "auto"
    ignored: IgnoredModalities = "marginal"
    fusion: Fusion = "per-step"
    s1_scale: S1Scale = "auto"
    network: Mapping[str, Any] | None = None
    vae: Mapping[str, Any] | None = None


class Translate(ScenePipeline):
    name = "translate"
    model = "COP-GEN-Beta"
    Options = TranslateOptions
    default_tiling = Tiling(tile=LATENT_TILE * LATENT_SCALE, overlap=12 * LATENT_SCALE, blend="cosine", batch_size=16)

    def __init__(self, spec: PipelineSpec, copgen: CopGenBeta | None = None) -> None:
        super().__init__(spec)
        o = self.options
        if o.target not in MODALITIES:
            raise ValueError(f"translate needs a target modality, one of {MODALITIES}; got {o.target!r}")
        if not isinstance(o.steps, int) or o.steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {o.steps!r}")
        check_samples(o.samples)
        if copgen is None:
            network, vae = self._networks()
            copgen = CopGenBeta(prepare(network, o.precision, o.engine, o.backend), vae, ignored=o.ignored)
        self.copgen = copgen

    def _networks(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        o = self.options
        if self.weights.random:
            with torch.random.fork_rng():
                torch.manual_seed(self.weights.seed)
                return (models.build("copgen-beta", **(o.network or {})).eval(),
                        models.build("sd-vae", **(o.vae or {})).eval())
        return (models.load("copgen-beta", self.weights.file("network"), **(o.network or {})),
                models.load("sd-vae", self.weights.file("vae"), **(o.vae or {})))

    @classmethod
    def around(cls, copgen: CopGenBeta, **options: Any) -> Translate:
        """The pipeline over an existing `CopGenBeta` (its networks as they are; the spec records random:0)."""
        return cls(PipelineSpec(cls.name, "random:0", {"ignored": copgen.ignored, **options}), copgen)

    def inputs(self) -> tuple[InputContract, ...]:
        return tuple(InputContract(m, _INPUT_DESCRIPTIONS[m], _band_rule(m), required=False)
                     for m in MODALITIES if m != self.options.target)

    def plan(self, rasters: Mapping[str, RasterInfo], tiling: Tiling) -> ScenePlan:
        o = self.options
        check_modalities(list(rasters), [o.target])
        if not rasters:
            raise ValueError(f"translate needs at least one input modality out of "
                             f"{[m for m in MODALITIES if m != o.target]}")
        latent = _latent_tiling(tiling)
        bands = {name: resolve_bands(_band_rule(name), info, name).indexes for name, info in rasters.items()}
        grid = next(iter(rasters))

        def translate(tiles: Tiles) -> torch.Tensor:  # one tile: the whole grid
            valid = tiles.valid[0]
            renderings = {}
            for name in rasters:
                values = tiles.inputs[name][0].clone()
                values[:, ~tiles.masks[name][0]] = float("nan")  # the input's own nodata, not the engine's fill
                renderings[name] = render_input(name, values, tiles.masks[name][0], o.s1_scale)

            def draw(k: int) -> torch.Tensor:  # (1, C, H, W) with the seed seed + k
                image = translate_images(self.copgen, renderings, o.target, o.steps, o.sampler, latent,
                                         torch.Generator().manual_seed(o.seed + k), fusion=o.fusion)
                out, _ = rendering_for_output(image, o.target, valid)
                return out[None].float()

            return stack_draws(draw, o.samples)  # (1, K·C, H, W)

        return ScenePlan(translate, grid, bands,
                         OutputContract(RENDERING_DESCRIPTIONS[o.target], "uint8", 0),
                         tiling=Tiling(tile=None, overlap=0, batch_size=1),
                         tags={"RSINFER_TARGET": o.target,
                               "RSINFER_LATENT_TILING": json.dumps(dataclasses.asdict(latent)),
                               "RSINFER_CONDITIONS": ",".join(m for m in MODALITIES if m in rasters),
                               "RSINFER_VALUES": "Major TOM thumbnail rendering (uint8), not a physical quantity; "
                                                 "0 = nodata"},
                         samples=o.samples)

    def run_tags(self) -> dict[str, str]:
        o = self.options
        return {"RSINFER_SAMPLER": o.sampler, "RSINFER_STEPS": str(o.steps), "RSINFER_SEED": str(o.seed),
                "RSINFER_ENGINE": o.engine, "RSINFER_PRECISION": o.precision, "RSINFER_FUSION": o.fusion,
                "RSINFER_IGNORED_MODALITIES": self.copgen.ignored}

    def preview(self, output: str, plan: ScenePlan) -> torch.Tensor:
        bands = torch.stack([torch.from_numpy(read_decimated(output, b + 1)) for b in range(len(plan.output.bands))])
        return bands.nan_to_num(0.0).to(torch.uint8).expand(3, -1, -1).contiguous()


def _latent_tiling(tiling: Tiling) -> Tiling:
    """The user's tiling in output pixels → the latent tiling of the network."""
    side = LATENT_TILE * LATENT_SCALE
    if tiling.tile != side:
        raise ValueError(f"translate tiles are the network's {side} pixels ({LATENT_TILE} latents); got tile "
                         f"{tiling.tile}")
    if tiling.overlap % LATENT_SCALE:
        raise ValueError(f"translate's overlap must be a multiple of {LATENT_SCALE} pixels (one latent), got "
                         f"{tiling.overlap}")
    return Tiling(LATENT_TILE, tiling.overlap // LATENT_SCALE, tiling.blend, tiling.batch_size)
