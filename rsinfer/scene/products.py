"""Per-pixel spectral indices as scene functions (the ``ndwi`` and ``ndvi`` pipelines of `rsinfer.pipelines` wrap them).

Each product is a `fn` for `run_scene`: it takes {"s2": (B, C, h, w)} and returns (B, 1, h, w), and carries its band
descriptions. Band numbers are 1-based indexes into a 13-band Sentinel-2 L1C stack (B1..B12 with B8A at 9, as in the
Sen1Floods11 chips), selected with `bands={"s2": product.bands}`.

- ``ndwi``: McFeeters' normalised difference water index (B3 − B8)/(B3 + B8): > 0 over open water.
- ``ndvi``: normalised difference vegetation index (B8 − B4)/(B8 + B4).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class NormalisedDifference:
    """(a − b)/(a + b) of two bands, 0 where a + b = 0."""

    name: str
    bands: tuple[int, int]  # 1-based (a, b) in the source raster
    input_name: str = "s2"

    @property
    def band_descriptions(self) -> tuple[str]:
        return (self.name.upper(),)

    @property
    def output_tags(self) -> dict[str, str]:
        return {"RSINFER_PRODUCT": self.name, "RSINFER_FORMULA": f"(band {self.bands[0]} - band {self.bands[1]}) / "
                                                                 f"(band {self.bands[0]} + band {self.bands[1]})"}

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = batch[self.input_name]  # (B, 2, h, w): the two selected bands
        a, b = x[:, 0:1], x[:, 1:2]
        total = a + b
        return torch.where(total != 0, (a - b) / torch.where(total != 0, total, 1.0), 0.0)  # (B, 1, h, w)


PRODUCTS: dict[str, NormalisedDifference] = {
    "ndwi": NormalisedDifference("ndwi", (3, 8)),
    "ndvi": NormalisedDifference("ndvi", (8, 4)),
}


def product(name: str) -> NormalisedDifference:
    if name not in PRODUCTS:
        raise ValueError(f"unknown product {name!r}; choose one of {sorted(PRODUCTS)}")
    return PRODUCTS[name]
