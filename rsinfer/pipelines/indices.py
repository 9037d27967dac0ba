"""The ``ndwi`` and ``ndvi`` pipelines: normalised-difference indices of a Sentinel-2 scene, per pixel.

- ``ndwi``: McFeeters' water index (B3 − B8)/(B3 + B8), > 0 over open water;
- ``ndvi``: the vegetation index (B8 − B4)/(B8 + B4).

Input ``s2``: Sentinel-2 L1C or L2A, the two bands found by name (or by position in the standard order when the file
does not describe its bands). Output: one float32 band, NaN as nodata (an index of 0 is a valid value), 0 where both
bands are 0. The math is `rsinfer.scene.products`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from rsinfer.io import RasterInfo
from rsinfer.pipelines.bands import resolve_bands
from rsinfer.pipelines.contract import InputContract, OutputContract, ScenePipeline, ScenePlan
from rsinfer.pipelines.sentinel import s2_bands
from rsinfer.scene import Tiles
from rsinfer.tiling import Tiling
from rsinfer.scene.products import product


@dataclass(frozen=True)
class IndexOptions:
    """Indices have no options."""


class SpectralIndex(ScenePipeline):
    """(a − b)/(a + b) of two named Sentinel-2 bands."""

    model = "normalised difference"
    Options = IndexOptions
    has_networks = False
    bands: tuple[str, str]

    def inputs(self) -> tuple[InputContract, ...]:
        return (InputContract("s2", f"Sentinel-2 L1C or L2A with bands {self.bands[0]} and {self.bands[1]}",
                              s2_bands(self.bands)),)

    def plan(self, rasters: Mapping[str, RasterInfo], tiling: Tiling) -> ScenePlan:
        (contract,) = self.inputs()
        resolved = resolve_bands(contract.bands, rasters["s2"], "s2")
        difference = product(self.name)  # of the two bands as read, in `self.bands` order

        def index(tiles: Tiles) -> torch.Tensor:
            return difference(tiles.inputs)  # (B, 1, h, w)

        a, b = self.bands
        return ScenePlan(index, "s2", {"s2": resolved.indexes},
                         OutputContract((self.name.upper(),), "float32", float("nan")),
                         tags={"RSINFER_PRODUCT": self.name, "RSINFER_FORMULA": f"({a} - {b}) / ({a} + {b})"})


class Ndwi(SpectralIndex):
    name = "ndwi"
    bands = ("B3", "B8")


class Ndvi(SpectralIndex):
    name = "ndvi"
    bands = ("B8", "B4")
