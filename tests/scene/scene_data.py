"""Scene engine test helpers: the real rasters, small crops of them, and gdalinfo as an independent reader."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.windows import Window as RioWindow

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
S1 = DATA / "sen1floods11" / "Spain_7370579_S1Hand.tif"
S2 = DATA / "sen1floods11" / "Spain_7370579_S2Hand.tif"
LABEL = DATA / "sen1floods11" / "Spain_7370579_LabelHand.tif"
LANDSAT = {band: DATA / "landsat" / f"LC08_L1TP_224078_20200518_20200518_01_RT_{band}.TIF"
           for band in ("B2", "B3", "B4")}
DEM = DATA / "dem" / "geoutils_ASTER_DEM_Exploradores.tif"
SAR = DATA / "sar" / "pyrosar_S1A_IW_20150309_VV_grd_geo_db.tif"
if not DATA.is_dir():
    raise FileNotFoundError(f"real test data not found at {DATA}: the shared/ folder must sit beside the checkout")


def crop(source: Path, out: Path, row: int, col: int, height: int, width: int, **profile_overrides) -> Path:
    """Write rows/cols of a real raster to `out` (same CRS, shifted transform, same dtype and nodata)."""
    with rasterio.open(source) as src:
        window = RioWindow(col, row, width, height)
        profile = src.profile | {"height": height, "width": width, "transform": src.window_transform(window),
                                 "driver": "GTiff", "tiled": False, "compress": None} | profile_overrides
        profile.pop("blockxsize", None), profile.pop("blockysize", None)
        data = src.read(window=window)
        descriptions = src.descriptions
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data.astype(profile["dtype"]))
        for i, d in enumerate(descriptions, 1):
            if d:
                dst.set_band_description(i, d)
    return out


REQUIRE_GDALINFO_VARIABLE = "RSINFER_REQUIRE_GDALINFO"


def gdalinfo(path: Path) -> dict:
    """gdalinfo -json (Debian gdal-bin, not the GDAL inside rasterio's wheel); CRS, transform and size must agree
    with what rasterio reads.

    Without gdalinfo the calling test is skipped at this point with a loud reason (`make gdal` installs it where it
    can; it needs root), or fails when RSINFER_REQUIRE_GDALINFO is set (CI, .ci/run).
    """
    if shutil.which("gdalinfo") is None:
        reason = ("GDALINFO MISSING: the independent gdalinfo cross-check of this test did not run; install Debian's "
                  "gdal-bin (`make gdal`, needs root)")
        if os.environ.get(REQUIRE_GDALINFO_VARIABLE):
            pytest.fail(f"{reason} ({REQUIRE_GDALINFO_VARIABLE} requires it)", pytrace=False)
        pytest.skip(reason)
    info = json.loads(subprocess.run(["gdalinfo", "-json", str(path)], check=True, capture_output=True,
                                     text=True).stdout)
    with rasterio.open(path) as ds:
        assert info["size"] == [ds.width, ds.height]
        assert CRS.from_wkt(info["coordinateSystem"]["wkt"]) == ds.crs
        np.testing.assert_allclose(info["geoTransform"], ds.transform.to_gdal(), rtol=1e-12, atol=0)
    return info


def metadata_item(info: dict, domain: str, key: str) -> str | None:
    return info.get("metadata", {}).get(domain, {}).get(key)
