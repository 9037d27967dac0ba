"""Synthetic clouds over a clear Sentinel-2 image, for training and evaluating cloud removal.

A cloud field is made of four seeded parts (`Clouds`), all (B, ·, H, W) in the network's reflectance units [0, 1]:

- shape: fractal value noise n (`fractal_noise`: octaves of random lattice values, bicubic-interpolated, cell sizes
  halving from `CloudConfig.scale` pixels, amplitudes halving too). A cover c ~ U(cover) sets the threshold θ at the
  (1 − c) quantile of n, and the soft edge is ramp = smoothstep((n − θ) / w) with w = U(edge)·std(n): 0 outside the
  cloud, rising over its edge, 1 in its core;
- opacity α = peak·ramp. With probability `opaque_fraction` the core is fully opaque (peak = 1): there is no ground
  signal left under it, so only SAR can tell what lies below. Otherwise peak ~ U(peak);
- spectrum: `CLOUD_SPECTRUM` (bright, slightly blue-white, low in B9 water vapour and B10 cirrus) times a brightness
  U(brightness), times a spatial texture 1 + texture·(m − ½) from a second noise field m ∈ [0, 1];
- haze: a thin veil h·m_low everywhere, m_low a two-octave, coarser noise in [0, 1] and h ~ U(haze).

The cloudy image (`Clouds.apply`) composites haze under cloud and clips like `rsinfer.pipelines.sentinel.normalise_s2`:

    y = clip((1 − α)·((1 − h)·x0 + h·s) + α·s, 0, 1),   s = the textured cloud spectrum.

Every draw comes from the `torch.Generator` passed in, so a seed gives the same clouds on any machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

# Relative TOA reflectance of a thick cloud per Sentinel-2 L1C band (B1 B2 B3 B4 B5 B6 B7 B8 B8A B9 B10 B11 B12),
# before the brightness factor: flat and bright in the visible and NIR, a little higher in the blue, lower in the SWIR,
# low in B9 (water-vapour absorption above the cloud) and B10 (cirrus band, dark for low clouds).
CLOUD_SPECTRUM = (0.62, 0.60, 0.58, 0.57, 0.57, 0.57, 0.57, 0.56, 0.55, 0.25, 0.04, 0.42, 0.30)


@dataclass(frozen=True)
class CloudConfig:
    """The distribution clouds are drawn from (ranges are (low, high) of a uniform draw per sample).

    cover: fraction of pixels inside the cloud (ramp > 0). edge: soft-edge width in units of std(n). peak: core opacity
    of the clouds that are not fully opaque; opaque_fraction: probability of a fully opaque core (peak = 1).
    brightness: factor on `CLOUD_SPECTRUM`; texture: amplitude of its spatial variation. haze: peak opacity of the
    thin veil. scale: cell size in pixels of the coarsest octave (the cloud size); octaves: number of octaves.
    """

    cover: tuple[float, float] = (0.1, 0.7)
    edge: tuple[float, float] = (0.1, 0.6)
    peak: tuple[float, float] = (0.75, 1.0)
    opaque_fraction: float = 0.5
    brightness: tuple[float, float] = (0.75, 1.15)
    texture: float = 0.2
    haze: tuple[float, float] = (0.0, 0.25)
    scale: int = 48
    octaves: int = 5

    def __post_init__(self) -> None:
        for name in ("cover", "edge", "peak", "brightness", "haze"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"{name} {getattr(self, name)} must be a range (low, high) with 0 ≤ low ≤ high")
        if not (self.cover[1] < 1 and self.peak[1] <= 1 and self.haze[1] < 1 and self.edge[0] > 0):
            raise ValueError(f"cover {self.cover} and haze {self.haze} must stay below 1, peak {self.peak} at most 1, "
                             f"edge {self.edge} above 0")
        if not 0 <= self.opaque_fraction <= 1:
            raise ValueError(f"opaque_fraction {self.opaque_fraction} must lie in [0, 1]")
        if self.octaves < 1 or self.scale < 2 ** (self.octaves - 1):
            raise ValueError(f"scale {self.scale} must be at least 2^(octaves − 1) = {2 ** (self.octaves - 1)} pixels "
                             f"(octaves {self.octaves} ≥ 1)")


@dataclass(frozen=True)
class Clouds:
    """One cloud field per sample: ramp (B, 1, H, W) in [0, 1], peak (B,), spectrum (B, 13, H, W), haze (B, 1, H, W)."""

    ramp: torch.Tensor
    peak: torch.Tensor
    spectrum: torch.Tensor
    haze: torch.Tensor

    @property
    def opacity(self) -> torch.Tensor:
        """α = peak·ramp, (B, 1, H, W)."""
        return self.peak[:, None, None, None] * self.ramp

    def opaque(self) -> Clouds:
        """The same clouds with fully opaque cores (peak = 1): the evaluation set where only SAR sees the ground."""
        return replace(self, peak=torch.ones_like(self.peak))

    def apply(self, clear: torch.Tensor) -> torch.Tensor:
        """clear (B, 13, H, W) reflectance → the cloudy image y (B, 13, H, W), clipped to [0, 1]."""
        if clear.shape[0] != self.ramp.shape[0] or clear.shape[-2:] != self.ramp.shape[-2:]:
            raise ValueError(f"clear image {tuple(clear.shape)} does not match the cloud field "
                             f"{tuple(self.spectrum.shape)}")
        hazy = torch.lerp(clear, self.spectrum, self.haze)
        return torch.lerp(hazy, self.spectrum, self.opacity).clamp(0, 1)


def uniform(batch: int, bounds: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """(batch,) draws from U(bounds)."""
    low, high = bounds
    return low + (high - low) * torch.rand(batch, generator=generator)


def fractal_noise(batch: int, height: int, width: int, scale: int, octaves: int,
                  generator: torch.Generator) -> torch.Tensor:
    """(batch, 1, height, width) value noise: Σ_k 2^−k · bicubic(lattice_k), lattice_k uniform in [0, 1) with cells
    of scale/2^k pixels, laid at a random sub-cell offset (so fields do not align with the lattice)."""
    total = torch.zeros(batch, 1, height, width)
    for k in range(octaves):
        total += 0.5 ** k * lattice_noise(batch, height, width, max(1.0, scale / 2 ** k), generator)
    return total


def lattice_noise(batch: int, height: int, width: int, cell: float, generator: torch.Generator) -> torch.Tensor:
    """(batch, 1, height, width): uniform random values on a lattice of `cell`-pixel spacing, bicubic-interpolated at
    the pixels only (grid_sample), pixel (i, j) at lattice coordinate (1 + (i + o_r)/cell, 1 + (j + o_c)/cell) with
    the offset o ~ U(0, cell)², so the bicubic support never reaches the lattice border."""
    rows, cols = math.ceil(height / cell) + 4, math.ceil(width / cell) + 4
    lattice = torch.rand(batch, 1, rows, cols, generator=generator)
    offset = torch.rand(2, generator=generator) * cell
    y = 1 + (torch.arange(height) + offset[0]) / cell  # lattice coordinates, in [1, rows − 3)
    x = 1 + (torch.arange(width) + offset[1]) / cell
    grid = torch.stack(torch.broadcast_tensors(2 * x[None, :] / (cols - 1) - 1, 2 * y[:, None] / (rows - 1) - 1),
                       dim=-1)  # (H, W, 2) as (x, y) in [−1, 1] (align_corners=True)
    return F.grid_sample(lattice, grid.expand(batch, -1, -1, -1), mode="bicubic", align_corners=True)


def unit_range(x: torch.Tensor) -> torch.Tensor:
    """Each sample of (B, 1, H, W) mapped linearly onto [0, 1]."""
    low = x.amin(dim=(1, 2, 3), keepdim=True)
    high = x.amax(dim=(1, 2, 3), keepdim=True)
    return (x - low) / (high - low).clamp_min(1e-12)


def generate_clouds(batch: int, height: int, width: int, generator: torch.Generator,
                    config: CloudConfig = CloudConfig()) -> Clouds:
    """`batch` independent cloud fields of height × width pixels (see the module docstring)."""
    shape = fractal_noise(batch, height, width, config.scale, config.octaves, generator)  # (B, 1, H, W)
    flat = shape.flatten(1)  # (B, H·W)
    cover = uniform(batch, config.cover, generator)
    rank = ((1 - cover) * (flat.shape[1] - 1)).round().long()  # the (1 − cover) quantile, nearest rank
    threshold = flat.sort(dim=1).values.gather(1, rank[:, None])[:, 0]  # (B,)
    edge = uniform(batch, config.edge, generator) * flat.std(dim=1)
    ramp = ((shape - threshold[:, None, None, None]) / edge[:, None, None, None]).clamp(0, 1)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep

    opaque = torch.rand(batch, generator=generator) < config.opaque_fraction
    peak = torch.where(opaque, torch.ones(batch), uniform(batch, config.peak, generator))

    brightness = uniform(batch, config.brightness, generator)
    texture = unit_range(fractal_noise(batch, height, width, config.scale // 2, config.octaves, generator))
    spectrum = (torch.tensor(CLOUD_SPECTRUM)[None, :, None, None] * brightness[:, None, None, None]
                * (1 + config.texture * (texture - 0.5)))  # (B, 13, H, W)

    veil = unit_range(fractal_noise(batch, height, width, 2 * config.scale, min(2, config.octaves), generator))
    haze = uniform(batch, config.haze, generator)[:, None, None, None] * veil
    return Clouds(ramp, peak, spectrum.clamp(0, 1), haze)
