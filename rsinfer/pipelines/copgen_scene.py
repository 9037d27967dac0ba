"""COP-GEN-Beta on whole scenes: renderings in, the generated rendering of the target modality out.

The network only takes 32 × 32 latents (256 × 256 pixels). A larger scene is rendered (`majortom`), encoded to one
latent canvas (a seeded posterior sample), denoised as overlapping latent tiles (`Tiling` in latents: 32 × 32, overlap
12 by default), decoded and returned on the scene's pixels. Two ways to combine the tiles (`Fusion`):

- ``"per-step"`` (default, MultiDiffusion, Bar-Tal et al. 2023): at *every* network call each tile's noise
  prediction is computed from the current canvas and the predictions are blended (smooth weights, normalised
  overlap-add) into one canvas-wide prediction, which the solver steps. Every solver here is affine in the model
  outputs with scalar coefficients, so this equals blending the tiles' own updated states at every step — the
  MultiDiffusion fusion — while the solver itself stays tile-agnostic. Tiles agree wherever they overlap, so there
  are no seams.
- ``"per-tile"``: each tile is sampled alone from its crop of the same initial noise and the finished latents are
  blended once at the end; kept for comparison (the seam metric in `bench/samplers.py`).

Randomness: every draw is made on the whole latent canvas, from one generator seeded by the run's seed, in a fixed
order (the posterior samples in modality order, the initial noise, then at every network call one draw per ignored
modality), and tiles take their crop of it. The canvas is the scene's one window, so a result does not depend on how
the tiles are batched (`Tiling.batch_size`) or ordered. (Per-tile fusion draws its ignored-modality noise per tile.)

Scenes smaller than 256 pixels, or not multiples of 8, are padded (reflection) for the network and cropped back.
The tiles of a network call go through the network in batches of at most `tiling.batch_size` (as few, equal batches as
possible: a compiled network then sees few shapes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rsinfer.models.copgen import MODALITIES
from rsinfer.pipelines.copgen import CopGenBeta, check_modalities
from rsinfer.pipelines.vocabulary import FUSIONS, Fusion
from rsinfer.pipelines.majortom import S1Scale, dem_rendering, rendering_to_raster, s1_rendering, s2_rendering
from rsinfer.samplers.pf_ode import SamplerName, solve_pf_ode
from rsinfer.samplers.vp_schedule import EpsModel
from rsinfer.tiling import BlendMode, Tiling, Window, blend_tiles, plan_windows, tile_weights

LATENT_SCALE = 8  # pixels per latent (SD KL-f8)
LATENT_TILE = 32  # the network's latent size
LATENT_TILING = Tiling(tile=LATENT_TILE, overlap=12, blend="cosine", batch_size=16)


@dataclass(frozen=True)
class LatentTiling:
    """Deprecated: a latent `Tiling` plus the fusion, now passed separately (`translate_latents(..., tiling,
    fusion=...)`)."""

    tile: int = 32
    overlap: int = 12
    fusion: Fusion = "per-step"
    blend: BlendMode = "cosine"
    tile_batch: int = 16

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {self.fusion!r}; choose one of {FUSIONS}")
        Tiling(self.tile, self.overlap, self.blend, self.tile_batch)  # the one tiling rule

    @property
    def tiling(self) -> Tiling:
        return Tiling(self.tile, self.overlap, self.blend, self.tile_batch)


def _tiling_and_fusion(tiling: Tiling | LatentTiling, fusion: Fusion) -> tuple[Tiling, Fusion]:
    if isinstance(tiling, LatentTiling):
        from rsinfer.engines.base import warn_deprecated

        warn_deprecated("LatentTiling", "Tiling (in latents) with fusion=...")
        return tiling.tiling, tiling.fusion
    if fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r}; choose one of {FUSIONS}")
    if tiling.tile is None:
        raise ValueError("latent tiles need a size (the network's 32), not tile=None")
    return tiling, fusion


def render_input(modality: str, bands: torch.Tensor, valid: torch.Tensor, s1_scale: S1Scale = "auto") -> torch.Tensor:
    """Raster bands of `modality` (as read with INPUT_BANDS) → its Major TOM rendering (3, H, W) in [0, 1]."""
    if modality in ("s2_l1c", "s2_l2a"):
        return s2_rendering(bands)
    if modality == "s1_rtc":
        return s1_rendering(bands, s1_scale, valid)
    if modality == "dem":
        return dem_rendering(bands, valid)
    raise ValueError(f"unknown modality {modality!r}; choose from {MODALITIES}")


def _crop(x: torch.Tensor, window: Window) -> torch.Tensor:
    return x[..., window.row:window.bottom, window.col:window.right]


def _tiled_eps(pipe: CopGenBeta, condition: Mapping[str, torch.Tensor], target: str, windows: Sequence[Window],
               tiling: Tiling, generator: torch.Generator | None) -> EpsModel:
    """eps over the whole canvas (1, 1, C, H, W): every window's prediction, blended (MultiDiffusion)."""
    height, width = next(iter(condition.values())).shape[-2:]
    weights = [tile_weights(w, height, width, tiling.overlap, tiling.blend) for w in windows]
    n_groups = math.ceil(len(windows) / tiling.batch_size)
    size = math.ceil(len(windows) / n_groups)
    groups = [windows[i:i + size] for i in range(0, len(windows), size)]
    group_condition = [{name: torch.cat([_crop(z, w) for w in group]) for name, z in condition.items()}
                       for group in groups]
    ignored = pipe.ignored_modalities(list(condition), [target])

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        canvas_noise = {name: torch.randn((1, *x.shape[2:]), generator=generator, dtype=x.dtype, device=x.device)
                        for name in ignored}  # one canvas-wide draw per ignored modality per call
        tiles = torch.cat([pipe.predict_eps(torch.cat([_crop(x, w) for w in group]), t, cond, [target],
                                            {name: torch.cat([_crop(z, w) for w in group])
                                             for name, z in canvas_noise.items()})
                           for group, cond in zip(groups, group_condition)])  # (N, 1, C, tile, tile)
        fused = blend_tiles(tiles.flatten(1, 2), windows, height, width, weights)  # (C, H, W)
        return fused.reshape(x.shape)

    return eps


def translate_latents(pipe: CopGenBeta, condition: Mapping[str, torch.Tensor], target: str, steps: int,
                      sampler: SamplerName, tiling: Tiling | LatentTiling = LATENT_TILING,
                      generator: torch.Generator | None = None, *, fusion: Fusion = "per-step") -> torch.Tensor:
    """Condition latents (1, C, H, W) by name, H and W ≥ tiling.tile → the target latent (1, C, H, W)."""
    tiling, fusion = _tiling_and_fusion(tiling, fusion)
    check_modalities(list(condition), [target])
    if not condition:
        raise ValueError("scene translation needs at least one condition modality")
    shape = next(iter(condition.values())).shape
    if shape[0] != 1 or min(shape[-2:]) < tiling.tile:
        raise ValueError(f"scene latents must be (1, C, H, W) with H, W ≥ {tiling.tile}; got {tuple(shape)}")
    height, width = shape[-2:]
    windows = plan_windows(height, width, tiling.tile, tiling.overlap)
    noise = pipe.initial_noise([target], shape, None, generator)  # (1, 1, C, H, W)
    if fusion == "per-step":
        eps = _tiled_eps(pipe, condition, target, windows, tiling, generator)
        return solve_pf_ode(sampler, eps, noise, pipe.schedule, steps)[:, 0]
    tiles = []
    for window in windows:
        eps = pipe.eps_model({name: _crop(z, window) for name, z in condition.items()}, [target], generator)
        tiles.append(solve_pf_ode(sampler, eps, _crop(noise, window), pipe.schedule, steps)[0, 0])
    weights = [tile_weights(w, height, width, tiling.overlap, tiling.blend) for w in windows]
    return blend_tiles(torch.stack(tiles), windows, height, width, weights)[None]


def _pad_for_network(image: torch.Tensor, tile_pixels: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (3, H, W) on the bottom/right to ≥ tile_pixels and a multiple of 8 (reflection where it fits)."""
    height, width = image.shape[-2:]
    pad_h = max(tile_pixels, math.ceil(height / LATENT_SCALE) * LATENT_SCALE) - height
    pad_w = max(tile_pixels, math.ceil(width / LATENT_SCALE) * LATENT_SCALE) - width
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(image[None], (0, pad_w, 0, pad_h), mode=mode)[0], (height, width)


def translate_images(pipe: CopGenBeta, renderings: Mapping[str, torch.Tensor], target: str, steps: int,
                     sampler: SamplerName, tiling: Tiling | LatentTiling = LATENT_TILING,
                     generator: torch.Generator | None = None, *, fusion: Fusion = "per-step") -> torch.Tensor:
    """Renderings (3, H, W) in [0, 1] by modality → the generated rendering of `target` (3, H, W) in [0, 1]."""
    tiling, fusion = _tiling_and_fusion(tiling, fusion)
    if pipe.vae is None:
        raise ValueError("scene translation needs a VAE: CopGenBeta(network, vae=...)")
    check_modalities(list(renderings), [target])
    shapes = {tuple(image.shape) for image in renderings.values()}
    if len(shapes) != 1:
        raise ValueError(f"renderings must share one (3, H, W) shape; got {sorted(shapes)}")
    with torch.no_grad():
        latents = {}
        for name in (m for m in MODALITIES if m in renderings):  # posterior draws in modality order
            padded, (height, width) = _pad_for_network(renderings[name], tiling.tile * LATENT_SCALE)
            latents[name] = pipe.vae.encode(2.0 * padded[None] - 1.0, generator)  # (1, 4, H'/8, W'/8)
        z = translate_latents(pipe, latents, target, steps, sampler, tiling, generator, fusion=fusion)
        pixels = pipe.vae.decode_tiled(z, tiling)  # (1, 3, H', W')
    return ((pixels[0, :, :height, :width].float() + 1.0) / 2.0).clamp(0.0, 1.0)


def rendering_for_output(image: torch.Tensor, target: str, valid: torch.Tensor) -> tuple[torch.Tensor, tuple[str, ...]]:
    """uint8 bands 1..255 of the target rendering where the inputs were valid, 0 (nodata) elsewhere."""
    bands, descriptions = rendering_to_raster(image, target)
    bands = torch.where(valid, bands.clamp_min(1), torch.zeros_like(bands))
    return bands, descriptions


def translate_scene(pipe: CopGenBeta, inputs, target: str, output, steps: int, sampler: SamplerName, seed: int = 0,
                    tiling: LatentTiling = LatentTiling(), s1_scale: S1Scale = "auto", tags=None, preview=None,
                    banner: str | None = None, overwrite: bool = False):
    """Deprecated: the ``translate`` pipeline (`rsinfer.pipelines.run(Translate.around(pipe, ...), inputs, output)`)."""
    from rsinfer.engines.base import warn_deprecated
    from rsinfer.io import OutputOptions
    from rsinfer.pipelines.runner import run
    from rsinfer.pipelines.translate import Translate

    warn_deprecated("translate_scene(...)", "rsinfer.pipelines.run(Translate.around(pipe, ...), inputs, output)")
    pipeline = Translate.around(pipe, target=target, steps=steps, sampler=sampler, seed=seed, fusion=tiling.fusion,
                                s1_scale=s1_scale)
    pixel_tiling = Tiling(LATENT_TILE * LATENT_SCALE, tiling.overlap * LATENT_SCALE, tiling.blend, tiling.tile_batch)
    return run(pipeline, dict(inputs), output, tiling=pixel_tiling, output_options=OutputOptions(overwrite=overwrite),
               preview=preview, progress=False).path
