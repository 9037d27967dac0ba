"""Writing georeferenced rasters atomically: a temporary file in the output's directory, renamed when complete.

Outputs are tiled (256 × 256) GeoTIFFs with band descriptions, tags and nodata, compressed with a predictor
(floating-point predictor for float dtypes, horizontal differencing for integers): ZSTD at level 1 while streaming
(the cheapest to hide behind the model; GDAL ≥ 2.3 reads it), DEFLATE for ``cog=True`` (the widest reader support),
which converts the finished file with GDAL's COG driver: internal overviews (averaged for float data, nearest for
integer data such as labels), IFDs and tiles laid out for HTTP range reads.

The scene engine writes whole 256 × 256 blocks (aligned with the file's blocks), so each is compressed once. An
error, or an interrupt, removes the temporary files, so a partial output never appears at the requested path
(`rsinfer.files`: the files get the process umask's mode, and without `overwrite` the final move never replaces a file
that appeared meanwhile). The COG conversion stops within a fraction of a second of an interrupt
(`rsinfer.io.environment.copy_raster`). `commit(group)` hands the finished file to an `OutputGroup` instead, which moves
it into place together with the job's other outputs.

Output paths are checked before any work (`check_output`): a directory, a symbolic link (rsinfer does not write
through links: the link would silently stop pointing at what it named, or the file it names would be replaced
elsewhere), an existing file without `overwrite`, a missing or unwritable directory. Failures while writing raise
`OutputError` naming the output (never a temporary file) and the cause GDAL reported, e.g. "No space left on device".

Nodata. Pixels given as NaN are written as the nodata value; a valid value that would be written as the nodata value
(a DN clipped to 0 under nodata 0) moves one step away from it, so no valid pixel reads back as nodata (`cast`).

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

from rsinfer.errors import OutputError, OutputExistsError, UsageError
from rsinfer.files import OutputGroup, commit, create_temporary, probe_directory
from rsinfer.io.environment import MESSAGES, copy_raster, failure_reason
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
    """The output path, refused (`OutputError`) if it is a directory or a symbolic link, exists (unless `overwrite`),
    or its directory does not exist or cannot take a new file."""
    path = Path(path)
    if path.is_symlink():
        raise OutputError(f"{path}: is a symbolic link (to {os.readlink(path)}); rsinfer does not write through links: "
                          "name the file itself, or remove the link")
    if path.is_dir():
        raise OutputError(f"{path}: is a directory")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: already exists (pass {{overwrite}} to replace it)", overwrite=True)
    if not path.parent.is_dir():
        raise OutputError(f"{path}: the output directory {path.parent} does not exist")
    try:
        probe_directory(path)
    except OSError as err:
        raise OutputError(f"{path}: cannot create a file in {path.parent}: {err.strerror or err}") from err
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
        if math.isnan(nodata):
            raise UsageError(f"this output marks nodata with NaN, which the integer output dtype {dtype} cannot "
                             "hold: choose a floating-point {dtype} (float32, float64)", dtype=None)
        if not (info.min <= nodata <= info.max) or nodata != int(nodata):
            raise UsageError(f"nodata {nodata!r} is not representable in output dtype {dtype} (integers "
                             f"{info.min}..{info.max}); pass another nodata or {{dtype}}", dtype=None)
    return float(nodata)


def cast(values: np.ndarray, dtype: str, nodata: float | None = None) -> np.ndarray:
    """float `values` → `dtype`: integers rounded and clipped to the dtype's range; NaN becomes `nodata` (0 without
    one); a valid value that would equal `nodata` moves one step (1, or one float ulp) away from it, toward the side
    of the value it came from (inward at the ends of the integer range)."""
    missing = np.isnan(values)
    if np.dtype(dtype).kind == "f":
        out = values.astype(dtype)
        if nodata is None or math.isnan(nodata):
            return out
        hits = (out == nodata) & ~missing
        if hits.any():
            away = np.where(values[hits] < nodata, -np.inf, np.inf).astype(dtype)
            out[hits] = np.nextafter(out[hits], away)
        out[missing] = nodata
        return out
    info = np.iinfo(dtype)
    out = np.clip(np.rint(np.where(missing, 0, values)), info.min, info.max).astype(dtype)
    if nodata is None:
        return out
    hits = (out == nodata) & ~missing
    if hits.any():
        up = values[hits] >= nodata
        if nodata == info.min or nodata == info.max:
            up = np.full_like(up, nodata == info.min)
        out[hits] = np.where(up, out[hits] + 1, out[hits] - 1).astype(dtype)
    out[missing] = nodata
    return out


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
        try:
            tmp = create_temporary(self.path, ".tmp.tif")
        except OSError as err:
            raise OutputError(f"{self.path}: cannot create a file in {self.path.parent}: {err.strerror or err}") \
                from err
        self._temps = [tmp]
        self._committed = False
        is_float = np.dtype(dtype).kind == "f"
        self._compress = compress or ("deflate" if cog else "zstd")
        codec = {"compress": self._compress, "predictor": 3 if is_float else 2}
        if self._compress == "zstd":
            codec["zstd_level"] = 1
        if self._compress == "none":
            codec = {}
        since = MESSAGES.last
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
        except BaseException as err:
            self.abort()
            if isinstance(err, OSError):
                raise self._failure("creating it", err, since) from err
            raise
        self._overview_resampling = "AVERAGE" if is_float else "NEAREST"

    def write(self, values: np.ndarray, window: Window) -> None:
        """Write float `values` (C, window.height, window.width), cast to the output dtype (NaN: nodata; see
        `cast`)."""
        since = MESSAGES.last
        try:
            self.dataset.write(cast(values, self.dtype, self.nodata),
                               window=((window.row, window.bottom), (window.col, window.right)))
        except OSError as err:
            raise self._failure("writing it", err, since) from err

    def commit(self, group: OutputGroup | None = None) -> Path:
        """Close, convert to COG if asked, and move onto the output path, or, with `group`, hand the finished file
        to the group, which moves it with the job's other outputs."""
        since = MESSAGES.last
        try:
            self.dataset.close()
        except OSError as err:
            raise self._failure("writing it", err, since) from err
        if MESSAGES.since(since):  # GDAL reports some failures of the final flush only as messages
            raise self._failure("writing it", OSError("the final write failed"), since)
        finished = self._temps[0]
        if self.cog:
            tmp = create_temporary(self.path, ".cog.tif")
            self._temps.append(tmp)
            codec = {} if self._compress == "none" else {"COMPRESS": self._compress.upper(), "PREDICTOR": "YES"}
            since = MESSAGES.last
            try:
                copy_raster(finished, tmp, "COG", {"BLOCKSIZE": str(BLOCK), "OVERVIEW_RESAMPLING":
                                                   self._overview_resampling, "BIGTIFF": "IF_SAFER", **codec})
            except OSError as err:
                raise self._failure("converting it to a COG", err, since) from err
            finished = tmp
        if group is not None:
            group.add(finished, self.path)
            self._temps.remove(finished)
        else:
            commit(finished, self.path, replace=self.overwrite)
        self._remove_temps()
        self._committed = True
        _log.info("wrote %s", self.path)
        return self.path

    def _failure(self, action: str, err: OSError, since: int) -> OutputError:
        """`err` (GDAL failed) as the user sees it: the output, what was being done, and GDAL's reason."""
        return OutputError(f"{self.path}: {action} failed: {failure_reason(err, since)}")

    def abort(self) -> None:
        """Drop the partial output."""
        dataset = getattr(self, "dataset", None)
        if dataset is not None and not dataset.closed:
            try:
                dataset.close()
            except OSError:  # the failure being cleaned up after has been reported already
                pass
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
    """Write a whole (C, H, W) array on `grid` atomically; NaN values, and values equal to nodata, are nodata.

    nodata defaults to the grid's, else NaN for float dtypes; integer outputs without nodata write NaN as 0.
    """
    array = np.asarray(array, dtype=np.float32)
    if array.ndim != 3 or array.shape[1:] != grid.shape:
        raise ValueError(f"array shape {array.shape} does not match (C, {grid.height}, {grid.width}) of the grid")
    nodata = output_nodata(nodata, grid, check_dtype(dtype))
    if nodata is not None and not math.isnan(nodata):
        array = np.where(array == nodata, np.float32("nan"), array)  # here a value equal to nodata is nodata
    with RasterWriter(output, grid, array.shape[0], dtype, nodata, descriptions, tags, cog, overwrite,
                      compress) as writer:
        for row in range(0, grid.height, BLOCK):
            band = Window(row, 0, min(BLOCK, grid.height - row), grid.width)
            writer.write(array[:, band.row:band.bottom], band)
        return writer.commit()
