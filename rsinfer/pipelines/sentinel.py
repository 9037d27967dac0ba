"""Sentinel-2 and Sentinel-1 normalisation for DB-CR (the paper's experimental setup, research/dbcr.md §1.2).

Sentinel-2: DN = reflectance × 10000; the network sees clip(DN, 0, 10000) / 10000 for the 13 L1C bands
    B1 B2 B3 B4 B5 B6 B7 B8 B8A B9 B10 B11 B12.
  An L2A product has 12 bands: B10 (cirrus, 1375 nm) is dropped by the atmospheric correction. Its bands are mapped to
  the 13 network slots by name (band descriptions such as "B02" or "B8A"; without descriptions, the standard L2A order
  is assumed) and the B10 slot is filled with the constant `L2A_B10_FILL` — never silently with another band. The
  output then has the input's 12 bands again.
Sentinel-1: σ0 in dB, VV clipped to [−25, 0] and VH to [−32.5, 0], each mapped linearly to [0, 1].
  Linear-power inputs are converted with 10·log10 first. `detect_s1_scale` decides from the data: σ0 in dB is
  negative almost everywhere (the median of VV is about −10 dB over land and water), linear σ0 never is, so a
  negative median of the valid VV values means dB.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from rsinfer.pipelines.bands import BandLayout, BandRule
from rsinfer.pipelines.vocabulary import S1Scale

L1C_BANDS: tuple[str, ...] = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
L2A_BANDS: tuple[str, ...] = tuple(b for b in L1C_BANDS if b != "B10")
S2_SCALE = 10000.0
# B10 in L1C is cirrus absorption: 5–42 DN over the SEN12MS-CR samples (research/dbcr.md §5). An L2A input has no B10,
# so the network gets the middle of that range, 20 DN = 0.002 reflectance.
L2A_B10_FILL = 0.002
S1_DB_RANGES: dict[str, tuple[float, float]] = {"VV": (-25.0, 0.0), "VH": (-32.5, 0.0)}

S2Level = Literal["L1C", "L2A"]
S2_LAYOUTS = (BandLayout("Sentinel-2 L1C", L1C_BANDS), BandLayout("Sentinel-2 L2A", L2A_BANDS))
S1_LAYOUT = BandLayout("Sentinel-1 dual polarisation", ("VV", "VH"))


def canonical_band(name: str | None) -> str | None:
    """"B02" / "b2" / "B8a" / "B02 (490 nm)" → "B2" / "B2" / "B8A" / "B2"; None when the name is not a band name."""
    if not name:
        return None
    match = re.match(r"^\s*B0*(\d{1,2}A?)\b", name.upper())
    return f"B{match.group(1)}" if match else None


def s2_bands(wanted: tuple[str, ...] | None = None) -> BandRule:
    """Sentinel-2 bands `wanted` (None: all of them, L1C or L2A) by name, or by position in the standard order."""
    return BandRule(S2_LAYOUTS, wanted, canonical_band)


def s1_bands() -> BandRule:
    """Sentinel-1 VV and VH, by polarisation name or by position (VV, VH)."""
    return BandRule((S1_LAYOUT,), ("VV", "VH"), canonical_polarisation)


def canonical_polarisation(name: str | None) -> str | None:
    """"VV" / "vh" / "Sigma0_VV" / "VV (dB)" → "VV" / "VH"; None when the text names no polarisation."""
    if not name:
        return None
    match = re.search(r"(?<![A-Z])(VV|VH|HH|HV)(?![A-Z])", name.upper())
    return match.group(1) if match else None


@dataclass(frozen=True)
class S2Layout:
    """Where each input band goes among the 13 network bands: `slots[i]` is the network index of input band i."""

    level: S2Level
    slots: tuple[int, ...]

    @property
    def input_bands(self) -> tuple[str, ...]:
        return tuple(L1C_BANDS[s] for s in self.slots)


def s2_layout(count: int, descriptions: Sequence[str | None] = ()) -> S2Layout:
    """The layout of a Sentinel-2 file with `count` bands: 13 = L1C, 12 = L2A (no B10), mapped by band name."""
    if count not in (12, 13):
        raise ValueError(f"a Sentinel-2 input needs 13 (L1C) or 12 (L2A, without B10) bands, got {count}")
    level: S2Level = "L1C" if count == 13 else "L2A"
    names = [canonical_band(d) for d in descriptions] if descriptions else []
    if not names or all(n is None for n in names):
        names = list(L1C_BANDS if level == "L1C" else L2A_BANDS)  # no usable descriptions: the standard order
    expected = set(L1C_BANDS if level == "L1C" else L2A_BANDS)
    if None in names or set(names) != expected or len(names) != count:
        raise ValueError(f"Sentinel-2 {level} band names {list(descriptions)} do not name the bands "
                         f"{sorted(expected, key=L1C_BANDS.index)} exactly once each")
    return S2Layout(level, tuple(L1C_BANDS.index(n) for n in names))


def normalise_s2(dn: torch.Tensor, layout: S2Layout) -> torch.Tensor:
    """(B, n_in, H, W) DN → (B, 13, H, W) reflectance clipped to [0, 1], in network band order."""
    if dn.shape[1] != len(layout.slots):
        raise ValueError(f"expected {len(layout.slots)} Sentinel-2 bands, got {dn.shape[1]}")
    reflectance = (dn.float().clamp(0, S2_SCALE) / S2_SCALE)
    out = torch.full((dn.shape[0], len(L1C_BANDS), *dn.shape[2:]), L2A_B10_FILL, dtype=torch.float32,
                     device=dn.device)
    out[:, list(layout.slots)] = reflectance
    return out


def denormalise_s2(x: torch.Tensor, layout: S2Layout) -> torch.Tensor:
    """(B, 13, H, W) network output → (B, n_in, H, W) DN in the input's band order, clipped to [0, 10000]."""
    return x[:, list(layout.slots)].clamp(0, 1) * S2_SCALE


def detect_s1_scale(vv: torch.Tensor) -> S1Scale:
    """'dB' when the median of the finite VV values is negative, else 'linear' (see the module docstring)."""
    values = vv[torch.isfinite(vv)]
    if values.numel() == 0:
        raise ValueError("cannot tell whether the Sentinel-1 input is in dB or linear: no valid pixel in VV")
    return "dB" if float(values.median()) < 0 else "linear"


def normalise_s1(s1: torch.Tensor, scale: S1Scale) -> torch.Tensor:
    """(B, 2, H, W) VV, VH σ0 (dB or linear power) → (B, 2, H, W) in [0, 1]."""
    if s1.shape[1] != 2:
        raise ValueError(f"a Sentinel-1 input needs 2 bands (VV, VH), got {s1.shape[1]}")
    if scale not in ("dB", "linear"):
        raise ValueError(f"Sentinel-1 scale {scale!r} is not one of ('dB', 'linear') (resolve 'auto' with "
                         "detect_s1_scale first)")
    db = s1.float() if scale == "dB" else 10 * torch.log10(s1.float().clamp_min(1e-10))
    lows = torch.tensor([S1_DB_RANGES["VV"][0], S1_DB_RANGES["VH"][0]], device=s1.device)[None, :, None, None]
    highs = torch.tensor([S1_DB_RANGES["VV"][1], S1_DB_RANGES["VH"][1]], device=s1.device)[None, :, None, None]
    return (torch.minimum(torch.maximum(db, lows), highs) - lows) / (highs - lows)
