"""PNG previews of generated images, with text chunks and an optional visible banner (no imaging dependency).

`write_png(path, rgb, text, banner)` writes an 8-bit RGB PNG atomically (`rsinfer.files`). `text` goes into
tEXt chunks (e.g. ``weights: random``); `banner` is burnt into the top rows in a 5×7 pixel font so a preview of a
random-weights run can never pass for a real result. `rgb_preview` renders a written optical scene in true colour
with the 2–98 % stretch of `finite_quantiles`.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from rsinfer.files import write_bytes_atomically
from rsinfer.io import read_decimated

QUANTILE_SAMPLES = 100_000  # a stretch's quantiles are taken on every k-th finite value, about this many

# 5×7 glyphs, one string of 7 rows per character ('#' = ink); the characters banners use.
_FONT: dict[str, tuple[str, ...]] = {
    "A": (".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "B": ("####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."),
    "C": (".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."),
    "D": ("####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####."),
    "E": ("#####", "#....", "#....", "####.", "#....", "#....", "#####"),
    "G": (".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".###."),
    "H": ("#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "I": ("#####", "..#..", "..#..", "..#..", "..#..", "..#..", "#####"),
    "L": ("#....", "#....", "#....", "#....", "#....", "#....", "#####"),
    "M": ("#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"),
    "N": ("#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#", "#...#"),
    "O": (".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "R": ("####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"),
    "S": (".####", "#....", "#....", ".###.", "....#", "....#", "####."),
    "T": ("#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."),
    "U": ("#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "W": ("#...#", "#...#", "#...#", "#.#.#", "#.#.#", "##.##", "#...#"),
    "-": (".....", ".....", ".....", "#####", ".....", ".....", "....."),
    " ": (".....",) * 7,
}


def _burn_banner(rgb: torch.Tensor, banner: str) -> torch.Tensor:
    """Red band across the top with `banner` in white, scaled to fit the width."""
    unknown = sorted(set(banner.upper()) - set(_FONT))
    if unknown:
        raise ValueError(f"banner characters {unknown} are not in the preview font ({''.join(sorted(_FONT))})")
    _, height, width = rgb.shape
    glyph_width = 6 * len(banner)  # 5 pixels + 1 space per character
    scale = max(1, min(4, (width - 4) // glyph_width))
    band_height = min(height, 9 * scale)
    out = rgb.clone()
    out[:, :band_height] = torch.tensor([200, 0, 0], dtype=torch.uint8)[:, None, None]
    for i, char in enumerate(banner.upper()):
        for r, row in enumerate(_FONT[char]):
            for c, ink in enumerate(row):
                if ink != "#":
                    continue
                top, left = (1 + r) * scale, 2 + (6 * i + c) * scale
                if top + scale <= band_height and left + scale <= width:
                    out[:, top:top + scale, left:left + scale] = 255
    return out


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png(path: str | os.PathLike, rgb: torch.Tensor, text: Mapping[str, str] | None = None,
              banner: str | None = None, overwrite: bool = True) -> Path:
    """Write (3, H, W) uint8 `rgb` as a PNG at `path` (atomically; an existing file is replaced only with
    `overwrite`); returns the path."""
    if rgb.dtype != torch.uint8 or rgb.dim() != 3 or rgb.shape[0] != 3:
        raise ValueError(f"a preview needs a (3, H, W) uint8 image; got {rgb.dtype} {tuple(rgb.shape)}")
    if banner:
        rgb = _burn_banner(rgb, banner)
    _, height, width = rgb.shape
    rows = rgb.permute(1, 2, 0).contiguous().numpy()  # (H, W, 3)
    raw = b"".join(b"\x00" + rows[r].tobytes() for r in range(height))  # filter type 0 per row
    body = [_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))]
    for key, value in (text or {}).items():
        body.append(_chunk(b"tEXt", key.encode("latin-1")[:79] + b"\x00" + value.encode("latin-1", "replace")))
    body += [_chunk(b"IDAT", zlib.compress(raw, 6)), _chunk(b"IEND", b"")]
    return write_bytes_atomically(path, b"\x89PNG\r\n\x1a\n" + b"".join(body), replace=overwrite)


def finite_quantiles(values: torch.Tensor, low: float = 0.02, high: float = 0.98) -> torch.Tensor | None:
    """(2,) the `low` and `high` quantiles of the finite entries of `values`, in its dtype, taken on every k-th of
    them (about `QUANTILE_SAMPLES`); None when none is finite."""
    finite = values[torch.isfinite(values)]
    if finite.numel() == 0:
        return None
    return torch.quantile(finite[:: max(1, finite.numel() // QUANTILE_SAMPLES)],
                          torch.tensor([low, high], dtype=finite.dtype))


def rgb_preview(path: str | os.PathLike, bands: Sequence[str], side: int = 1024) -> torch.Tensor:
    """(3, h, w) uint8 true colour (B4, B3, B2) of a written scene whose bands are `bands`, one 2–98 % stretch for
    the three bands."""
    rgb = torch.stack([torch.from_numpy(read_decimated(path, list(bands).index(b) + 1, side))
                       for b in ("B4", "B3", "B2")])
    limits = finite_quantiles(rgb)
    if limits is None:
        return torch.zeros(3, *rgb.shape[1:], dtype=torch.uint8)
    low, high = limits
    scaled = ((rgb - low) / (high - low).clamp_min(1e-6)).nan_to_num(0.0).clamp(0, 1)
    return (scaled * 255).round().to(torch.uint8)
