"""Evaluation of pansharpening and translation rasters: the logic behind `rsinfer evaluate` (the CLI only parses and
prints).

Pansharpening, with the metrics of `rsinfer.metrics` (DLPan-Toolbox conventions, DN):
- `reduced_resolution_of(fused, reference)`: SAM, ERGAS, Q2n, Q_avg, SCC of a fused raster against its reference
  (both on one grid);
- `full_resolution_of(fused, ms, pan, sensor)`: Dλ, Ds, QNR, Dλ_K, HQNR of a fused raster with the MS (at 1/4 of the
  fused grid's resolution) and PAN it was made from;
- `wald_evaluation(ms, pan, sensor, methods)`: Wald's protocol on a real MS. The MS (one file or several, bands
  stacked in order) is the reference; it is filtered with the sensor's MTF (GNyq per band) and decimated by 4
  (`rsinfer.pansharpening.degrade`). The PAN of the pair is a real PAN given at 4× the MS resolution, degraded the
  same way with the PAN's MTF, or, without one, SYNTHETIC: the mean of the reference's visible bands, at the
  reference's scale. Every method sharpens the pair: the baselines of `rsinfer.pansharpening` by name, and
  ``crossdiff`` (the `pansharpen` pipeline's networks on the whole image, `Pansharpen.sharpen_dn`). The report says
  which PAN was used.
Translation: `translation_quality(reference, predicted, data_range)`: per-band RMSE, PSNR, SSIM and CC and their means
(`rsinfer.metrics.image_quality`) on an explicitly stated data range.

Rasters are read whole, or under a `Window` of the first raster's grid (rows, cols in its pixels); the others are
read on that grid (`rsinfer.io.RasterSource`, at their scale). Metrics need complete images: a nodata pixel inside the
evaluated area is an error naming the file.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch

from rsinfer.io import Grid, InputSpec, RasterSource, grid_of, open_raster, raster_info
from rsinfer.metrics import full_resolution, image_quality, reduced_resolution
from rsinfer.pansharpening import BASELINES, degrade
from rsinfer.pansharpening.wald import VISIBLE_NM
from rsinfer.pipelines.crossdiff import RATIO
from rsinfer.pipelines.registry import build
from rsinfer.pipelines.spec import PipelineSpec
from rsinfer.sensors import DEFAULT_PAN_GNYQ, Sensor
from rsinfer.sensors import sensor as lookup_sensor
from rsinfer.tiling import Window

PathLike = str | os.PathLike
Method = Literal["exp", "brovey", "gs", "gsa", "mtf-glp", "mtf-glp-hpm", "crossdiff"]
METHODS: tuple[str, ...] = get_args(Method)
PanSource = Literal["real", "synthetic"]
Area = Window | Sequence[int] | None  # a Window, (row, col, height, width), or None for the whole grid


@dataclass(frozen=True)
class Raster:
    """Values (bands, rows, cols) float64 read from one or more files, with their band descriptions."""

    values: np.ndarray
    names: tuple[str | None, ...]


def _grid(path: PathLike) -> Grid:
    dataset = open_raster(path)
    try:
        return grid_of(dataset)
    finally:
        dataset.close()


def area(path: PathLike, window: Area) -> tuple[Grid, Window]:
    """The grid of `path` and the window to evaluate on it: the whole grid by default, else `window` (a `Window` or
    (row, col, height, width)), checked."""
    grid = _grid(path)
    if window is None:
        return grid, Window(0, 0, grid.height, grid.width)
    if not isinstance(window, Window):
        window = Window(*window)
    if window.bottom > grid.height or window.right > grid.width:
        raise ValueError(f"window {window} reaches past {os.fspath(path)} ({grid.height} x {grid.width} pixels)")
    return grid, window


def read_stack(paths: Sequence[PathLike], grid: Grid, window: Window, scale: float = 1.0) -> Raster:
    """The bands of `paths`, stacked in order, under `window` of `grid` at `scale` pixels per grid pixel, float64."""
    values, names = [], []
    for path in paths:
        source = RasterSource(path, grid, spec=InputSpec(scale))
        try:
            data, valid = source.read(window, (window.height, window.width))
            names.extend(d or None for d in (source.dataset.descriptions[i - 1] for i in source.indexes))
        finally:
            source.close()
        if not valid.all():
            raise ValueError(f"{os.fspath(path)}: {int((~valid).sum())} nodata pixel(s) in the evaluated area "
                             f"{window}; the metrics need complete images: choose a window inside the valid area")
        values.append(data.astype(np.float64))
    return Raster(np.concatenate(values), tuple(names))


# ---- pansharpening --------------------------------------------------------------------------------------------------

def reduced_resolution_of(fused: PathLike, reference: PathLike, window: Area = None,
                          **protocol) -> dict[str, float]:
    """`rsinfer.metrics.reduced_resolution` of two rasters on one grid (`protocol`: its ratio, bits, block, cut)."""
    grid, window = area(fused, window)
    return reduced_resolution(read_stack([fused], grid, window).values, read_stack([reference], grid, window).values,
                              **protocol)


def full_resolution_of(fused: PathLike, ms: Sequence[PathLike], pan: PathLike, sensor: str,
                       bands: Sequence[str] | None = None, window: Area = None) -> dict[str, float]:
    """`rsinfer.metrics.full_resolution` of a fused raster, the MS (read at 1/4 of the fused grid) and the PAN (on
    it); `bands` names the MS bands among the sensor's (None: from the files' descriptions or the band count)."""
    grid, window = area(fused, window)
    if window.height % RATIO or window.width % RATIO:
        raise ValueError(f"the evaluated area {window.height} x {window.width} must be a multiple of the ratio "
                         f"{RATIO} so that it holds whole MS pixels")
    ms_raster = read_stack(ms, grid, window, 1 / RATIO)
    spec = sensor_bands(lookup_sensor(sensor), bands, ms_raster.names)
    return full_resolution(read_stack([fused], grid, window).values, ms_raster.values, None,
                           read_stack([pan], grid, window).values, spec, RATIO)


def sensor_bands(spec: Sensor, bands: Sequence[str] | None, names: Sequence[str | None]) -> Sensor:
    """`spec` restricted to the image's bands, in its order: `bands` by name, else the files' band descriptions when
    they all name bands of the sensor, else all the sensor's MS bands when the counts agree."""
    if bands is None:
        if all(names):
            try:
                return dataclasses.replace(spec, bands=spec.select(names))
            except ValueError:
                pass  # descriptions that are not the sensor's band names
        if len(names) != len(spec.bands):
            raise ValueError(f"the MS has {len(names)} band(s) and {spec.name} has {len(spec.bands)} "
                             f"({', '.join(b.name for b in spec.bands)}): name the MS bands (e.g. --bands "
                             f"{' '.join(b.name for b in spec.bands[:len(names)])})")
        return spec
    if len(bands) != len(names):
        raise ValueError(f"{len(bands)} band names {list(bands)} for an MS with {len(names)} band(s)")
    return dataclasses.replace(spec, bands=spec.select(bands))


@dataclass(frozen=True)
class WaldReport:
    """A Wald-protocol evaluation: the pair's sizes, where its PAN came from, metrics and seconds per method."""

    sensor: str
    bands: tuple[str, ...]
    reference_shape: tuple[int, int, int]  # (bands, rows, cols) of the reference MS
    pan_source: PanSource
    pan_description: str
    metrics: dict[str, dict[str, float]]  # method → metric → value
    seconds: dict[str, float]


def wald_pair(ms: Sequence[PathLike], pan: PathLike | None, sensor: Sensor, window: Area = None) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    """(reference (B, H, W), degraded MS (B, H/4, W/4), PAN (H, W)) of the Wald pair, all DN float64."""
    grid, window = area(ms[0], window)
    reference = read_stack(ms, grid, window).values
    full_pan = None if pan is None else read_stack([pan], grid, window, RATIO).values[0]
    pair = degrade(reference, full_pan, sensor, RATIO)
    return reference, pair.ms, pair.pan


def sharpen(method: str, ms: np.ndarray, pan: np.ndarray, sensor: Sensor,
            crossdiff: PipelineSpec | None = None) -> np.ndarray:
    """The MS (B, h, w) sharpened with the PAN (4h, 4w) by `method`, DN (B, 4h, 4w) float64."""
    if method == "crossdiff":
        if crossdiff is None:
            raise ValueError("method 'crossdiff' needs CrossDiff weights (a pipeline spec: a weights directory or "
                             "random:SEED)")
        pipe = build(crossdiff)
        with torch.no_grad():
            fused = pipe.sharpen_dn(torch.from_numpy(pan).float()[None, None], torch.from_numpy(ms).float()[None])
        return fused[0].double().numpy()
    if method not in BASELINES:
        raise ValueError(f"unknown pansharpening method {method!r}; choose from {METHODS}")
    return BASELINES[method](ms, pan, RATIO, [b.gnyq for b in sensor.bands])


def wald_evaluation(ms: Sequence[PathLike], pan: PathLike | None, sensor: str, methods: Sequence[str] | None = None,
                    bands: Sequence[str] | None = None, crossdiff: PipelineSpec | None = None,
                    window: Area = None, **protocol) -> WaldReport:
    """Wald's protocol on the MS `ms` (see the module docstring): every method's reduced-resolution metrics (methods:
    None = every baseline)."""
    methods = list(BASELINES) if methods is None else list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"pansharpening methods {list(methods)}: choose one or more of {METHODS}")
    names = [d for path in ms for d in raster_info(path).descriptions]
    spec = sensor_bands(lookup_sensor(sensor), bands, names)
    reference, ms_lr, pan_lr = wald_pair(ms, pan, spec, window)
    if pan is None:
        visible = ", ".join(b.name for b in spec.bands
                            if b.center_nm is not None and VISIBLE_NM[0] <= b.center_nm <= VISIBLE_NM[1])
        source: PanSource = "synthetic"
        description = (f"SYNTHETIC: the mean of the reference's visible bands ({visible or 'all bands'}) at the "
                       f"reference scale")
    else:
        gnyq = spec.pan.gnyq if spec.pan is not None and spec.pan.gnyq is not None else DEFAULT_PAN_GNYQ
        source, description = "real", f"real: {os.fspath(pan)}, MTF-filtered (GNyq {gnyq:g}) and decimated by {RATIO}"
    metrics, seconds = {}, {}
    for method in methods:
        start = time.perf_counter()
        fused = sharpen(method, ms_lr, pan_lr, spec, crossdiff)
        seconds[method] = time.perf_counter() - start
        metrics[method] = reduced_resolution(fused, reference, RATIO, **protocol)
    return WaldReport(spec.name, tuple(b.name for b in spec.bands), reference.shape, source, description, metrics,
                      seconds)


# ---- translation --------------------------------------------------------------------------------------------------

def translation_range(data_range: float | None, sensor: str | None) -> tuple[float, str]:
    """The data range of a translation evaluation and how it was stated: `data_range`, or a sensor's DN scale."""
    if (data_range is None) == (sensor is None):
        raise ValueError("state the data range of the images: a data range (e.g. 1 for [0, 1] data, 10000 for "
                         "Sentinel-2 DN) or a sensor whose DN scale it is; exactly one of the two")
    if data_range is not None:
        if not (np.isfinite(data_range) and data_range > 0):
            raise ValueError(f"the data range must be a positive number, got {data_range}")
        return float(data_range), f"{data_range:g} (given)"
    found = lookup_sensor(sensor)
    if found.dn_scale is None:
        raise ValueError(f"sensor {found.name!r} has no DN scale; give the data range")
    return found.dn_scale, f"{found.dn_scale:g} ({found.name} DN scale)"


def translation_quality(reference: PathLike, predicted: PathLike, data_range: float,
                        window: Area = None) -> tuple[dict[str, np.ndarray | float], tuple[str, ...]]:
    """Per-band RMSE, PSNR, SSIM, CC and their means (`rsinfer.metrics.image_quality`) of `predicted` against
    `reference` (read on the reference's grid), and the band names."""
    grid, window = area(reference, window)
    truth, estimate = read_stack([reference], grid, window), read_stack([predicted], grid, window)
    if truth.values.shape[0] != estimate.values.shape[0]:
        raise ValueError(f"{os.fspath(predicted)} has {estimate.values.shape[0]} band(s), the reference "
                         f"{os.fspath(reference)} {truth.values.shape[0]}")
    names = tuple(n or f"band {i}" for i, n in enumerate(truth.names, 1))
    return image_quality(estimate.values, truth.values, data_range), names

