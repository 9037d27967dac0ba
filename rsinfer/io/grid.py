"""The output grid: CRS, affine transform and shape, plus the nodata and band descriptions of its source raster."""

from __future__ import annotations

import math
from dataclasses import dataclass

from affine import Affine
from rasterio.crs import CRS

from rsinfer.tiling import Window


@dataclass(frozen=True)
class Grid:
    """A georeferenced pixel grid: pixel (row, col) has its upper-left corner at `transform * (col, row)` in `crs`."""

    crs: CRS
    transform: Affine
    height: int
    width: int
    nodata: float | None = None
    descriptions: tuple[str | None, ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in CRS units (for a north-up grid)."""
        xs, ys = zip(*(self.transform @ corner for corner in ((0, 0), (self.width, 0), (0, self.height),
                                                               (self.width, self.height))))
        return min(xs), min(ys), max(xs), max(ys)

    def window_transform(self, window: Window) -> Affine:
        """The transform of `window` as a raster of its own."""
        return self.transform @ Affine.translation(window.col, window.row)

    def scaled(self, scale: float, height: int | None = None, width: int | None = None) -> Grid:
        """The same ground footprint sampled `scale` times as densely (0.25: pixels 4x larger); shape rounded up.

        `height`/`width` override the footprint in this grid's pixels (e.g. a scene padded up to one tile).
        """
        height = self.height if height is None else height
        width = self.width if width is None else width
        return Grid(self.crs, self.transform @ Affine.scale(1 / scale), math.ceil(height * scale - 1e-9),
                    math.ceil(width * scale - 1e-9), self.nodata, self.descriptions)
