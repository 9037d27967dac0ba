"""Input rasters seen through the output grid: validation, resampling on the fly, windowed float32 reads.

An input whose CRS, transform and shape equal the target grid is read directly by windows. Any other input (another
CRS, resolution, alignment or extent) is read through a GDAL `WarpedVRT` onto the target grid, so windowed reads
resample on the fly and never load the whole source; pixels the source does not cover come back as nodata.

Per input, an `InputSpec` states the resolution and resampling (the scene engine takes them from `fn.input_specs`):
- ``scale``: pixels per output-grid pixel along each axis (1: the output grid; 0.25: 4x coarser, e.g. multispectral
  beside a panchromatic grid; 0.5: 20 m Sentinel-2 bands beside a 10 m grid). Each window is read at its own scale,
  covering the same ground footprint as the output window.
- ``resampling``: ``"bilinear"`` for continuous data (reflectance, backscatter, elevation; the default) or
  ``"nearest"`` for masks and class labels, whose values must never be interpolated. Source nodata is excluded
  from interpolation.

Validity: a pixel is valid when no band is the source's nodata value or NaN (and, for warped inputs, the source covers
it). Reads return float32 values and that (h, w) validity mask; invalid pixels hold arbitrary values.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling as RioResampling
from rasterio.errors import RasterioIOError
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window as RioWindow

from rsinfer.errors import InputDataError
from rsinfer.io.grid import Grid
from rsinfer.io.names import RESAMPLINGS, Resampling
from rsinfer.tiling import Window

SUPPORTED_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")
_RIO_RESAMPLING = {"bilinear": RioResampling.bilinear, "nearest": RioResampling.nearest}


class RasterInputError(InputDataError):
    """An input raster cannot be used; the message names the file and the problem (an `InputDataError`, so a
    ValueError)."""


@dataclass(frozen=True)
class InputSpec:
    """How the engine reads one input: at `scale` pixels per output pixel, resampled with `resampling`."""

    scale: float = 1.0
    resampling: Resampling = "bilinear"

    def __post_init__(self) -> None:
        if not (isinstance(self.scale, (int, float)) and math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"InputSpec.scale must be a positive number, got {self.scale!r}")
        if self.resampling not in RESAMPLINGS:
            raise ValueError(f"InputSpec.resampling must be one of {RESAMPLINGS}, got {self.resampling!r}")


RasterLike = str | os.PathLike | DatasetReader


def open_raster(source: RasterLike) -> DatasetReader:
    """Open a path (or pass an open dataset through) with errors that name the file and the problem."""
    if isinstance(source, DatasetReader):
        if source.closed:
            raise RasterInputError(f"{source.name}: the dataset is closed")
        dataset = source
    else:
        path = Path(source)
        if not path.exists() and not os.fspath(source).startswith("/vsi"):
            raise FileNotFoundError(f"{path}: no such file")
        if path.is_dir():
            raise RasterInputError(f"{path}: is a directory, not a raster")
        if path.exists() and not os.access(path, os.R_OK):
            raise RasterInputError(f"{path}: unreadable (permission denied)")
        try:
            dataset = rasterio.open(path)
        except RasterioIOError as err:
            raise RasterInputError(f"{path}: not a raster GDAL can read ({err})") from err
    if dataset.crs is None:
        raise RasterInputError(f"{dataset.name}: has no CRS (georeference it, e.g. gdal_edit.py -a_srs)")
    return dataset


@dataclass(frozen=True)
class RasterInfo:
    """What a pipeline needs to know about an input before reading it: its bands and types."""

    path: str
    count: int
    descriptions: tuple[str | None, ...]
    dtypes: tuple[str, ...]
    nodata: float | None
    shape: tuple[int, int]  # (height, width)


def raster_info(source: RasterLike) -> RasterInfo:
    """The band count, descriptions, dtypes, nodata and shape of a raster (opened and closed again)."""
    dataset = open_raster(source)
    try:
        return RasterInfo(str(source if not isinstance(source, DatasetReader) else source.name), dataset.count,
                          tuple(d or None for d in dataset.descriptions), tuple(dataset.dtypes), dataset.nodata,
                          (dataset.height, dataset.width))
    finally:
        if dataset is not source:
            dataset.close()


def raster_tags(source: RasterLike) -> dict[str, str]:
    """The dataset's metadata tags (GDAL's default domain, e.g. the RSINFER_* provenance tags), opened and closed
    again."""
    dataset = open_raster(source)
    try:
        return dict(dataset.tags())
    finally:
        if dataset is not source:
            dataset.close()


def read_decimated(source: RasterLike, band: int, side: int = 512) -> np.ndarray:
    """Band `band` (1-based) of a raster read whole at most side × side pixels (GDAL overviews or decimation),
    float32 with nodata as NaN: for statistics and previews of a whole scene without reading it at full size."""
    dataset = open_raster(source)
    try:
        check_bands(dataset, (band,))
        scale = max(dataset.height, dataset.width) / side
        shape = (max(1, round(dataset.height / max(scale, 1))), max(1, round(dataset.width / max(scale, 1))))
        return dataset.read(band, out_shape=shape, masked=True).astype(np.float32).filled(np.nan)
    finally:
        if dataset is not source:
            dataset.close()


def check_bands(dataset: DatasetReader, bands: Sequence[int] | None) -> tuple[int, ...]:
    """The 1-based band indexes to read (all by default), each in range and of a supported dtype."""
    indexes = tuple(range(1, dataset.count + 1)) if bands is None else tuple(bands)
    if not indexes:
        raise RasterInputError(f"{dataset.name}: empty band list")
    for index in indexes:
        if not isinstance(index, int) or isinstance(index, bool) or not 1 <= index <= dataset.count:
            raise RasterInputError(f"{dataset.name}: band index {index!r} out of range (the file has "
                                   f"{dataset.count} bands, numbered 1..{dataset.count})")
        dtype = dataset.dtypes[index - 1]
        if dtype not in SUPPORTED_DTYPES:
            raise RasterInputError(f"{dataset.name}: band {index} has unsupported dtype {dtype}; "
                                   f"supported: {', '.join(SUPPORTED_DTYPES)}")
    return indexes


def grid_of(dataset: DatasetReader, bands: Sequence[int] | None = None) -> Grid:
    """The grid of `dataset`, with the nodata value and descriptions of the selected bands."""
    indexes = check_bands(dataset, bands)
    return Grid(dataset.crs, dataset.transform, dataset.height, dataset.width, dataset.nodata,
                tuple(dataset.descriptions[i - 1] for i in indexes))


def _overlaps(dataset: DatasetReader, grid: Grid) -> bool:
    left, bottom, right, top = transform_bounds(dataset.crs, grid.crs, *dataset.bounds, densify_pts=21)
    g_left, g_bottom, g_right, g_top = grid.bounds
    return left < g_right and right > g_left and bottom < g_top and top > g_bottom


def _same_grid(dataset: DatasetReader, grid: Grid) -> bool:
    return (dataset.crs == grid.crs and dataset.transform.almost_equals(grid.transform, precision=1e-9)
            and (dataset.height, dataset.width) == grid.shape)


class RasterSource:
    """One input seen on `grid` at `spec.scale`, read by output-grid windows.

    `extent` (height, width) in output-grid pixels is the area reads may cover: the grid itself, or the grid padded
    up to one tile for scenes smaller than a tile (the padding reads as nodata). Not thread-safe: one reader thread.
    """

    def __init__(self, source: RasterLike, grid: Grid, bands: Sequence[int] | None = None,
                 spec: InputSpec = InputSpec(), extent: tuple[int, int] | None = None) -> None:
        self.dataset = open_raster(source)
        self._owns_dataset = not isinstance(source, DatasetReader)  # a dataset the caller opened stays open
        self.name = self.dataset.name
        self.indexes = check_bands(self.dataset, bands)
        self.spec = spec
        if not _overlaps(self.dataset, grid):
            raise RasterInputError(f"{self.name}: does not overlap the output grid (bounds {grid.bounds} in "
                                   f"{grid.crs.to_string()}): empty intersection")
        self.nodata = [self.dataset.nodatavals[i - 1] for i in self.indexes]
        height, width = extent if extent is not None else grid.shape
        self.warped: WarpedVRT | None = None
        if spec.scale != 1 or not _same_grid(self.dataset, grid):
            target = grid.scaled(spec.scale, height, width)
            self.warped = WarpedVRT(self.dataset, crs=target.crs, transform=target.transform, width=target.width,
                                    height=target.height, resampling=_RIO_RESAMPLING[spec.resampling],
                                    dtype="float32", nodata=float("nan"))

    @property
    def count(self) -> int:
        return len(self.indexes)

    def read(self, window: Window, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Values (C, h·scale, w·scale) float32 and validity (h·scale, w·scale) of the footprint of a `shape`
        (h, w) tile whose upper-left corner is `window`'s; parts outside the grid or the source are invalid."""
        scale = self.spec.scale
        out_h, out_w = round(shape[0] * scale), round(shape[1] * scale)
        if self.warped is not None:
            footprint = RioWindow(window.col * scale, window.row * scale, shape[1] * scale, shape[0] * scale)
            values = self.warped.read(self.indexes, window=footprint, out_shape=(self.count, out_h, out_w),
                                      resampling=_RIO_RESAMPLING[self.spec.resampling])
            return values, np.isfinite(values).all(axis=0)
        # same grid: read the part inside the grid, pad the rest as invalid
        values = np.zeros((self.count, out_h, out_w), dtype=np.float32)
        valid = np.zeros((out_h, out_w), dtype=bool)
        h, w = min(shape[0], self.dataset.height - window.row), min(shape[1], self.dataset.width - window.col)
        raw = self.dataset.read(self.indexes, window=RioWindow(window.col, window.row, w, h))
        inside = np.ones((h, w), dtype=bool)
        for band, nodata in zip(raw, self.nodata):
            if nodata is not None and not math.isnan(nodata):
                inside &= band != nodata
        values[:, :h, :w] = raw
        inside &= np.isfinite(values[:, :h, :w]).all(axis=0)
        valid[:h, :w] = inside
        return values, valid

    def close(self) -> None:
        if self.warped is not None:
            self.warped.close()
        if self._owns_dataset:
            self.dataset.close()
