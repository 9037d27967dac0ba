"""Wald's protocol: degrade a real MS/PAN pair by the PAN/MS ratio so the original MS becomes the reference.

Reduced-resolution assessment (Wald, Ranchin, Mangolini 1997) sharpens a pair degraded by the scale ratio r and
compares the result with the original MS. The toolbox's degradation (`Tools/resize_images.m`, `MTF.m`, `MTF_PAN.m`):

    MS_lr[b]  = decimate_r(MTF_b ∗ MS[b])        (B, H/r, W/r)
    PAN_lr    = decimate_r(MTF_pan ∗ PAN)        (H/r, W/r)

with ∗ the same-size MTF filtering of `mtf.py` (border replicated) and decimate_r the nearest-neighbour shrink
`imresize(·, 1/r, 'nearest')`, which keeps pixels r·i + ⌊r/2⌋ (0-based; MATLAB maps output pixel u to input
r·u + (1 − r)/2 and rounds up at the tie, i.e. pixel 2, 6, 10, … at r = 4). That offset is where `interp23tap` puts
its samples back, so EXP(decimate(x)) is aligned with x.

The PAN: the DLPan copy of `resize_images.m` shrinks it with bicubic `imresize`; Vivone's toolbox with its PAN-MTF
flag set, and the Python ports of the protocol, filter it with the PAN's own MTF (GNyq of the PAN: QB 0.15, IKONOS
0.17, GeoEye-1/WV4 0.16, WV2 0.11, WV3 0.14, otherwise 0.15) and decimate like the MS. We use the PAN MTF, so both
images of the pair see the same kind of sensor blur.

Sensors without a PAN in the data (e.g. the bundled Landsat 8 B2/B3/B4): `synthetic_pan` makes one as the mean of the
visible MS bands (centre in 400–700 nm; all bands when their wavelengths are unknown), AT THE REFERENCE SCALE, i.e.
it plays the role of the already-degraded PAN. It is synthetic: an exact linear combination of the reference bands,
which flatters component-substitution methods (GS/GSA/Brovey keep their intensity exactly); real PANs do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from rsinfer.pansharpening.mtf import GainSpec, band_gains, mtf_filter
from rsinfer.sensors import DEFAULT_PAN_GNYQ, Band, Sensor

VISIBLE_NM = (400.0, 700.0)


class ReducedPair(NamedTuple):
    """A reduced-resolution pair: `ms` (B, H/r, W/r) and `pan` (H, W) at r× the MS resolution, both float64 DN."""

    ms: np.ndarray
    pan: np.ndarray


def decimate(image: np.ndarray, ratio: int) -> np.ndarray:
    """Nearest-neighbour shrink by `ratio` over the last two axes (`imresize(·, 1/ratio, 'nearest')`)."""
    rows, cols = image.shape[-2:]
    if rows % ratio or cols % ratio:
        raise ValueError(f"a {rows}×{cols} image cannot be shrunk by {ratio}: rows and cols must be multiples of it; "
                         f"crop to {rows - rows % ratio}×{cols - cols % ratio} first")
    first = ratio // 2
    return image[..., first::ratio, first::ratio]


def degrade(ms: np.ndarray, pan: np.ndarray | None, mtf: GainSpec, ratio: int = 4, *,
            pan_gnyq: float | None = None) -> ReducedPair:
    """The Wald reduced-resolution pair of a full-resolution MS (B, H, W) and PAN (r·H, r·W), DN.

    `mtf`: GNyq per MS band (a sensor from the registry, one value, or one per band). `pan_gnyq`: GNyq of the PAN
    (default: the sensor's PAN value, else the toolbox's 0.15). Without a PAN (`pan=None`), the pair's PAN is
    `synthetic_pan(ms, …)` at the scale of `ms` (the reference), using the sensor's band wavelengths when given.
    Returns MS (B, H/r, W/r) and PAN (H, W).
    """
    ms = np.asarray(ms, dtype=np.float64)
    if ms.ndim != 3:
        raise ValueError(f"degrade takes an MS of shape (bands, rows, cols), got {ms.shape}")
    if ratio < 2:
        raise ValueError(f"the Wald ratio must be an integer ≥ 2, got {ratio}")
    gains = band_gains(mtf, ms.shape[0])
    ms_lr = decimate(mtf_filter(ms, gains, ratio), ratio)
    if pan is None:
        return ReducedPair(ms_lr, synthetic_pan(ms, mtf.bands if isinstance(mtf, Sensor) else None))
    pan = np.asarray(pan, dtype=np.float64)
    if pan.shape != (ms.shape[1] * ratio, ms.shape[2] * ratio):
        raise ValueError(f"the PAN must be {ratio}× the MS: MS {ms.shape[1:]} needs PAN "
                         f"{(ms.shape[1] * ratio, ms.shape[2] * ratio)}, got {pan.shape}")
    if pan_gnyq is None:
        pan_band = mtf.pan if isinstance(mtf, Sensor) else None
        pan_gnyq = pan_band.gnyq if pan_band is not None and pan_band.gnyq is not None else DEFAULT_PAN_GNYQ
    pan_lr = decimate(mtf_filter(pan[None], pan_gnyq, ratio)[0], ratio)
    return ReducedPair(ms_lr, pan_lr)


def synthetic_pan(ms: np.ndarray, bands: Sequence[Band] | None = None) -> np.ndarray:
    """A SYNTHETIC PAN (H, W): the mean of the visible bands of `ms` (B, H, W); all bands when `bands` is None.

    `bands` are the registry bands of the channels of `ms`, in order; visible means a centre in 400–700 nm.
    """
    ms = np.asarray(ms, dtype=np.float64)
    if ms.ndim != 3:
        raise ValueError(f"synthetic_pan takes an MS of shape (bands, rows, cols), got {ms.shape}")
    if bands is None:
        return ms.mean(axis=0)
    if len(bands) != ms.shape[0]:
        raise ValueError(f"{len(bands)} band descriptions for an MS with {ms.shape[0]} bands")
    visible = [i for i, b in enumerate(bands)
               if b.center_nm is not None and VISIBLE_NM[0] <= b.center_nm <= VISIBLE_NM[1]]
    if not visible:
        raise ValueError(f"no visible band (centre in {VISIBLE_NM[0]:.0f}–{VISIBLE_NM[1]:.0f} nm) among "
                         f"{[b.name for b in bands]} to make a synthetic PAN from")
    return ms[visible].mean(axis=0)
