"""`run_scene`: stream a function over co-registered (or not) rasters and write one georeferenced raster.

plan windows (row-major) ► read (one read-ahead thread) ► run `fn` on batches (the calling thread, torch's intra-op
threads) ► blend into 256 × 256 output blocks and write each block once every tile touching it is done (one
merge-and-write thread) ► rename the finished file.

Failures. A read that GDAL cannot complete (a truncated or corrupt input) raises `InputDataError` naming the file; a
tile function that returns NaN or Inf at a pixel where every input was valid raises `InputDataError` (nothing is
written in its place: a broken network must not produce a plausible-looking raster); running out of memory raises
`OutputError` naming the tile and batch size to lower. Every failure and every interrupt removes the temporary files.
A scene whose tiles are all nodata is written as nodata with a warning.

A tile larger than the scene shrinks to the scene's longer side, rounded up to a multiple that keeps every input's
pixels whole and fits the tile function (`fit_tiling`): the same single tile, without computing up to 256x the
pixels as padding.

A coarser output grid (`output_scale=1/f`, f an integer): the output is the grid input's grid coarsened f times (the
transform scaled by f from the same origin, ceil(H/f) × ceil(W/f) pixels), e.g. one embedding per window. Windows are
planned on the output grid (tile/f, overlap/f: tile and overlap must be multiples of f) and read over f times their
size on the grid input's grid, so every window starts on a multiple of f; input pixels past the scene's edge (the last
row or column of output pixels may cover fewer than f) read as nodata. The tile function gets the inputs at their own
resolution (the grid input at f × f pixels per output pixel; `InputSpec.scale` stays relative to the grid input's
grid) and returns (B, C_out, tile/f, tile/f). An output pixel is valid when ANY input pixel in its f × f cell is valid
(in every input): the tile function sees each input's mask and decides how a partly valid cell counts (a masked mean,
an encoder that drops invalid tokens); a cell with no valid pixel is nodata.

Memory held is a few tile batches plus about one row of 256 × 256 blocks across the scene: it does not grow with the
scene height, and only that row grows with its width. The two I/O threads spend their time in GDAL (which releases
the GIL) and numpy; the merge thread's torch ops run single-threaded (`torch.set_num_threads` is per thread under
OpenMP), so they neither take fn's intra-op threads nor stall at a parallel barrier when the cores are busy
(measured on the loaded 2-core machine: a 200x180 accumulate took 20 ms with 2 threads, 0.09 ms with 1).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from rsinfer.errors import InputDataError, OutputError
from rsinfer.files import OutputGroup
from rsinfer.io import (BLOCK, Grid, InputSpec, OutputDtype, OutputOptions, RasterSource, RasterWriter, check_output,
                        gdal_environment, output_nodata, raster_info)
from rsinfer.scene.inputs import Inputs, check_tile_scales, close_all, input_specs_of, open_inputs
from rsinfer.scene.progress import Progress
from rsinfer.scene.tiles import TileBatch, TileFunction, Tiles, read_batch
from rsinfer.tiling import BlendMode, BlockMerger, FinishedBlock, Tiling, Window, plan_windows, tile_weights

_log = logging.getLogger("rsinfer.scene")

READ_AHEAD = 2  # batches read while fn runs
MERGE_BEHIND = 2  # fn outputs queued for the merge-and-write thread before the compute thread waits

SceneFn = Callable[[dict[str, torch.Tensor]], torch.Tensor] | TileFunction
_UNSET: object = object()  # marks a keyword argument the caller did not give


@dataclass(frozen=True)
class OutputSummary:
    """What a scene job wrote and what it cost."""

    path: Path
    shape: tuple[int, int, int]  # (bands, height, width)
    tiles_run: int
    tiles_skipped: int  # entirely nodata: not run, written as nodata
    seconds: float
    peak_bytes: int  # most bytes of read batches, fn outputs awaiting the merge, and blocks being merged held at once


def _single_threaded_torch() -> None:
    torch.set_num_threads(1)  # this thread only: OpenMP keeps the thread count per thread


class _HeldBytes:
    """Bytes the engine holds, by part, and the peak of their total (updated from three threads)."""

    def __init__(self) -> None:
        self._parts: dict[object, int] = {}
        self._lock = threading.Lock()
        self.peak = 0

    def set(self, part: object, nbytes: int) -> None:
        with self._lock:
            self._parts[part] = nbytes
            self.peak = max(self.peak, sum(self._parts.values()))

    def drop(self, part: object) -> None:
        with self._lock:
            self._parts.pop(part, None)


class _SceneJob:
    """One run of `fn` over a scene; `run_scene` builds it and calls `run()` once."""

    def __init__(self, fn: SceneFn, sources: Mapping[str, RasterSource], grid: Grid, output: Path, tiling: Tiling,
                 options: OutputOptions, tags: Mapping[str, str], progress: bool,
                 outputs: OutputGroup | None = None, factor: int = 1) -> None:
        self.fn, self.sources, self.output, self.outputs = fn, sources, output, outputs
        self.factor = factor  # grid-input pixels per output pixel, along each axis
        self.grid = coarsened(grid, factor)  # the output grid; windows, shape and blending live on it
        self.tiling = tiling
        self.overlap, self.blend, self.batch_size = tiling.overlap // factor, tiling.blend, tiling.batch_size
        self.options, self.tags = options, tags
        self.nodata = output_nodata(options.nodata, self.grid, options.dtype)
        if tiling.tile is None:  # the whole grid as one tile
            self.shape = self.grid.shape
            self.windows = [Window(0, 0, self.grid.height, self.grid.width)]
        else:
            self.shape = (tiling.tile // factor, tiling.tile // factor)
            self.windows = plan_windows(self.grid.height, self.grid.width, self.shape[0], self.overlap)
        self.progress = Progress(len(self.windows), progress)
        self.held = _HeldBytes()
        self.channels = 0  # output bands, known once fn first ran
        self.merger: BlockMerger | None = None
        self.writer: RasterWriter | None = None
        self.merge_pool = ThreadPoolExecutor(1, thread_name_prefix="rsinfer-merge", initializer=_single_threaded_torch)
        self.skipped_before_output: list[Window] = []  # all-nodata windows seen before fn first ran
        self.merges: deque[Future] = deque()
        self.tiles_run = self.tiles_skipped = 0

    def run(self) -> OutputSummary:
        start = time.perf_counter()
        batches = iter([self.windows[i:i + self.batch_size] for i in range(0, len(self.windows), self.batch_size)])
        reader = ThreadPoolExecutor(1, thread_name_prefix="rsinfer-read")
        try:
            reads = deque(reader.submit(self._read, b) for _, b in zip(range(READ_AHEAD), batches))
            while reads:
                batch = reads.popleft().result()
                next_windows = next(batches, None)
                if next_windows is not None:
                    reads.append(reader.submit(self._read, next_windows))
                self._consume(batch)
                self.held.drop(id(batch))
            if self.writer is None:
                self._open_output(self._probe_channels())
            while self.merges:
                self.merges.popleft().result()
            self.merge_pool.shutdown()
            path = self.writer.commit(self.outputs)
        except BaseException as err:
            reader.shutdown(wait=True, cancel_futures=True)
            self.merge_pool.shutdown(wait=True, cancel_futures=True)
            if self.writer is not None:
                self.writer.abort()
            if _out_of_memory(err):
                raise self._memory_error() from err
            raise
        finally:
            reader.shutdown()
            self.progress.close()
        seconds = time.perf_counter() - start
        _log.info("%s: %d tiles run, %d skipped in %.1f s", path, self.tiles_run, self.tiles_skipped, seconds)
        if self.tiles_run == 0:
            _log.warning("%s: every tile is nodata (no pixel is valid in every input), so the output is entirely "
                         "nodata", path)
        return OutputSummary(path, (self.channels, self.grid.height, self.grid.width), self.tiles_run,
                             self.tiles_skipped, seconds, self.held.peak)

    def _memory_error(self) -> OutputError:
        if self.tiling.tile is None:
            return OutputError(f"out of memory running the whole {self.grid.height} x {self.grid.width} scene as one "
                               "tile")
        return OutputError(f"out of memory with tiles of {self.tiling.tile} x {self.tiling.tile} pixels, "
                           f"{self.batch_size} per call: lower {{tile}} or {{batch_size}}", tile=None,
                           batch_size=None)

    def _read(self, windows: Sequence[Window]) -> TileBatch:
        try:
            batch = read_batch(self.sources, windows, self.shape, self.factor)
        except OSError as err:
            raise read_failure(err, {name: source.name for name, source in self.sources.items()}) from err
        self.held.set(id(batch), batch.nbytes)
        return batch

    def _run_fn(self, batch: TileBatch) -> torch.Tensor:
        count = batch.valid.shape[0]
        inputs = {name: torch.from_numpy(array) for name, array in batch.inputs.items()}
        with torch.inference_mode():
            if isinstance(self.fn, TileFunction):
                out = self.fn(Tiles(inputs, {name: torch.from_numpy(m) for name, m in batch.masks.items()},
                                    torch.from_numpy(batch.valid), batch.windows(), self.shape))
            else:
                out = self.fn(inputs)
        if not isinstance(out, torch.Tensor) or out.dim() != 4 or out.shape[0] != count or \
                tuple(out.shape[2:]) != self.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"fn must return a (B, C_out, {self.shape[0]}, {self.shape[1]}) tensor for a batch of "
                             f"{count} tiles, got {got}")
        return out.detach().to("cpu", torch.float32, copy=True)  # fn may reuse its output buffer for the next batch

    def _consume(self, batch: TileBatch) -> None:
        count = batch.valid.shape[0]
        outputs = self._run_fn(batch) if count else None
        if outputs is not None:
            _check_finite(outputs, torch.from_numpy(batch.valid), batch.windows())
        if outputs is not None and self.writer is None:
            self._open_output(outputs.shape[1])
        for _, index in batch.entries:
            if index is None:
                self.tiles_skipped += 1
            else:
                self.tiles_run += 1
            self.progress.advance()
        if self.merger is None:  # nothing ran yet: remember the skipped windows for when the output opens
            self.skipped_before_output += [window for window, _ in batch.entries]
            return
        self._merge_behind(batch.entries, outputs, batch.valid)

    def _merge_behind(self, entries: list[tuple[Window, int | None]], outputs: torch.Tensor | None,
                      valid: np.ndarray) -> None:
        """Queue a batch's outputs for the merge-and-write thread (waiting when MERGE_BEHIND are already queued)."""
        part = object()
        self.held.set(part, (outputs.nbytes if outputs is not None else 0) + valid.nbytes)
        while len(self.merges) >= MERGE_BEHIND:
            self.merges.popleft().result()
        self.merges.append(self.merge_pool.submit(self._merge_and_write, entries, outputs, valid, part))

    def _merge_and_write(self, entries: list[tuple[Window, int | None]], outputs: torch.Tensor | None,
                         valid: np.ndarray, part: object) -> None:
        """On the merge thread: blend each tile into its blocks, then write the blocks this finished."""
        finished: list[FinishedBlock] = []
        for window, index in entries:
            if index is None:
                finished += self.merger.skip(window)
                continue
            h, w = window.height, window.width
            weight = tile_weights(window, self.grid.height, self.grid.width, self.overlap, self.blend)
            tile_valid = valid[index, :h, :w]
            if not tile_valid.all():
                weight = weight * torch.from_numpy(tile_valid)  # invalid pixels get no weight
            finished += self.merger.add(outputs[index, :, :h, :w], window, weight)
        self.held.drop(part)
        self.held.set("canvas", self.merger.nbytes)
        for block in finished:
            values = block.values.numpy()  # the block owns its values: masked in place
            values[:, ~np.isfinite(values).all(axis=0)] = np.nan  # no valid tile pixel covered it: nodata
            self.writer.write(values, block.window)

    def _probe_channels(self) -> int:
        """Output bands when every tile was nodata: `fn.out_channels`, else one run of fn on a zero tile."""
        channels = getattr(self.fn, "out_channels", None)
        if channels is None:
            read = (self.shape[0] * self.factor, self.shape[1] * self.factor)  # on the grid input's grid
            scaled = {name: (round(read[0] * s.spec.scale), round(read[1] * s.spec.scale))
                      for name, s in self.sources.items()}
            zeros = TileBatch([(self.windows[0], 0)],
                              {name: np.zeros((1, source.count, *scaled[name]), dtype=np.float32)
                               for name, source in self.sources.items()},
                              {name: np.ones((1, *scaled[name]), dtype=bool) for name in self.sources},
                              np.ones((1, *self.shape), dtype=bool))
            channels = self._run_fn(zeros).shape[1]
        return int(channels)

    def _open_output(self, channels: int) -> None:
        self.channels = channels
        tags = {**(getattr(self.fn, "output_tags", None) or {}), **self.tags}
        self.writer = RasterWriter(self.output, self.grid, channels, self.options.dtype, self.nodata,
                                   getattr(self.fn, "band_descriptions", None), tags, self.options.cog,
                                   self.options.overwrite, self.options.compress)
        self.merger = BlockMerger(channels, self.grid.height, self.grid.width, self.windows, block=BLOCK)
        if self.skipped_before_output:
            self._merge_behind([(window, None) for window in self.skipped_before_output], None,
                               np.zeros((0, *self.shape), dtype=bool))


def read_failure(err: OSError, inputs: Mapping[str, str | os.PathLike]) -> InputDataError:
    """A read GDAL could not complete (`err`, a truncated or corrupt file) as the user sees it: the input, when GDAL's
    message names its file ("in.tif, band 3: IReadBlock failed at ..."), and GDAL's reason."""
    detail = str(err.__cause__ or err).strip().rstrip(".")
    named = [(name, path) for name, path in inputs.items() if detail.startswith(os.path.basename(os.fspath(path)))]
    where = f"input {named[0][0]!r} ({named[0][1]})" if len(named) == 1 else "the inputs"
    return InputDataError(f"reading {where} failed: {detail} (a truncated or corrupt file?)")


def _check_finite(out: torch.Tensor, valid: torch.Tensor, windows: Sequence[Window]) -> None:
    """Refuse NaN or Inf in `out` (B, C, h, w) at pixels where every input was valid, `valid` (B, h, w)."""
    broken = ~torch.isfinite(out).all(dim=1) & valid  # (B, h, w)
    if not broken.any():
        return
    tile, row, col = (int(i) for i in broken.nonzero()[0])
    place = f" (first at row {windows[tile].row + row}, col {windows[tile].col + col})" if tile < len(windows) else ""
    raise InputDataError(f"the computation gave NaN or Inf at {int(broken.sum())} pixels where every input was "
                         f"valid{place}: the weights or the inputs hold NaN or Inf, or a reduced precision "
                         "overflowed; nothing was written")


def _out_of_memory(err: BaseException) -> bool:
    """numpy's MemoryError, or torch's CPU allocator failing (a RuntimeError) or its OutOfMemoryError."""
    return (isinstance(err, MemoryError) or isinstance(err, getattr(torch, "OutOfMemoryError", MemoryError))
            or (isinstance(err, RuntimeError) and "can't allocate memory" in str(err)))


def coarsened(grid: Grid, factor: int) -> Grid:
    """`grid` coarsened `factor` times: the same origin, pixels `factor` times larger (the transform scaled exactly,
    not through 1/factor), ceil(H/factor) × ceil(W/factor) pixels."""
    if factor == 1:
        return grid
    return replace(grid, transform=grid.transform * grid.transform.scale(factor), height=-(-grid.height // factor),
                   width=-(-grid.width // factor))


def output_factor(output_scale: float) -> int:
    """The integer f of `output_scale` = 1/f (output pixels per grid-input pixel along each axis)."""
    if isinstance(output_scale, bool) or not isinstance(output_scale, (int, float)) or not (
            math.isfinite(output_scale) and 0 < output_scale <= 1):
        raise ValueError(f"output_scale must be 1/f for an integer f >= 1 (an output pixel of f x f grid-input "
                         f"pixels), got {output_scale!r}")
    factor = round(1 / output_scale)
    if not math.isclose(factor * output_scale, 1.0, rel_tol=1e-9):
        raise ValueError(f"output_scale must be 1/f for an integer f >= 1, got {output_scale!r} "
                         f"(1/{1 / output_scale:g})")
    return factor


def check_output_factor(tiling: Tiling, factor: int) -> None:
    """Tile and overlap must be whole output pixels of `factor` grid-input pixels."""
    if factor > 1 and tiling.tile is not None and (tiling.tile % factor or tiling.overlap % factor):
        raise ValueError(f"tile {tiling.tile} and overlap {tiling.overlap} must be multiples of {factor}: the output "
                         f"pixel is {factor} x {factor} input pixels (output_scale 1/{factor})")


def tile_multiple(specs: Mapping[str, InputSpec], fn: SceneFn, factor: int = 1) -> int:
    """The multiple every tile side must be: whole pixels of every input read at a coarser scale (4 for a 4x coarser
    input), whole output pixels of a coarser output grid (`factor`), and `fn.tile_multiple` when the tile function
    states one."""
    multiple = math.lcm(int(getattr(fn, "tile_multiple", 1) or 1), factor)
    for spec in specs.values():
        if spec.scale < 1:
            multiple = math.lcm(multiple, round(1 / spec.scale))
    return multiple


def fit_tiling(tiling: Tiling, shape: tuple[int, int], multiple: int = 1) -> Tiling:
    """`tiling` with a tile larger than a scene of `shape` (height, width) shrunk to the scene's longer side rounded up
    to `multiple`, and the overlap to what that tile allows (a multiple of `multiple` below half the tile). Either way
    the scene is one tile along its longer side, so only the padding changes."""
    if tiling.tile is None:
        return tiling
    side = -(-max(shape) // multiple) * multiple
    if tiling.tile <= side:
        return tiling
    overlap = min(tiling.overlap, (side - 1) // 2 // multiple * multiple)
    _log.info("tile %d is larger than the %d x %d scene: using %d (overlap %d)", tiling.tile, *shape, side, overlap)
    return replace(tiling, tile=side, overlap=overlap)


def _read_extent(tile: int | None, shape: tuple[int, int] | None, factor: int) -> int | None:
    """How far reads may reach past the grid, per axis: one tile, and with a coarser output every whole output
    pixel (the grid rounded up to a multiple of `factor`)."""
    if factor == 1 or shape is None:
        return tile
    return max(tile or 0, *(-(-side // factor) * factor for side in shape))


def _tiling_of(tiling: Tiling | None, tile, overlap, blend, batch_size) -> Tiling:
    given = {name: value for name, value in (("tile", tile), ("overlap", overlap), ("blend", blend),
                                             ("batch_size", batch_size)) if value is not _UNSET}
    if tiling is not None:
        if given:
            raise ValueError(f"pass either tiling= or {', '.join(f'{n}=' for n in given)}, not both")
        return tiling
    return Tiling(**given)


def _output_options_of(options: OutputOptions | None, nodata, dtype, cog, overwrite) -> OutputOptions:
    given = {name: value for name, value in (("nodata", nodata), ("dtype", dtype), ("cog", cog),
                                             ("overwrite", overwrite)) if value is not _UNSET}
    if options is not None:
        if given:
            raise ValueError(f"pass either output_options= or {', '.join(f'{n}=' for n in given)}, not both")
        return options
    return OutputOptions(**given)


def run_scene(fn: SceneFn, inputs: Inputs, output: str | os.PathLike, grid: str | None = None,
              tile: int | None = _UNSET, overlap: int = _UNSET, blend: BlendMode = _UNSET, batch_size: int = _UNSET,
              bands: Mapping[str, Sequence[int]] | None = None, nodata: float | None = _UNSET,
              dtype: OutputDtype = _UNSET, cog: bool = _UNSET, overwrite: bool = _UNSET, progress: bool = True, *,
              tiling: Tiling | None = None, output_options: OutputOptions | None = None,
              tags: Mapping[str, str] | None = None, outputs: OutputGroup | None = None,
              output_scale: float = 1.0) -> OutputSummary:
    """Run `fn` over every tile of the scene and write the blended result on the grid of input `grid` (coarsened by
    f when `output_scale` = 1/f, see the module docstring).

    fn(batch) takes {name: (B, C_i, h_i, w_i) float32} — h_i = tile · scale of that input, see `InputSpec` — and
    returns (B, C_out, tile, tile) on the output grid; a `TileFunction` gets `Tiles` (the same tensors plus masks and
    windows) instead. Optional attributes of fn: `input_specs` (name → InputSpec), `band_descriptions` (C_out
    strings), `output_tags` (metadata written to the file), `out_channels` (used only when every tile is nodata),
    `tile_multiple` (the tile sides it accepts, used when a tile larger than the scene is shrunk: `fit_tiling`).

    Tiling: `tiling=Tiling(tile, overlap, blend, batch_size)` or the same four as keywords (defaults 256, 32, "cosine",
    4). Writing: `output_options=OutputOptions(dtype, nodata, cog, overwrite, compress)` or dtype/nodata/cog/overwrite
    as keywords (default dtype float32). `tags` are written into the file (over fn's `output_tags`). `outputs`: an
    `OutputGroup` that moves the finished raster into place with the caller's other outputs (None: moved at once).
    `output_scale`: 1/f for an output grid f times coarser than the grid input's (tile and overlap, in grid-input
    pixels, must be multiples of f; fn returns (B, C_out, tile/f, tile/f)).
    See the package docstring for nodata, blending and output rules.
    """
    tiling = _tiling_of(tiling, tile, overlap, blend, batch_size)
    options = _output_options_of(output_options, nodata, dtype, cog, overwrite)
    if options.dtype is None:
        options = replace(options, dtype="float32")
    output = check_output(output, options.overwrite)
    specs = input_specs_of(fn, list(inputs))
    factor = output_factor(output_scale)
    with gdal_environment():
        grid_name = next(iter(inputs), None) if grid is None else grid
        needs_shape = grid_name in inputs and (tiling.tile is not None or factor > 1)
        shape = raster_info(inputs[grid_name]).shape if needs_shape else None
        if tiling.tile is not None and shape is not None:
            tiling = fit_tiling(tiling, shape, tile_multiple(specs, fn, factor))
        if tiling.tile is not None:
            check_tile_scales(specs, tiling.tile)
            check_output_factor(tiling, factor)
        the_grid, sources = open_inputs(inputs, grid, bands, specs, pad_to=_read_extent(tiling.tile, shape, factor))
        try:
            job = _SceneJob(fn, sources, the_grid, output, tiling, options, dict(tags or {}), progress, outputs,
                            factor)
            return job.run()
        finally:
            close_all(sources)
