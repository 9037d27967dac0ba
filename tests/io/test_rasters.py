"""rsinfer.io and the whole-scene helpers: read_scene / write_raster round trips, atomic writes, nodata rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
import torch
from tests.scene.scene_data import DEM, S1, S2, crop, gdalinfo, metadata_item

from rsinfer.io import Grid, InputSpec, RasterInputError, output_nodata
from rsinfer.scene import read_scene, write_raster


def test_read_scene_puts_s1_and_s2_on_one_grid():
    scene = read_scene({"s2": S2, "s1": S1}, bands={"s2": [2, 3, 4]})
    assert scene.arrays["s2"].shape == (3, 512, 512) and scene.arrays["s1"].shape == (2, 512, 512)
    assert scene.arrays["s1"].dtype == torch.float32
    assert scene.grid.descriptions == ("B2", "B3", "B4") and scene.grid.nodata == 0
    with rasterio.open(S2) as src, rasterio.open(S1) as s1:
        assert scene.grid.crs == src.crs and scene.grid.transform == src.transform
        np.testing.assert_array_equal(scene.arrays["s2"].numpy(), src.read([2, 3, 4]).astype(np.float32))
        np.testing.assert_array_equal(scene.arrays["s1"].numpy(), s1.read())
    assert scene.valid.all()


def test_read_scene_at_another_scale_covers_the_same_footprint():
    scene = read_scene({"s2": S2, "s1": S1}, specs={"s1": InputSpec(scale=0.25)})
    assert scene.arrays["s1"].shape == (2, 128, 128)
    with rasterio.open(S1) as src:
        block_mean = src.read().reshape(2, 128, 4, 128, 4).mean(axis=(2, 4))
    # bilinear decimation of the same ground: close to the 4x4 block means on average (dB values around -15)
    assert np.abs(scene.arrays["s1"].numpy() - block_mean).mean() < 1.5


@pytest.mark.parametrize("cog", [False, True])
def test_write_raster_round_trips_georeference_and_metadata(tmp_path, cog):
    dem = crop(DEM, tmp_path / "dem.tif", 100, 50, 300, 270)
    scene = read_scene({"dem": dem})
    array = scene.arrays["dem"] * 2  # nodata pixels are NaN in read_scene arrays
    assert torch.isnan(array).any()
    out = tmp_path / "out.tif"
    write_raster(array, scene.grid, out, descriptions=["twice the elevation"], tags={"RSINFER_WEIGHTS": "random"},
                 cog=cog)
    with rasterio.open(out) as ds, rasterio.open(dem) as src:
        assert (ds.crs, ds.transform, ds.shape) == (src.crs, src.transform, src.shape)
        assert ds.nodata == -9999 and ds.descriptions == ("twice the elevation",)
        raw, values = src.read(1), ds.read(1)
        np.testing.assert_array_equal(values[raw == -9999], -9999)
        np.testing.assert_allclose(values[raw != -9999], 2 * raw[raw != -9999], rtol=1e-7)
        assert ds.tags()["RSINFER_WEIGHTS"] == "random"
    info = gdalinfo(out)
    assert (metadata_item(info, "IMAGE_STRUCTURE", "LAYOUT") == "COG") == cog
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dem.tif", "out.tif"]


def test_write_raster_refuses_to_overwrite_and_a_wrong_shape(tmp_path):
    grid = Grid(rasterio.crs.CRS.from_epsg(32631), rasterio.transform.from_origin(0, 100, 10, 10), 5, 6)
    out = tmp_path / "o.tif"
    write_raster(np.ones((1, 5, 6)), grid, out)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_raster(np.ones((1, 5, 6)), grid, out)
    with pytest.raises(ValueError, match=r"\(C, 5, 6\)"):
        write_raster(np.ones((1, 6, 5)), grid, out, overwrite=True)
    write_raster(np.full((1, 5, 6), 7.0), grid, out, overwrite=True, dtype="uint8")
    with rasterio.open(out) as ds:
        assert ds.dtypes == ("uint8",) and (ds.read() == 7).all()


def test_output_nodata_rules():
    grid = Grid(rasterio.crs.CRS.from_epsg(4326), rasterio.transform.from_origin(0, 1, 1, 1), 1, 1, nodata=-9999.0)
    assert output_nodata(None, grid, "float32") == -9999
    assert output_nodata(5, grid, "uint8") == 5
    assert math.isnan(output_nodata(None, Grid(grid.crs, grid.transform, 1, 1), "float32"))
    assert output_nodata(None, Grid(grid.crs, grid.transform, 1, 1), "uint16") is None
    with pytest.raises(ValueError, match="-9999.0 is not representable in output dtype uint8"):
        output_nodata(None, grid, "uint8")


def test_input_spec_validates():
    with pytest.raises(ValueError, match="scale"):
        InputSpec(scale=0)
    with pytest.raises(ValueError, match="resampling"):
        InputSpec(resampling="cubic")


def test_read_scene_bad_band_names_the_file():
    with pytest.raises(RasterInputError, match=r"S1Hand\.tif: band index 3 out of range"):
        read_scene({"s1": S1}, bands={"s1": [3]})
