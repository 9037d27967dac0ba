"""GDAL settings for one scene job, scoped by a context manager (nothing global outlives the job)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import rasterio

# GDAL's block cache defaults to 5% of RAM; bounded, it keeps a scene job's memory flat however large the scene.
DEFAULT_CACHE_BYTES = 32 * 2**20


@contextlib.contextmanager
def gdal_environment(cache_bytes: int = DEFAULT_CACHE_BYTES) -> Iterator[None]:
    """Bound GDAL's raster block cache (a process-wide setting, restored on exit) while the block runs."""
    with rasterio.Env(GDAL_CACHEMAX=cache_bytes):
        yield
