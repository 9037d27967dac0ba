"""Validation of metric inputs: images are (bands, rows, cols) arrays in DN, and all arithmetic is float64."""

from __future__ import annotations

import numpy as np


def as_bands(image: np.ndarray, name: str) -> np.ndarray:
    """`image` as a float64 (bands, rows, cols) array; anything that is not 3-D is a ValueError naming `name`."""
    array = np.asarray(image, dtype=np.float64)
    if array.ndim != 3 or 0 in array.shape:
        raise ValueError(f"{name} must be a non-empty (bands, rows, cols) array, got shape {array.shape}")
    return array


def as_pan(image: np.ndarray, name: str = "pan") -> np.ndarray:
    """A single-band image, given as (rows, cols) or (1, rows, cols), as a float64 (rows, cols) array."""
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"{name} must be a (rows, cols) or (1, rows, cols) array, got shape {array.shape}")
    return array


def check_same_shape(first: np.ndarray, second: np.ndarray, names: tuple[str, str]) -> None:
    if first.shape != second.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, got {first.shape} and {second.shape}")


def check_block(block: int, rows: int, cols: int, *, divides: bool) -> None:
    """`block` must be a positive int no larger than the image; with `divides`, it must divide rows and cols."""
    if not isinstance(block, (int, np.integer)) or block < 2:
        raise ValueError(f"block must be an integer >= 2, got {block!r}")
    if block > rows or block > cols:
        raise ValueError(f"block {block} is larger than the image ({rows} x {cols})")
    if divides and (rows % block or cols % block):
        raise ValueError(f"rows and cols ({rows} x {cols}) must be multiples of the block size {block}, "
                         "as the toolbox requires for this metric")
