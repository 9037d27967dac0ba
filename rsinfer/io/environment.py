"""GDAL for one scene job: settings scoped by a context manager, GDAL's error messages captured instead of printed, and
a raster copy (the COG conversion) that an interrupt stops within a fraction of a second.

Messages. GDAL reports some I/O failures (libtiff's, e.g. ``_tiffWriteProc: No space left on device``) straight to
stderr, dozens of times for one full disk. Inside `gdal_environment()` they are collected instead (`GdalMessages`), and
rsinfer's errors quote them once: `failure_reason`.

Interrupts. `rasterio.shutil.copy` runs GDAL's CreateCopy as one long C call that no signal handler can interrupt: a
Ctrl-C during a COG conversion would take effect only once the conversion ended. `copy_raster` runs CreateCopy in a
worker thread with a progress callback (GDAL's own C API, reached through the library rasterio already loaded) and
waits for it in the calling thread, where an interrupt is raised at once; the callback then tells GDAL to stop, GDAL
removes its partial files, and the interrupt propagates. Where the C API cannot be reached (a GDAL build without
these symbols) it falls back to `rasterio.shutil.copy`.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import os
import platform
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping

import rasterio
import rasterio.shutil

_log = logging.getLogger("rsinfer.io")

# GDAL's block cache defaults to 5% of RAM; bounded, it keeps a scene job's memory flat however large the scene.
DEFAULT_CACHE_BYTES = 32 * 2**20
_KEPT_MESSAGES = 64
_GDAL_OF_RASTER_READONLY = 0x02


class GdalMessages:
    """The latest errors GDAL and libtiff reported, numbered and by thread, so that a failing call can quote those it
    caused (warnings are only logged)."""

    def __init__(self) -> None:
        self._messages: deque[tuple[int, int, str]] = deque(maxlen=_KEPT_MESSAGES)
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self.last = 0  # number of the latest error

    def add(self, text: str, error: bool = True) -> None:
        _log.debug("GDAL %s: %s", "error" if error else "warning", text)
        if not error:
            return
        with self._lock:
            self.last = next(self._counter)
            self._messages.append((self.last, threading.get_ident(), text))

    def since(self, number: int) -> list[str]:
        """Distinct errors this thread saw after error `number`, in order."""
        thread = threading.get_ident()
        with self._lock:
            return list(dict.fromkeys(text for n, t, text in self._messages if n > number and t == thread))


MESSAGES = GdalMessages()


def first_error(since: int) -> str | None:
    """The first error GDAL or libtiff gave this thread after error `since` (the cause: the rest follow from it),
    without the reporting function's name: "No space left on device" of "_tiffWriteProc: No space left on device"."""
    messages = MESSAGES.since(since)
    return messages[0].split(": ", 1)[-1].strip().rstrip(".") if messages else None


def failure_reason(err: BaseException, since: int) -> str:
    """Why a GDAL call that raised `err` failed: `first_error(since)`, else the message of the error rasterio chained,
    else `err`'s own."""
    first = first_error(since)
    if first:
        return first
    cause = err.__cause__ or err.__context__
    return str(cause if cause is not None else err).strip().rstrip(".")


class _Native:
    """GDAL's and libtiff's C functions rsinfer calls directly, resolved through rasterio's extension module."""

    def __init__(self) -> None:
        import rasterio._base

        lib = ctypes.CDLL(rasterio._base.__file__)  # its dependencies (libgdal, libtiff) answer the lookups
        self.tiff_handler = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p)
        self.cpl_handler = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_char_p)
        self.progress = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_double, ctypes.c_char_p, ctypes.c_void_p)
        self.set_tiff_error_handler = _function(lib, "TIFFSetErrorHandler", ctypes.c_void_p, [ctypes.c_void_p])
        self.set_tiff_warning_handler = _function(lib, "TIFFSetWarningHandler", ctypes.c_void_p, [ctypes.c_void_p])
        self.push_handler = _function(lib, "CPLPushErrorHandler", None, [self.cpl_handler])
        self.pop_handler = _function(lib, "CPLPopErrorHandler", None, [])
        self.all_register = _function(lib, "GDALAllRegister", None, [])
        self.driver = _function(lib, "GDALGetDriverByName", ctypes.c_void_p, [ctypes.c_char_p])
        self.open = _function(lib, "GDALOpenEx", ctypes.c_void_p,
                              [ctypes.c_char_p, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p])
        self.create_copy = _function(lib, "GDALCreateCopy", ctypes.c_void_p,
                                     [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int,
                                      ctypes.POINTER(ctypes.c_char_p), self.progress, ctypes.c_void_p])
        self.close = _function(lib, "GDALClose", ctypes.c_int, [ctypes.c_void_p])
        libc = ctypes.CDLL(None)
        self.vsnprintf = _function(libc, "vsnprintf", ctypes.c_int,
                                   [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p])
        # libtiff's handlers get a va_list: passed on as a pointer, which is how x86-64 and AArch64 pass it
        self.can_format = platform.machine().lower() in ("x86_64", "amd64", "aarch64", "arm64")


def _function(lib: ctypes.CDLL, name: str, restype, argtypes) -> Callable:
    function = getattr(lib, name)
    function.restype, function.argtypes = restype, argtypes
    return function


_native: _Native | None | bool = False  # False: not looked up yet; None: not available


def native() -> _Native | None:
    """GDAL's C API, or None when this GDAL build does not expose it (then rsinfer falls back to rasterio)."""
    global _native
    if _native is False:
        try:
            _native = _Native()
        except (OSError, AttributeError) as err:
            _log.info("GDAL's C API is not reachable (%s): COG conversions cannot be interrupted early", err)
            _native = None
    return _native


class _TiffCapture:
    """libtiff's process-wide error and warning handlers, pointed at `MESSAGES` while any job runs (nested jobs share
    one installation; the previous handlers come back when the last one ends)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._previous: tuple[int | None, int | None] = (None, None)
        self._callbacks: tuple = ()  # kept alive while libtiff holds them

    def _recorder(self, error: bool) -> Callable[[bytes | None, bytes | None, int | None], None]:
        def record(module: bytes | None, fmt: bytes | None, args: int | None) -> None:
            buffer = ctypes.create_string_buffer(1024)
            native().vsnprintf(buffer, len(buffer), fmt or b"", args)
            text = buffer.value.decode("utf-8", "replace")
            MESSAGES.add(f"{module.decode('utf-8', 'replace')}: {text}" if module else text, error)

        return record

    def __enter__(self) -> None:
        lib = native()
        if lib is None or not lib.can_format:
            return
        with self._lock:
            if self._depth == 0:
                self._callbacks = (lib.tiff_handler(self._recorder(True)), lib.tiff_handler(self._recorder(False)))
                errors, warnings = (ctypes.cast(callback, ctypes.c_void_p) for callback in self._callbacks)
                self._previous = (lib.set_tiff_error_handler(errors), lib.set_tiff_warning_handler(warnings))
            self._depth += 1

    def __exit__(self, *exc: object) -> None:
        lib = native()
        if lib is None or not lib.can_format:
            return
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                lib.set_tiff_error_handler(self._previous[0])
                lib.set_tiff_warning_handler(self._previous[1])
                self._callbacks = ()


_TIFF_CAPTURE = _TiffCapture()


@contextlib.contextmanager
def gdal_environment(cache_bytes: int = DEFAULT_CACHE_BYTES) -> Iterator[None]:
    """While the block runs: GDAL's raster block cache bounded (a process-wide setting, restored on exit), and
    libtiff's messages collected in `MESSAGES` instead of printed."""
    with rasterio.Env(GDAL_CACHEMAX=cache_bytes), _TIFF_CAPTURE:
        yield


def copy_raster(source: str | os.PathLike, target: str | os.PathLike, driver: str,
                options: Mapping[str, str]) -> None:
    """Copy `source` into a new `target` with GDAL's `driver` and creation `options`; an interrupt (Ctrl-C, or a
    signal handler's exception) in the calling thread stops GDAL within a fraction of a second (see the module
    docstring). Raises OSError with GDAL's reason when the copy fails."""
    lib = native()
    if lib is None:
        rasterio.shutil.copy(source, target, driver=driver, **options)
        return
    cancel, done = threading.Event(), threading.Event()
    outcome: list[BaseException | None] = []

    def work() -> None:
        try:
            outcome.append(_create_copy(lib, source, target, driver, options, cancel))
        finally:
            done.set()

    threading.Thread(target=work, name="rsinfer-gdal-copy", daemon=True).start()
    try:
        while not done.wait(0.05):  # short waits: the calling thread stays responsive to signals
            pass
    except BaseException:
        cancel.set()  # GDAL sees it at its next progress report, stops and removes its partial files
        while not done.wait(0.05):  # (an Event, not Thread.join: a join interrupted once may not wait again)
            pass
        raise
    if outcome and outcome[0] is not None:
        raise outcome[0]


def _create_copy(lib: _Native, source: str | os.PathLike, target: str | os.PathLike, driver: str,
                 options: Mapping[str, str], cancel: threading.Event) -> BaseException | None:
    """GDALCreateCopy on this (worker) thread, GDAL's messages collected on its handler stack; the error, or None."""
    since = MESSAGES.last

    def collect(error_class: int, number: int, message: bytes | None) -> None:
        MESSAGES.add((message or b"").decode("utf-8", "replace"), error_class >= 3)  # 3, 4: CE_Failure, CE_Fatal

    stopped: list[float] = []

    def progress(fraction: float, message: bytes | None, data: int | None) -> int:
        if not cancel.is_set():
            return 1
        if not stopped:
            stopped.append(fraction)
            _log.info("%s: stopped at %.0f %% of the copy", target, 100 * fraction)
        return 0

    handler, report = lib.cpl_handler(collect), lib.progress(progress)
    encoded = [f"{key}={value}".encode() for key, value in options.items()]
    option_list = (ctypes.c_char_p * (len(encoded) + 1))(*encoded, None)
    lib.push_handler(handler)
    try:
        lib.all_register()
        source_handle = lib.open(os.fsencode(source), _GDAL_OF_RASTER_READONLY, None, None, None)
        if not source_handle:
            return OSError(f"{source}: GDAL cannot open it: {first_error(since) or 'unknown error'}")
        try:
            copied = lib.create_copy(lib.driver(driver.encode()), os.fsencode(target), source_handle, 0,
                                     option_list, report, None)
            if cancel.is_set():  # the caller raises its interrupt and removes the target
                if copied:
                    lib.close(copied)
                return None
            if not copied or lib.close(copied) != 0:
                return OSError(first_error(since) or "GDAL could not write it")
            return None
        finally:
            lib.close(source_handle)
    finally:
        lib.pop_handler()
