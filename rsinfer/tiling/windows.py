"""Windows: integer rectangles of a pixel grid, and the plan that covers a grid with overlapping tiles.

A `Window` holds integer offsets only (rasterio's float windows drift by an epsilon and read off by one; ours cannot).
Pixel ↔ CRS conversion happens at the I/O edge (`rsinfer.io`), never here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Window:
    """Rows [row, row + height) × columns [col, col + width) of a grid."""

    row: int
    col: int
    height: int
    width: int

    def __post_init__(self) -> None:
        for name in ("row", "col", "height", "width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"Window.{name} must be an int, got {value!r} ({type(value).__name__})")
        if self.row < 0 or self.col < 0:
            raise ValueError(f"Window offsets must be >= 0, got row={self.row}, col={self.col}")
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"Window size must be positive, got {self.height}x{self.width}")

    @property
    def bottom(self) -> int:
        """One past the last row."""
        return self.row + self.height

    @property
    def right(self) -> int:
        """One past the last column."""
        return self.col + self.width

    def slices(self) -> tuple[slice, slice]:
        """(rows, cols) slices for indexing the last two axes of an array."""
        return slice(self.row, self.bottom), slice(self.col, self.right)


def check_tile_overlap(tile: int, overlap: int) -> None:
    """The one tiling rule: integers with tile > 0, overlap ≥ 0 and tile > 2·overlap, so every tile keeps an interior
    that no neighbour's blending margin reaches."""
    for name, value in (("tile", tile), ("overlap", overlap)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {value!r}")
    if tile <= 0:
        raise ValueError(f"tile must be a positive number of pixels, got {tile}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0 pixels, got {overlap}")
    if tile <= 2 * overlap:
        raise ValueError(f"tile must be larger than 2 x overlap, got tile {tile} and overlap {overlap} "
                         f"(largest overlap for this tile: {(tile - 1) // 2})")


def _starts(size: int, tile: int, stride: int) -> list[int]:
    """Tile starts along one axis: every `stride` from 0, the last one shifted inward to end exactly at `size`."""
    if size <= tile:
        return [0]
    count = -(-(size - tile) // stride) + 1  # smallest n with (n-1)·stride + tile >= size
    return [i * stride for i in range(count - 1)] + [size - tile]


def plan_windows(height: int, width: int, tile: int, overlap: int) -> list[Window]:
    """Cover a height × width grid with tile × tile windows overlapping by at least `overlap` pixels, row-major.

    Windows step by `tile - overlap`; the last window of each row and column is shifted inward so it ends exactly at
    the grid border (it overlaps its neighbour more, it is never padded), so every window lies inside the grid. Along
    an axis shorter than `tile` the single window spans the whole axis (smaller than `tile`): the caller pads it.
    Requires `check_tile_overlap(tile, overlap)`.
    """
    for name, value in (("height", height), ("width", width)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {value!r}")
    if height <= 0 or width <= 0:
        raise ValueError(f"grid must be non-empty, got {height}x{width}")
    check_tile_overlap(tile, overlap)
    stride = tile - overlap
    rows, cols = _starts(height, tile, stride), _starts(width, tile, stride)
    h, w = min(tile, height), min(tile, width)
    return [Window(r, c, h, w) for r in rows for c in cols]

