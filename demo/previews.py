"""Side-by-side PNG previews: before | after | reference (and more panels), one PNG per model.

Every panel of a preview is stretched with the same limits (`stretch_limits`: the 2nd and 98th percentiles of each
band of the reference), so brightness differences between panels are real. Panels are placed left to right with a
white gutter, under a black header that carries the banner of the weights' kind (`rsinfer.pipelines.provenance.
weights_banner`: random, demo, none for a user's weights), so the banner never hides a pixel. What each panel shows is
written into the PNG's text chunks (``Title``, ``Panels``, ``Weights``, ``Data``), and printed by the report.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from rsinfer.pipelines.preview import finite_quantiles, write_png
from rsinfer.pipelines.provenance import weights_banner
from rsinfer.pipelines.spec import Weights

GUTTER = 4
HEADER = 40  # rows above the panels: the banner's band is at most 9 × 4 pixels high


Limits = tuple[torch.Tensor, torch.Tensor]  # low, high: (C, 1, 1) each


def stretch_limits(image: torch.Tensor, low: float = 0.02, high: float = 0.98) -> Limits:
    """Per channel of `image` (C, H, W): the `low` and `high` quantiles of its finite values (`finite_quantiles`)."""
    lows, highs = [], []
    for channel in image:
        limits = finite_quantiles(channel.double(), low, high)
        lo, hi = (0.0, 0.0) if limits is None else (float(limits[0]), float(limits[1]))
        lows.append(lo)
        highs.append(max(hi, lo + 1e-12))
    return torch.tensor(lows)[:, None, None], torch.tensor(highs)[:, None, None]


def colour(image: torch.Tensor, limits: Limits) -> torch.Tensor:
    """(C, H, W) values → (C, H, W) uint8, each channel linearly from its limits onto 0 … 255 (NaN: black)."""
    low, high = (limit.double() for limit in limits)
    return ((image.double() - low) / (high - low)).nan_to_num(0.0).clamp(0, 1).mul(255).round().to(torch.uint8)


def grey(values: torch.Tensor, limits: Limits) -> torch.Tensor:
    """(H, W) values → (3, H, W) uint8 grey."""
    return colour(values[None], limits).expand(3, -1, -1)


def side_by_side(panels: Sequence[torch.Tensor], zoom: int = 1) -> torch.Tensor:
    """(3, H, W) uint8 panels of one height → one (3, HEADER + zoom·H, ...) image, `zoom` times enlarged (nearest)."""
    heights = {p.shape[1] for p in panels}
    if len(heights) != 1:
        raise ValueError(f"panels must have one height, got {sorted(heights)}")
    scaled = [F.interpolate(p[None].float(), scale_factor=zoom, mode="nearest")[0].to(torch.uint8) for p in panels]
    height = scaled[0].shape[1]
    gutter = torch.full((3, height, GUTTER), 255, dtype=torch.uint8)
    row = torch.cat([part for p in scaled for part in (p, gutter)][:-1], dim=2)
    return torch.cat([torch.zeros(3, HEADER, row.shape[2], dtype=torch.uint8), row], dim=1)


def write_preview(path: str | os.PathLike, panels: Mapping[str, torch.Tensor], title: str, weights: Weights,
                  data: str, zoom: int = 1) -> Path:
    """`panels` (label → (3, H, W) uint8, left to right) side by side in one labelled PNG at `path`."""
    banner = weights_banner(weights)
    text = {"Title": title, "Panels": " | ".join(panels), "Weights": banner or "trained weights given by the user",
            "Data": data}
    return write_png(path, side_by_side(list(panels.values()), zoom), text, banner=banner)
