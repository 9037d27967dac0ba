"""run_scene on real rasters: tile invariance, exact crop stitching, georeferencing, nodata, COG, interrupts, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F
from tests.scene.scene_data import DEM, LABEL, LANDSAT, S1, S2, SAR, crop, gdalinfo, metadata_item
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import Resampling, reproject

from rsinfer.scene import InputSpec, RasterInputError, read_scene, run_scene
from rsinfer.tiling import plan_windows


def _read(path):
    with rasterio.open(path) as ds:
        return ds.read().astype(np.float64), ds.profile, ds.descriptions, ds.tags()


def _same_georeference(out_path, grid_path):
    with rasterio.open(out_path) as out, rasterio.open(grid_path) as ref:
        assert out.crs == ref.crs
        assert out.transform == ref.transform
        assert out.shape == ref.shape


def _pointwise(batch):
    s1, s2 = batch["s1"], batch["s2"]  # (B, 2, h, w), (B, 3, h, w)
    return torch.cat([torch.tanh(s1 / 10) * s2[:, :1] / 1e4, (s2[:, 1:2] - s2[:, 2:3]) / 1e3], dim=1)


@pytest.mark.parametrize("blend,tile,overlap", [("cosine", 200, 24), ("gaussian", 160, 50), ("crop", 97, 30),
                                                ("constant", 512, 0)])
def test_pointwise_fn_matches_the_whole_scene(tmp_path, blend, tile, overlap):
    """Sen1Floods11 S1 + S2 on one grid: tiled output equals fn on the whole scene (≤ 1e-6), masked where invalid."""
    s1 = crop(S1, tmp_path / "s1.tif", 0, 0, 512, 512)
    with rasterio.open(s1, "r+") as ds:  # the chip has no nodata: punch a hole and scattered gaps into the S1 copy
        data = ds.read()
        data[:, 300:420, 40:200] = np.nan
        data[1, np.random.default_rng(0).random((512, 512)) < 0.01] = np.nan
        ds.write(data)
    out = tmp_path / "out.tif"
    bands = {"s2": [3, 8, 4]}
    summary = run_scene(_pointwise, {"s2": S2, "s1": s1}, out, tile=tile, overlap=overlap, blend=blend,
                        batch_size=3, bands=bands, progress=False)
    scene = read_scene({"s2": S2, "s1": s1}, bands=bands)
    expected = _pointwise({name: a[None] for name, a in scene.arrays.items()})[0].double()
    values, profile, _, _ = _read(out)
    valid = scene.valid.numpy()
    assert 0.5 < valid.mean() < 1  # the real chip has nodata: both branches are exercised
    err = np.abs(values[:, valid] - expected.numpy()[:, valid]).max() / np.abs(expected.numpy()[:, valid]).max()
    assert err <= 1e-6
    assert profile["nodata"] == 0.0  # inherited from the S2 grid input
    assert (values[:, ~valid] == 0).all()
    _same_georeference(out, S2)
    assert summary.shape == (3, 512, 512)
    assert summary.tiles_run + summary.tiles_skipped == len(plan_windows(512, 512, tile, overlap))
    gdalinfo(out)


@pytest.mark.parametrize("radius", [1, 3])
def test_crop_blend_is_exact_for_a_convolution(tmp_path, radius):
    """A (2r+1)² zero-padded convolution under blend="crop" with overlap = 2r equals the whole-scene convolution."""
    grid = crop(LANDSAT["B4"], tmp_path / "b4.tif", 700, 900, 301, 277)
    kernel = torch.randn(2, 1, 2 * radius + 1, 2 * radius + 1, dtype=torch.float64)

    def conv(batch):
        return F.conv2d(batch["red"].double() / 1e4, kernel, padding=radius).float()

    out = tmp_path / "conv.tif"
    run_scene(conv, {"red": grid}, out, tile=64, overlap=2 * radius, blend="crop", progress=False)
    whole, _, _, _ = _read(grid)
    expected = F.conv2d(torch.from_numpy(whole)[None] / 1e4, kernel, padding=radius)[0].numpy()
    values, _, _, _ = _read(out)
    assert np.abs(values - expected).max() <= 1e-6 * np.abs(expected).max()
    # cosine blending of the same tiles is not exact near the seams: the test can tell
    run_scene(conv, {"red": grid}, tmp_path / "cos.tif", tile=64, overlap=2 * radius, blend="cosine",
              progress=False)
    cosine, _, _, _ = _read(tmp_path / "cos.tif")
    assert np.abs(cosine - expected).max() > 1e-4 * np.abs(expected).max()


def test_landsat_bands_round_trip(tmp_path):
    """Three Landsat 8 bands as three inputs, identity fn, uint16 output: pixel-exact with the grid's georeference.

    The grid is a 700x650 part of the scene (same files, read through a window-shifted copy of the red band's grid):
    the other bands are larger than the grid and read through the warped path, aligned to the pixel."""
    red = crop(LANDSAT["B4"], tmp_path / "red.tif", 611, 533, 700, 650)
    out = tmp_path / "rgb.tif"
    identity = lambda batch: torch.cat([batch["red"], batch["green"], batch["blue"]], 1)  # noqa: E731
    identity.band_descriptions = ("red", "green", "blue")
    summary = run_scene(identity, {"red": red, "green": LANDSAT["B3"], "blue": LANDSAT["B2"]}, out,
                        tile=256, overlap=32, dtype="uint16", batch_size=5, progress=False)
    values, profile, descriptions, _ = _read(out)
    for i, band in enumerate(("B4", "B3", "B2")):
        with rasterio.open(LANDSAT[band]) as src:
            np.testing.assert_array_equal(values[i], src.read(1, window=((611, 1311), (533, 1183))))
    assert profile["dtype"] == "uint16" and profile["nodata"] is None
    assert descriptions == ("red", "green", "blue")
    assert profile["tiled"] and profile["compress"] == "zstd" and profile["blockxsize"] == 256
    _same_georeference(out, red)
    assert summary.shape == (3, 700, 650) and summary.tiles_skipped == 0
    info = gdalinfo(out)
    assert [b["description"] for b in info["bands"]] == ["red", "green", "blue"]


def test_dem_does_not_overlap_the_landsat_grid(tmp_path):
    """The ASTER DEM (Patagonia, EPSG:32718) and the Landsat 8 scene (Paraguay, EPSG:32621) share no ground."""
    with pytest.raises(RasterInputError, match=f"{DEM.name}.*empty intersection"):
        run_scene(lambda b: b["dem"], {"landsat": LANDSAT["B2"], "dem": DEM}, tmp_path / "o.tif", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_dem_reprojected_onto_a_grid_in_another_crs(tmp_path):
    """The DEM read onto a 30 m grid in UTM 19S (another CRS) through the engine matches GDAL's own reproject."""
    grid_path = tmp_path / "grid.tif"
    transform = from_origin(172_000, 4_850_000, 30, 30)  # partly north of the DEM: that part is nodata
    with rasterio.open(grid_path, "w", driver="GTiff", width=300, height=350, count=1, dtype="uint8",
                       crs="EPSG:32719", transform=transform) as dst:
        dst.write(np.ones((1, 350, 300), dtype=np.uint8))
    out = tmp_path / "dem.tif"
    run_scene(lambda b: b["dem"], {"grid": grid_path, "dem": DEM}, out, tile=128, overlap=16, progress=False)
    values, profile, _, _ = _read(out)
    expected = np.full((1, 350, 300), np.nan, dtype=np.float32)
    with rasterio.open(DEM) as src:
        reproject(rasterio.band(src, 1), expected, dst_transform=transform, dst_crs="EPSG:32719",
                  dst_nodata=np.nan, resampling=Resampling.bilinear)
    both = np.isfinite(values) & np.isfinite(expected)
    assert both.mean() > 0.3 and (~np.isfinite(values)).mean() > 0.05  # partial overlap: nodata where no DEM
    # metres, in steep terrain; both warps use GDAL's approximate transformer (≤ 0.125 px), chunked differently
    diff = np.abs(values[both] - expected[both])
    assert diff.mean() < 1 and np.percentile(diff, 99) < 8 and np.ptp(expected[both]) > 500
    assert (np.isfinite(values) != np.isfinite(expected)).mean() < 0.01  # the nodata edge agrees to a pixel
    _same_georeference(out, grid_path)
    assert math.isnan(profile["nodata"])
    gdalinfo(out)


def test_scene_smaller_than_one_tile(tmp_path):
    """The 268x217 SAR scene with a 512 tile: the tile shrinks to the scene's 268-pixel side, runs once padded to
    268², is cropped back; nodata -99 carried through."""
    seen = []

    def double(batch):
        seen.append(tuple(batch["vv"].shape))
        return batch["vv"] * 2

    sar = crop(SAR, tmp_path / "in.tif", 0, 0, 217, 268)
    with rasterio.open(sar, "r+") as ds:  # the scene has no nodata pixel: mark a corner as nodata
        raw = ds.read(1)
        raw[:30, :50] = -99
        ds.write(raw[None])
    raw = raw.astype(np.float64)
    out = tmp_path / "sar.tif"
    summary = run_scene(double, {"vv": sar}, out, tile=512, overlap=32, progress=False)
    assert seen == [(1, 1, 268, 268)] and summary.tiles_run == 1
    values, profile, _, _ = _read(out)
    valid = raw != -99
    assert 0 < (~valid).sum() and profile["nodata"] == -99
    np.testing.assert_allclose(values[0, valid], 2 * raw[valid], rtol=1e-6)
    assert (values[0, ~valid] == -99).all()
    _same_georeference(out, SAR)
    gdalinfo(out)


def test_all_nodata_tiles_are_skipped_and_written_as_nodata(tmp_path):
    grid = crop(S1, tmp_path / "s1.tif", 0, 0, 300, 300)
    with rasterio.open(grid, "r+") as ds:
        data = ds.read()
        data[:, :140, :] = np.nan  # the first row of tiles is entirely nodata
        ds.write(data)
    calls = []

    def vv(batch):
        calls.append(batch["s1"].shape[0])
        return batch["s1"][:, :1]

    out = tmp_path / "o.tif"
    summary = run_scene(vv, {"s1": grid}, out, tile=128, overlap=16, batch_size=2, progress=False)
    assert summary.tiles_skipped == 3 and summary.tiles_run == 6 and sum(calls) == 6
    values, _, _, _ = _read(out)
    assert np.isnan(values[:, :140]).all()
    np.testing.assert_allclose(values[0, 140:], data[0, 140:], rtol=1e-6)
    # a scene with no valid pixel at all: nothing runs but a probe for the band count; all nodata
    with rasterio.open(grid, "r+") as ds:
        ds.write(np.full_like(data, np.nan))
    calls.clear()
    summary = run_scene(vv, {"s1": grid}, tmp_path / "empty.tif", tile=128, overlap=16, progress=False)
    assert summary.tiles_run == 0 and summary.tiles_skipped == 9 and summary.shape == (1, 300, 300)
    assert np.isnan(_read(tmp_path / "empty.tif")[0]).all()


def test_partial_overlap_leaves_nodata(tmp_path):
    """A second input covering only part of the grid: the rest of the output is nodata."""
    part = crop(S1, tmp_path / "part.tif", 100, 150, 200, 180)
    out = tmp_path / "o.tif"
    run_scene(lambda b: b["s2"][:, :1] * 0 + b["part"][:, :1], {"s2": S2, "part": part}, out, tile=128,
              overlap=16, bands={"s2": [3]}, nodata=-1.0, progress=False)
    values, _, _, _ = _read(out)
    with rasterio.open(S1) as s1, rasterio.open(S2) as s2:
        vv, green = s1.read(1), s2.read(3)
    inside = np.zeros(vv.shape, dtype=bool)
    inside[100:300, 150:330] = True
    valid = inside & np.isfinite(vv) & (green != 0)
    np.testing.assert_allclose(values[0, valid], vv[valid], rtol=1e-6)
    assert (values[0, ~valid] == -1).all()


def test_input_at_its_own_scale(tmp_path):
    """An input declared at scale 0.5 arrives at half the tile size and covers the same ground footprint."""
    fine = crop(LABEL, tmp_path / "fine.tif", 0, 0, 200, 200, dtype="float32", nodata=None)
    with rasterio.open(fine) as ds:
        labels = ds.read(1)
        coarse_values = labels[::2, ::2]
        profile = ds.profile | {"height": 100, "width": 100, "transform": ds.transform @ ds.transform.scale(2)}
    coarse = tmp_path / "coarse.tif"
    with rasterio.open(coarse, "w", **profile) as dst:
        dst.write(coarse_values[None])
    shapes = []

    def upsample(batch):
        shapes.append(tuple(batch["coarse"].shape[2:]))
        return batch["coarse"].repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)

    upsample.input_specs = {"coarse": InputSpec(scale=0.5, resampling="nearest")}
    out = tmp_path / "o.tif"
    run_scene(upsample, {"fine": fine, "coarse": coarse}, out, tile=64, overlap=16, progress=False)
    assert set(shapes) == {(32, 32)}
    values, _, _, _ = _read(out)
    np.testing.assert_array_equal(values[0], np.repeat(np.repeat(coarse_values, 2, 0), 2, 1))


def test_cog_output_is_a_valid_cloud_optimized_geotiff(tmp_path):
    out = tmp_path / "cog.tif"
    fn = lambda b: b["b2"] / 1e4  # noqa: E731
    fn.output_tags = {"RSINFER_WEIGHTS": "random"}
    blue = crop(LANDSAT["B2"], tmp_path / "blue.tif", 100, 200, 900, 800)
    run_scene(fn, {"b2": blue}, out, tile=512, overlap=32, cog=True, progress=False)
    info = gdalinfo(out)
    assert metadata_item(info, "IMAGE_STRUCTURE", "LAYOUT") == "COG"
    assert metadata_item(info, "IMAGE_STRUCTURE", "COMPRESSION") == "DEFLATE"
    assert metadata_item(info, "", "RSINFER_WEIGHTS") == "random"
    assert len(info["bands"][0].get("overviews", [])) >= 2
    assert info["bands"][0]["block"] == [256, 256]
    _same_georeference(out, blue)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blue.tif", "cog.tif"]


def test_interrupt_leaves_no_output_file(tmp_path):
    calls = []

    def interrupted(batch):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return batch["s1"]

    out = tmp_path / "o.tif"
    with pytest.raises(KeyboardInterrupt):
        run_scene(interrupted, {"s1": S1}, out, tile=64, overlap=8, batch_size=2, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_error_in_fn_leaves_no_file_and_keeps_an_existing_output(tmp_path):
    out = tmp_path / "o.tif"
    out.write_bytes(b"previous result")

    def broken(batch):
        raise RuntimeError("model exploded")

    with pytest.raises(RuntimeError, match="exploded"):
        run_scene(broken, {"s1": S1}, out, tile=128, overlap=8, overwrite=True, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["o.tif"] and out.read_bytes() == b"previous result"


def test_existing_output_is_refused_without_overwrite(tmp_path):
    out = tmp_path / "o.tif"
    out.write_bytes(b"x")
    with pytest.raises(FileExistsError, match="overwrite"):
        run_scene(lambda b: b["s1"], {"s1": S1}, out, progress=False)


def test_fn_with_a_wrong_output_shape_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"\(B, C_out, 128, 128\)"):
        run_scene(lambda b: b["s1"][:, :, :10], {"s1": S1}, tmp_path / "o.tif", tile=128, overlap=8,
                  progress=False)


def _no_crs(tmp_path):
    path = tmp_path / "nocrs.tif"
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=1, dtype="float32") as dst:
        dst.write(np.ones((1, 8, 8), dtype=np.float32))
    return path


def _complex(tmp_path):
    path = tmp_path / "complex.tif"
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=1, dtype="complex64", crs="EPSG:4326",
                       transform=from_origin(0, 8, 1, 1)) as dst:
        dst.write(np.ones((1, 8, 8), dtype=np.complex64))
    return path


def _text(tmp_path):
    path = tmp_path / "notes.tif"
    path.write_text("not a raster")
    return path


@pytest.mark.parametrize("case,error,message", [
    ("missing", FileNotFoundError, r"missing\.tif: no such file"),
    ("not a raster", RasterInputError, r"notes\.tif: not a raster"),
    ("no crs", RasterInputError, r"nocrs\.tif: has no CRS"),
    ("band out of range", RasterInputError, r"S2Hand\.tif: band index 14 out of range.*13 bands"),
    ("tile <= 2*overlap", ValueError, r"larger than 2 x overlap, got tile 64 and overlap 32"),
    ("empty intersection", RasterInputError, r"RGB\.byte\.tif: does not overlap.*empty intersection"),
    ("unsupported input dtype", RasterInputError, r"complex\.tif: band 1 has unsupported dtype complex64"),
    ("unsupported output dtype", ValueError, r"unsupported output dtype 'float16'"),
])
def test_bad_input_raises_a_clear_error(tmp_path, case, error, message):
    inputs, kwargs = {"s2": S2}, {}
    if case == "missing":
        inputs = {"s2": tmp_path / "missing.tif"}
    elif case == "not a raster":
        inputs = {"s2": _text(tmp_path)}
    elif case == "no crs":
        inputs = {"s2": _no_crs(tmp_path)}
    elif case == "band out of range":
        kwargs = {"bands": {"s2": [3, 14]}}
    elif case == "tile <= 2*overlap":
        kwargs = {"tile": 64, "overlap": 32}
    elif case == "empty intersection":
        inputs = {"s2": S2, "other": S2.parents[1] / "landsat" / "rasterio_RGB.byte.tif"}
    elif case == "unsupported input dtype":
        inputs = {"c": _complex(tmp_path)}
    elif case == "unsupported output dtype":
        kwargs = {"dtype": "float16"}
    before = set(tmp_path.iterdir())
    with pytest.raises(error, match=message):
        run_scene(lambda b: next(iter(b.values())), inputs, tmp_path / "out.tif", progress=False, **kwargs)
    assert set(tmp_path.iterdir()) == before


def test_progress_false_is_silent_and_logs_otherwise(tmp_path, capsys, caplog):
    caplog.set_level("INFO", logger="rsinfer.scene")
    run_scene(lambda b: b["s1"], {"s1": S1}, tmp_path / "a.tif", tile=256, overlap=8, progress=False)
    assert capsys.readouterr() == ("", "") and not [r for r in caplog.records if "tiles/s" in r.message]
    run_scene(lambda b: b["s1"], {"s1": S1}, tmp_path / "b.tif", tile=256, overlap=8, progress=True)
    assert capsys.readouterr().err == ""  # stderr is not a terminal under pytest: log records instead
    assert [r for r in caplog.records if "tiles/s" in r.message]


def test_grid_from_a_named_input_in_another_crs(tmp_path):
    """grid= picks the output grid; the other input (EPSG:4326) is resampled onto a UTM grid."""
    utm = tmp_path / "utm.tif"
    with rasterio.open(S1) as src:
        from rasterio.warp import calculate_default_transform
        transform, width, height = calculate_default_transform(src.crs, "EPSG:32630", src.width, src.height,
                                                               *src.bounds, resolution=20)
    with rasterio.open(utm, "w", driver="GTiff", width=width, height=height, count=1, dtype="uint8",
                       crs="EPSG:32630", transform=transform, nodata=None) as dst:
        dst.write(np.ones((1, height, width), dtype=np.uint8))
    out = tmp_path / "o.tif"
    run_scene(lambda b: b["s1"], {"s1": S1, "utm": utm}, out, grid="utm", tile=128, overlap=16, progress=False)
    _same_georeference(out, utm)
    with rasterio.open(out) as ds:
        assert ds.crs == CRS.from_epsg(32630) and ds.count == 2
        assert np.isfinite(ds.read(1)).mean() > 0.5
    gdalinfo(out)
