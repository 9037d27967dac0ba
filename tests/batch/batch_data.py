"""Batch test helpers: real Sentinel-2 scenes (crops of the Sen1Floods11 chip), a corrupt one, the NDWI reference."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
from tests.scene.scene_data import S1, S2, crop

# (row, col, height, width) of three scenes cut from the 512 x 512 chip; no side is a multiple of a block size
CROPS = ((0, 0, 300, 280), (100, 200, 257, 301), (250, 31, 262, 190))
SMALL_DECLOUD = {"steps": 1, "network": {"widths": [8, 16], "encoder_blocks": [1, 1], "decoder_blocks": [1, 1],
                                         "fusion_heads": [1, 1]}}


def s2_scenes(folder: Path, crops: Sequence[tuple[int, int, int, int]] = CROPS) -> list[Path]:
    return [crop(S2, folder / f"scene{i}.tif", *window) for i, window in enumerate(crops)]


def s1_scene(folder: Path, name: str, window: tuple[int, int, int, int]) -> Path:
    return crop(S1, folder / name, *window)


def corrupt_raster(path: Path) -> Path:
    """A file named like a GeoTIFF whose header promises a directory that is not there."""
    path.write_bytes(b"II*\x00" + bytes(range(256)) * 8)
    return path


def ndwi_reference(path: Path) -> np.ndarray:
    """(B3 − B8)/(B3 + B8) in float64 from the raw bands, NaN where either is the file's nodata."""
    with rasterio.open(path) as src:
        green, nir = src.read(3).astype(np.float64), src.read(8).astype(np.float64)
        nodata = src.nodata
    index = (green - nir) / (green + nir)
    if nodata is not None:
        index[(green == nodata) | (nir == nodata)] = np.nan
    return index


def band(path: str | os.PathLike, index: int = 1) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(index)


def tags(path: str | os.PathLike) -> dict[str, str]:
    with rasterio.open(path) as ds:
        return ds.tags()


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path
