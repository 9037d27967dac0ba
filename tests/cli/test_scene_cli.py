"""`rsinfer scene`: the README's main command on the real Sen1Floods11 S2 chip."""

from __future__ import annotations

import numpy as np
import rasterio
from tests.scene.scene_data import S2, gdalinfo, metadata_item

from rsinfer.cli import main


def test_ndwi_product_end_to_end(tmp_path, capsys):
    out = tmp_path / "ndwi.tif"
    assert main(["scene", "--product", "ndwi", "--input", f"s2={S2}", "--out", str(out), "--tile", "200",
                 "--overlap", "24", "--cog"]) == 0
    assert "wrote" in capsys.readouterr().out
    with rasterio.open(S2) as src, rasterio.open(out) as ds:
        green, nir = src.read(3).astype(np.float64), src.read(8).astype(np.float64)
        ndwi = ds.read(1)
        assert ds.crs == src.crs and ds.transform == src.transform and ds.descriptions == ("NDWI",)
    expected = (green - nir) / (green + nir)
    assert np.abs(ndwi - expected).max() <= 1e-6
    assert (ndwi[expected > 0.2] > 0).all()  # open water has positive NDWI
    info = gdalinfo(out)
    assert metadata_item(info, "IMAGE_STRUCTURE", "LAYOUT") == "COG"
    assert metadata_item(info, "", "RSINFER_PRODUCT") == "ndwi"


def test_cli_reports_bad_input_without_a_traceback(tmp_path, capsys):
    assert main(["scene", "--product", "ndwi", "--input", f"s2={tmp_path / 'none.tif'}", "--out",
                 str(tmp_path / "o.tif")]) == 2
    assert "none.tif: no such file" in capsys.readouterr().err
