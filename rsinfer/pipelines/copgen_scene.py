"""COP-GEN-Beta on whole scenes: rasters in, a georeferenced rendering of the target modality out.

The network only takes 32 × 32 latents (256 × 256 pixels). A larger scene is rendered (`majortom`), encoded to one
latent canvas (a seeded posterior sample), denoised as overlapping 32 × 32 latent tiles, decoded and written on the
input grid. Two ways to combine the tiles (`Fusion`):

- ``"per-step"`` (default, MultiDiffusion, Bar-Tal et al. 2023): at *every* network call each tile's noise
  prediction is computed from the current canvas and the predictions are blended (smooth weights, normalised
  overlap-add) into one canvas-wide prediction, which the solver steps. Every solver here is affine in the model
  outputs with scalar coefficients, so this equals blending the tiles' own updated states at every step — the
  MultiDiffusion fusion — while the solver itself stays tile-agnostic. Tiles agree wherever they overlap, so there
  are no seams.
- ``"per-tile"``: each tile is sampled alone from its crop of the same initial noise and the finished latents are
  blended once at the end; kept for comparison (the seam metric in `bench/samplers.py`).

Scenes smaller than 256 pixels, or not multiples of 8, are padded (reflection) for the network and cropped back.
The tiles of a network call go through the network in batches of at most `tile_batch` (as few, equal batches as
possible: a compiled network then sees few shapes).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import torch
import torch.nn.functional as F

from rsinfer.pipelines.copgen import MODALITIES, CopGenBeta, check_modalities
from rsinfer.pipelines.majortom import (S1Scale, dem_rendering, rendering_to_raster, s1_rendering,
                                        s2_rendering)
from rsinfer.pipelines.preview import write_png
from rsinfer.samplers.pf_ode import SamplerName, solve_pf_ode
from rsinfer.samplers.vp_schedule import EpsModel
from rsinfer.scene import read_scene, write_raster
from rsinfer.tiling import BlendMode, Window, blend_tiles, plan_windows, tile_weights

Fusion = Literal["per-step", "per-tile"]
FUSIONS: tuple[str, ...] = get_args(Fusion)
LATENT_SCALE = 8  # pixels per latent (SD KL-f8)

# Bands read from each input raster, 1-based: S2 files hold B1..B12 (B4, B3, B2 are bands 4, 3, 2 in both the
# 13-band L1C and the 12-band L2A layouts); S1 files hold VV, VH; a DEM file holds the elevation.
INPUT_BANDS: dict[str, tuple[int, ...]] = {"s2_l1c": (4, 3, 2), "s2_l2a": (4, 3, 2), "s1_rtc": (1, 2), "dem": (1,)}


@dataclass(frozen=True)
class LatentTiling:
    """Latent tiles of `tile` (the network's 32) overlapping by `overlap`, fused `fusion`-wise with `blend` weights
    (`rsinfer.tiling.blend_weights`; "cosine" ramps across the overlap, "crop" keeps each tile's interior)."""

    tile: int = 32
    overlap: int = 12
    fusion: Fusion = "per-step"
    blend: BlendMode = "cosine"
    tile_batch: int = 16

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {self.fusion!r}; choose one of {FUSIONS}")
        if not 0 <= 2 * self.overlap < self.tile or self.tile_batch < 1:
            raise ValueError(f"need 0 ≤ 2·overlap < tile and tile_batch ≥ 1; got overlap={self.overlap}, "
                             f"tile={self.tile}, tile_batch={self.tile_batch}")


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
               tiling: LatentTiling, generator: torch.Generator | None) -> EpsModel:
    """eps over the whole canvas (1, 1, C, H, W): every window's prediction, blended (MultiDiffusion)."""
    height, width = next(iter(condition.values())).shape[-2:]
    weights = [tile_weights(w, height, width, tiling.overlap, tiling.blend) for w in windows]
    n_groups = math.ceil(len(windows) / tiling.tile_batch)
    size = math.ceil(len(windows) / n_groups)
    groups = [windows[i:i + size] for i in range(0, len(windows), size)]
    group_eps = [pipe.eps_model({name: torch.cat([_crop(z, w) for w in group]) for name, z in condition.items()},
                                [target], generator) for group in groups]

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        tiles = torch.cat([model(torch.cat([_crop(x, w) for w in group]), t)
                           for model, group in zip(group_eps, groups)])  # (N, 1, C, tile, tile)
        fused = blend_tiles(tiles.flatten(1, 2), windows, height, width, weights)  # (C, H, W)
        return fused.reshape(x.shape)

    return eps


def translate_latents(pipe: CopGenBeta, condition: Mapping[str, torch.Tensor], target: str, steps: int,
                      sampler: SamplerName, tiling: LatentTiling = LatentTiling(),
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Condition latents (1, C, H, W) by name, H and W ≥ tiling.tile → the target latent (1, C, H, W)."""
    check_modalities(list(condition), [target])
    if not condition:
        raise ValueError("scene translation needs at least one condition modality")
    shape = next(iter(condition.values())).shape
    if shape[0] != 1 or min(shape[-2:]) < tiling.tile:
        raise ValueError(f"scene latents must be (1, C, H, W) with H, W ≥ {tiling.tile}; got {tuple(shape)}")
    height, width = shape[-2:]
    windows = plan_windows(height, width, tiling.tile, tiling.overlap)
    noise = pipe.initial_noise([target], shape, None, generator)  # (1, 1, C, H, W)
    if tiling.fusion == "per-step":
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
                     sampler: SamplerName, tiling: LatentTiling = LatentTiling(),
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Renderings (3, H, W) in [0, 1] by modality → the generated rendering of `target` (3, H, W) in [0, 1]."""
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
        z = translate_latents(pipe, latents, target, steps, sampler, tiling, generator)
        pixels = pipe.vae.decode_tiled(z, tile=tiling.tile, overlap=tiling.overlap)  # (1, 3, H', W')
    return ((pixels[0, :, :height, :width].float() + 1.0) / 2.0).clamp(0.0, 1.0)


def rendering_for_output(image: torch.Tensor, target: str, valid: torch.Tensor) -> tuple[torch.Tensor, tuple[str, ...]]:
    """uint8 bands 1..255 of the target rendering where the inputs were valid, 0 (nodata) elsewhere."""
    bands, descriptions = rendering_to_raster(image, target)
    bands = torch.where(valid, bands.clamp_min(1), torch.zeros_like(bands))
    return bands, descriptions


def translate_scene(pipe: CopGenBeta, inputs: Mapping[str, str | os.PathLike], target: str,
                    output: str | os.PathLike, steps: int, sampler: SamplerName, seed: int = 0,
                    tiling: LatentTiling = LatentTiling(), s1_scale: S1Scale = "auto",
                    tags: Mapping[str, str] | None = None, preview: str | os.PathLike | None = None,
                    banner: str | None = None, overwrite: bool = False) -> Path:
    """Rasters by modality (the first defines the grid) → a uint8 GeoTIFF of the target's rendering on that grid.

    Output bands are the Major TOM rendering of `target` (see `majortom`; descriptions say which), 1..255 where
    every input was valid and 0 (nodata) elsewhere. `tags` (e.g. which weights were used) are written into the
    GeoTIFF metadata together with the run's settings, and into the PNG `preview` as text; `banner` is burnt into
    the preview.
    """
    check_modalities(list(inputs), [target])
    scene = read_scene(dict(inputs), bands={name: INPUT_BANDS[name] for name in inputs})
    renderings = {name: render_input(name, scene.arrays[name], scene.masks[name], s1_scale) for name in inputs}
    image = translate_images(pipe, renderings, target, steps, sampler, tiling, torch.Generator().manual_seed(seed))
    bands, descriptions = rendering_for_output(image, target, scene.valid)
    all_tags = {"RSINFER_MODEL": "copgen-beta", "RSINFER_TARGET": target,
                "RSINFER_CONDITIONS": ",".join(m for m in MODALITIES if m in inputs), "RSINFER_SAMPLER": sampler,
                "RSINFER_STEPS": str(steps), "RSINFER_SEED": str(seed), "RSINFER_FUSION": tiling.fusion,
                "RSINFER_IGNORED_MODALITIES": pipe.ignored,
                "RSINFER_VALUES": "Major TOM thumbnail rendering (uint8), not a physical quantity; 0 = nodata",
                **(tags or {})}
    path = write_raster(bands.numpy(), scene.grid, output, nodata=0, dtype="uint8", descriptions=descriptions,
                        tags=all_tags, overwrite=overwrite)
    if preview is not None:
        write_png(preview, bands.expand(3, -1, -1).contiguous(), all_tags, banner)
    return path
