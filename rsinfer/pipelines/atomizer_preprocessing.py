"""BigEarthNet v2 preprocessing as the Atomizer authors trained (HugoRdet/Atomizer @57bb634c with configilm 0.7).

1. Each Sentinel-2 L2A band is read at its native resolution (10 m: 120 px, 20 m: 60 px, 60 m: 20 px for a
   BigEarthNet patch) and brought to the 10 m grid by nearest neighbour, ``F.interpolate(mode="nearest")``, as
   configilm's ``stack_and_interpolate`` does: every 20 m pixel becomes a 2×2 block, every 60 m pixel a 6×6 block.
2. The 12 bands are stacked in BigEarthNet v2 order (`BENV2_S2_BANDS`: B01 B02 B03 B04 B05 B06 B07 B08 B8A B09 B11
   B12) and z-scored per band in float32, z = (DN − mean)/std, with the published statistics
   (``data/normalisation/stats.pt``, rows 2–13; rows 0–1 are Sentinel-1 VV/VH).
3. z is rounded to float16 and back, because upstream stores its training images as float16 in h5.
4. The resolution factor r of a sample is the authors' synthetic-resolution factor. They shrink the 120 px image to
   120·r px and bring it back to 120 px, so its content has ground resolution 10 m / r on the 10 m grid. A native
   BigEarthNet patch has r = 1. For content at GSD g on that grid, r = 10 / g (`resolution_factor`).

Pure tensor functions: reading the rasters is the caller's job (rsinfer.io).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from rsinfer.models.atomizer_tokens import BENV2_S2_BANDS
from rsinfer.sensors import sensor

__all__ = ["BENV2_S2_BANDS", "BENV2_S2_MEAN", "BENV2_S2_STD", "GRID_GSD_M", "benv2_image", "normalise",
           "resolution_factor", "to_grid"]

GRID_GSD_M = 10.0  # BigEarthNet v2 images are 120 × 120 on the 10 m grid
# stats.pt rows 2..13 (float32 values, written exactly): mean and std of the DN of each band, BENV2_S2_BANDS order
BENV2_S2_MEAN: tuple[float, ...] = (
    360.0860290527344, 437.97357177734375, 620.041748046875, 597.6444702148438, 964.3961181640625,
    1821.5303955078125, 2110.66064453125, 2258.336181640625, 2304.39697265625, 2311.676025390625,
    1611.454345703125, 1020.8138427734375)
BENV2_S2_STD: tuple[float, ...] = (
    585.1154174804688, 618.8921508789062, 612.9769287109375, 694.1395263671875, 742.134033203125,
    1090.022216796875, 1263.2496337890625, 1354.1943359375, 1339.99072265625, 1297.309326171875,
    1059.469970703125, 809.1749877929688)


def _band_index(name: str) -> int:
    """Index in `BENV2_S2_BANDS` of a Sentinel-2 band, any registry spelling ("B2", "b02", "B8a")."""
    canonical = sensor("sentinel-2").band(name).name
    if canonical not in BENV2_S2_BANDS:
        raise ValueError(f"no BigEarthNet v2 statistics for band {name!r}; known bands: {', '.join(BENV2_S2_BANDS)}")
    return BENV2_S2_BANDS.index(canonical)


def to_grid(band: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """One band (h, w) → (H, W) float32 by nearest neighbour (configilm's upsampling); unchanged if already (H, W)."""
    if band.dim() != 2:
        raise ValueError(f"a band must be (h, w), got shape {tuple(band.shape)}")
    band = band.float()
    if tuple(band.shape) == tuple(size):
        return band
    return F.interpolate(band[None, None], size=tuple(size), mode="nearest")[0, 0]


def normalise(dn: torch.Tensor, bands: Sequence[str] = BENV2_S2_BANDS) -> torch.Tensor:
    """DN (..., C, H, W) of `bands` → float32 z-scores rounded through float16, as the authors trained."""
    if dn.dim() < 3 or dn.shape[-3] != len(bands):
        raise ValueError(f"dn must be (..., {len(bands)}, H, W) for bands {list(bands)}, got {tuple(dn.shape)}")
    index = [_band_index(b) for b in bands]
    mean = torch.tensor([BENV2_S2_MEAN[i] for i in index], dtype=torch.float32, device=dn.device)[:, None, None]
    std = torch.tensor([BENV2_S2_STD[i] for i in index], dtype=torch.float32, device=dn.device)[:, None, None]
    return ((dn.float() - mean) / std).half().float()


def benv2_image(bands: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The 12 bands of a BigEarthNet S2 patch at native resolutions, by name → the normalised (12, H, W) image.

    H, W are those of the 10 m bands (B02); the others are brought to them by nearest neighbour.
    """
    by_index = {_band_index(name): band for name, band in bands.items()}
    missing = [b for i, b in enumerate(BENV2_S2_BANDS) if i not in by_index]
    if missing:
        raise ValueError(f"missing bands {missing}; a BigEarthNet v2 image needs {', '.join(BENV2_S2_BANDS)}")
    size = tuple(by_index[BENV2_S2_BANDS.index("B02")].shape)
    stacked = torch.stack([to_grid(by_index[i], size) for i in range(len(BENV2_S2_BANDS))])  # (12, H, W) DN
    return normalise(stacked)


def resolution_factor(gsd_m: float) -> float:
    """r for content at ground resolution `gsd_m` on the 10 m grid: 10 / gsd_m (1.0 for native BigEarthNet)."""
    if not gsd_m > 0:
        raise ValueError(f"gsd_m must be > 0, got {gsd_m!r}")
    return GRID_GSD_M / gsd_m
