"""Major TOM thumbnail renderings: what COP-GEN-Beta sees and produces, to and from real rasters.

COP-GEN-Beta was trained on the 8-bit RGB ``thumbnail.png`` files of Major TOM Core (ESA-PhiLab/Major-TOM,
``src/extras/thumbnail_*.py``), not on physical values. To feed it real rasters we render them the same way:

- **S2 (L1C or L2A)**: RGB = (B4, B3, B2), each ``clip(1.3 · (DN / 10000)^0.6, 0, 1)`` (DN = reflectance × 10000).
- **S1 RTC**: VV and VH in dB (``10 · log10`` of linear backscatter; linear negatives first raised to the smallest
  non-negative value), each min-max stretched over the valid pixels of the image; RGB = (VV, (VV + VH) / max(VV + VH),
  VH); nodata renders as 0.
- **DEM**: a hillshade, light from azimuth 315°, altitude 45°, vertical exaggeration 1 with a pixel spacing of 1
  (as matplotlib's ``LightSource.hillshade`` with defaults, including its min-max contrast stretch), grey in all
  three channels.

Every rendering is quantised to 8-bit levels (the thumbnails were uint8 PNGs) and returned as float (3, H, W) in
[0, 1]. The way back, `rendering_to_raster`, writes the generated image as 8-bit bands of that *rendering*: an S2 output
is a true-colour picture, an S1 output a false-colour dB composite, a DEM output a hillshade. They are not
reflectances, backscatter or elevations, and the band descriptions say so.
"""

from __future__ import annotations

import math

import torch

from rsinfer.pipelines.sentinel import detect_s1_scale
from rsinfer.pipelines.vocabulary import S1_SCALES, S1Scale


# Band descriptions of the GeoTIFF written for each generated modality (the rendering, not a physical quantity).
RENDERING_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "s2_l2a": ("S2 L2A true-colour thumbnail rendering: red (B4)", "green (B3)", "blue (B2)"),
    "s2_l1c": ("S2 L1C true-colour thumbnail rendering: red (B4)", "green (B3)", "blue (B2)"),
    "s1_rtc": ("S1 RTC thumbnail rendering: VV dB min-max", "(VV + VH) / max", "VH dB min-max"),
    "dem": ("DEM thumbnail rendering: hillshade (azimuth 315, altitude 45)",),
}


def _to_8bit_levels(image: torch.Tensor) -> torch.Tensor:
    """Truncate [0, 1] values to the 256 levels a uint8 PNG holds (as numpy's astype(uint8) after ×255)."""
    return torch.floor(image.clamp(0.0, 1.0) * 255.0) / 255.0


def s2_rendering(rgb_dn: torch.Tensor) -> torch.Tensor:
    """(3, H, W) DN of B4, B3, B2 → the true-colour rendering (3, H, W) in [0, 1]; non-finite pixels render 0."""
    if rgb_dn.dim() != 3 or rgb_dn.shape[0] != 3:
        raise ValueError(f"S2 rendering needs (3, H, W) bands B4, B3, B2; got shape {tuple(rgb_dn.shape)}")
    dn = torch.nan_to_num(rgb_dn.float(), nan=0.0).clamp_min(0.0)
    return _to_8bit_levels(1.3 * (dn / 10000.0) ** 0.6)


def _stretch(band_db: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    if not valid.any():
        raise ValueError("S1 rendering: no valid pixel in the band")
    low, high = band_db[valid].min(), band_db[valid].max()
    stretched = (band_db - low) / (high - low).clamp_min(1e-12)
    return torch.where(valid, stretched, torch.zeros_like(stretched))


def _linear_to_db(band: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    usable = valid & (band >= 0)
    floor_value = band[usable].min() if usable.any() else torch.tensor(0.0)
    band = torch.where(band < 0, floor_value, band)
    return 10.0 * torch.log10(band.clamp_min(torch.finfo(torch.float32).tiny))


def s1_rendering(vv_vh: torch.Tensor, scale: S1Scale = "auto", valid: torch.Tensor | None = None) -> torch.Tensor:
    """(2, H, W) VV, VH backscatter (linear or dB) → the false-colour dB composite (3, H, W) in [0, 1].

    `scale="auto"` reads the values as dB when the median valid value is negative (linear backscatter is ≥ 0).
    `valid` (H, W) marks usable pixels; non-finite values are invalid too.
    """
    if vv_vh.dim() != 3 or vv_vh.shape[0] != 2:
        raise ValueError(f"S1 rendering needs (2, H, W) bands VV, VH; got shape {tuple(vv_vh.shape)}")
    if scale not in S1_SCALES:
        raise ValueError(f"unknown S1 scale {scale!r}; choose one of {S1_SCALES}")
    bands = vv_vh.float()
    ok = torch.isfinite(bands).all(dim=0) & (valid if valid is not None else True)
    bands = torch.nan_to_num(bands, nan=0.0, posinf=0.0, neginf=0.0)
    if scale == "auto":
        scale = detect_s1_scale(bands[0][ok])
    db = bands if scale == "dB" else torch.stack([_linear_to_db(band, ok) for band in bands])
    vv, vh = _stretch(db[0], ok), _stretch(db[1], ok)
    combined = vv + vh
    green = combined / combined.max() if combined.max() > 0 else combined
    return _to_8bit_levels(torch.stack([vv, green, vh]))


def dem_rendering(dem: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """(1, H, W) or (H, W) elevations → the hillshade rendering, grey in 3 channels (3, H, W) in [0, 1].

    Invalid pixels (non-finite or `valid` False) are filled with the mean valid elevation before shading and
    render 0.
    """
    elevation = dem.float().squeeze(0) if dem.dim() == 3 else dem.float()
    if elevation.dim() != 2:
        raise ValueError(f"DEM rendering needs (H, W) or (1, H, W); got shape {tuple(dem.shape)}")
    if min(elevation.shape) < 2:
        raise ValueError(f"DEM rendering needs at least 2 × 2 pixels, got {tuple(elevation.shape)}")
    ok = torch.isfinite(elevation) & (valid if valid is not None else True)
    if not ok.any():
        raise ValueError("DEM rendering: no valid pixel")
    elevation = torch.where(ok, elevation, elevation[ok].mean())
    # Rows run downwards, so the northward derivative has the opposite sign of d/drow (pixel spacing 1).
    d_row, d_col = torch.gradient(elevation.double(), spacing=(-1.0, 1.0))
    normal = torch.stack([-d_col, -d_row, torch.ones_like(d_col)])
    normal = normal / normal.norm(dim=0, keepdim=True)
    azimuth, altitude = math.radians(90.0 - 315.0), math.radians(45.0)
    light = torch.tensor([math.cos(azimuth) * math.cos(altitude), math.sin(azimuth) * math.cos(altitude),
                          math.sin(altitude)], dtype=torch.float64)
    intensity = torch.einsum("chw,c->hw", normal, light)
    low, high = intensity.min(), intensity.max()
    if high - low > 1e-6:
        intensity = (intensity - low) / (high - low)
    shade = torch.where(ok, intensity.clamp(0.0, 1.0).float(), torch.zeros_like(elevation))
    return _to_8bit_levels(shade).expand(3, -1, -1).clone()


def rendering_to_raster(image: torch.Tensor, modality: str) -> tuple[torch.Tensor, tuple[str, ...]]:
    """A generated image (3, H, W) in [0, 1] → (uint8 bands, band descriptions) of `modality`'s rendering.

    S2 and S1 keep three bands; a DEM keeps one (the mean of the three grey channels).
    """
    if modality not in RENDERING_DESCRIPTIONS:
        raise ValueError(f"unknown modality {modality!r}; choose from {tuple(RENDERING_DESCRIPTIONS)}")
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) image, got shape {tuple(image.shape)}")
    bands = image.float().mean(dim=0, keepdim=True) if modality == "dem" else image.float()
    return torch.round(bands.clamp(0.0, 1.0) * 255.0).to(torch.uint8), RENDERING_DESCRIPTIONS[modality]
