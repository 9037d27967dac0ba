"""Writing georeferenced rasters atomically: a temporary file in the output's directory, renamed when complete.

Outputs are tiled (256 × 256) GeoTIFFs with band descriptions, tags and nodata, compressed with a predictor
(floating-point predictor for float dtypes, horizontal differencing for integers): ZSTD at level 1 while streaming
(the cheapest to hide behind the model; GDAL ≥ 2.3 reads it), DEFLATE for ``cog=True`` (the widest reader support),
which converts the finished file with GDAL's COG driver: internal overviews (averaged for float data, nearest for
integer data such as labels), IFDs and tiles laid out for HTTP range reads.

The scene engine writes whole 256 × 256 blocks (aligned with the file's blocks), so each is compressed once. An
error, or an interrupt, removes the temporary file, so a partial output never appears at the requested path
(`rsinfer.files`: the files get the process umask's mode, and without `overwrite` the final move never replaces a file
that appeared meanwhile).

`OutputOptions(dtype, nodata, cog, overwrite, compress)` gathers how an output is written; every pipeline and
`rsinfer.scene.run_scene` take it.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil

from rsinfer.files import commit, create_temporary
from rsinfer.io.grid import Grid
from rsinfer.io.names import COMPRESSIONS, OUTPUT_DTYPES, Compression, OutputDtype
from rsinfer.tiling import Window

BLOCK = 256


@dataclass(frozen=True)
class OutputOptions:
    """How an output raster is written.

    dtype: the raster type (None: the pipeline's own, e.g. the input's DN type for cloud removal, float32 for indices).
    nodata: the nodata value (None: the pipeline's, else the grid input's, else NaN for float types).
    cog: a Cloud-Optimized GeoTIFF with overviews instead of a plain tiled GeoTIFF.
    overwrite: replace an existing output (without it an existing output is an error, checked before any work).
    compress: the codec (None: ZSTD level 1 for a GeoTIFF, cheap to hide behind the model; DEFLATE for a COG, the widest
        reader support).
    """

    dtype: OutputDtype | None = None
    nodata: float | None = None
    cog: bool = False
    overwrite: bool = False
    compress: Compression | None = None

    def __post_init__(self) -> None:
        if self.dtype is not None:
            check_dtype(self.dtype)
        if self.compress is not None and self.compress not in COMPRESSIONS:
            raise ValueError(f"unknown compression {self.compress!r}; choose one of {COMPRESSIONS}")

_log = logging.getLogger("rsinfer.io")


def check_output(path: str | os.PathLike, overwrite: bool) -> Path:
    """The output path, refused if it exists (unless `overwrite`) or its directory does not."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (overwrite it explicitly: --overwrite on the command line, "
                              "overwrite=True in Python)")
    if path.is_dir():
        raise FileExistsError(f"{path}: is a directory")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: output directory does not exist")
    return path


def check_dtype(dtype: str) -> str:
    if dtype not in OUTPUT_DTYPES:
        raise ValueError(f"unsupported output dtype {dtype!r}; choose one of {OUTPUT_DTYPES}")
    return dtype


def output_nodata(requested: float | None, grid: Grid, dtype: str) -> float | None:
    """The output nodata: `requested`, else the grid's, else NaN for float outputs, else none (integer outputs)."""
    nodata = requested if requested is not None else grid.nodata
    is_float = np.dtype(dtype).kind == "f"
    if nodata is None:
        return float("nan") if is_float else None
    if not is_float:
        info = np.iinfo(dtype)
        if math.isnan(nodata) or not (info.min <= nodata <= info.max) or nodata != int(nodata):
            raise ValueError(f"nodata {nodata!r} is not representable in output dtype {dtype} "
                             f"(integers {info.min}..{info.max}); pass another nodata or dtype")
    return float(nodata)


def cast(values: np.ndarray, dtype: str) -> np.ndarray:
    """float values → `dtype`; integers are rounded and clipped to the dtype's range."""
    if np.dtype(dtype).kind == "f":
        return values.astype(dtype, copy=False)
    info = np.iinfo(dtype)
    return np.clip(np.rint(values), info.min, info.max).astype(dtype)


class RasterWriter:
    """Writes a `count`-band raster on `grid` window by window; `commit()` finishes it and renames it into place.

    Use as a context manager: leaving the block without `commit()` (an exception, KeyboardInterrupt) removes the
    temporary file. Not thread-safe: one writer thread.
    """

    def __init__(self, path: str | os.PathLike, grid: Grid, count: int, dtype: OutputDtype = "float32",
                 nodata: float | None = None, descriptions: Sequence[str | None] | None = None,
                 tags: Mapping[str, str] | None = None, cog: bool = False, overwrite: bool = False,
                 compress: Compression | None = None) -> None:
        self.path = check_output(path, overwrite)
        self.dtype = check_dtype(dtype)
        self.nodata = nodata
        self.cog, self.overwrite = cog, overwrite
        if descriptions is not None and len(descriptions) != count:
            raise ValueError(f"{len(descriptions)} band descriptions for {count} output bands")
        tmp = create_temporary(self.path, ".tmp.tif")
        self._temps = [tmp]
        self._committed = False
        is_float = np.dtype(dtype).kind == "f"
        self._compress = compress or ("deflate" if cog else "zstd")
        codec = {"compress": self._compress, "predictor": 3 if is_float else 2}
        if self._compress == "zstd":
            codec["zstd_level"] = 1
        if self._compress == "none":
            codec = {}
        try:
            self.dataset = rasterio.open(
                tmp, "w", driver="GTiff", width=grid.width, height=grid.height, count=count, dtype=dtype,
                crs=grid.crs, transform=grid.transform, nodata=nodata, tiled=True, blockxsize=BLOCK,
                blockysize=BLOCK, bigtiff="if_safer", **codec)
            for band, description in enumerate(descriptions or (), start=1):
                if description:
                    self.dataset.set_band_description(band, description)
            if tags:
                self.dataset.update_tags(**{key: str(value) for key, value in tags.items()})
        except BaseException:
            self.abort()
            raise
        self._overview_resampling = "AVERAGE" if is_float else "NEAREST"

    def write(self, values: np.ndarray, window: Window) -> None:
        """Write float `values` (C, window.height, window.width), cast to the output dtype."""
        self.dataset.write(cast(values, self.dtype), window=((window.row, window.bottom), (window.col, window.right)))

    def commit(self) -> Path:
        """Close, convert to COG if asked, and rename onto the output path."""
        self.dataset.close()
        finished = self._temps[0]
        if self.cog:
            tmp = create_temporary(self.path, ".cog.tif")
            self._temps.append(tmp)
            codec = {} if self._compress == "none" else {"compress": self._compress.upper(), "predictor": "YES"}
            rasterio.shutil.copy(finished, tmp, driver="COG", blocksize=BLOCK,
                                 overview_resampling=self._overview_resampling, bigtiff="IF_SAFER", **codec)
            finished = tmp
        commit(finished, self.path, replace=self.overwrite)
        self._remove_temps()
        self._committed = True
        _log.info("wrote %s", self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial output."""
        dataset = getattr(self, "dataset", None)
        if dataset is not None and not dataset.closed:
            dataset.close()
        self._remove_temps()

    def _remove_temps(self) -> None:
        for tmp in self._temps:
            tmp.unlink(missing_ok=True)

    def __enter__(self) -> RasterWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._committed:
            self.abort()


def write_raster(array: np.ndarray, grid: Grid, output: str | os.PathLike, nodata: float | None = None,
                 dtype: OutputDtype = "float32", descriptions: Sequence[str | None] | None = None,
                 tags: Mapping[str, str] | None = None, cog: bool = False, overwrite: bool = False,
                 compress: Compression | None = None) -> Path:
    """Write a whole (C, H, W) array on `grid` atomically; NaN pixels become nodata.

    nodata defaults to the grid's, else NaN for float dtypes; integer outputs without nodata write NaN as 0.
    """
    array = np.asarray(array, dtype=np.float32)
    if array.ndim != 3 or array.shape[1:] != grid.shape:
        raise ValueError(f"array shape {array.shape} does not match (C, {grid.height}, {grid.width}) of the grid")
    nodata = output_nodata(nodata, grid, check_dtype(dtype))
    missing = np.isnan(array)
    if missing.any():
        array = np.where(missing, np.float32(0 if nodata is None else nodata), array)
    with RasterWriter(output, grid, array.shape[0], dtype, nodata, descriptions, tags, cog, overwrite,
                      compress) as writer:
        for row in range(0, grid.height, BLOCK):
            band = Window(row, 0, min(BLOCK, grid.height - row), grid.width)
            writer.write(array[:, band.row:band.bottom], band)
        return writer.commit()
