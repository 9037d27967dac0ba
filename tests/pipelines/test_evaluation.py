"""`rsinfer.pipelines.evaluation`: reading rasters for the metrics, band identity against the sensor registry, Wald's
protocol on the bundled Landsat 8 bands (PAN synthetic unless stated), translation metrics; each against the metric
functions and degradation applied to arrays in the test."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine

from rsinfer.metrics import full_resolution, image_quality, reduced_resolution
from rsinfer.pansharpening import BASELINES, degrade
from rsinfer.pipelines import PipelineSpec, build
from rsinfer.pipelines import evaluation
from rsinfer.sensors import sensor
from rsinfer.tiling import Window
from tests.pipelines.test_pansharpen import BANDS, SMALL, landsat_reference, landsat_subset, write_raster


@pytest.fixture
def landsat(data_dir, tmp_path):
    """B2, B3, B4 of a 128² Landsat crop as three single-band files and one 3-band file; the array."""
    reference, transform, crs = landsat_reference(data_dir, 128)
    singles = [write_raster(tmp_path / f"{b}.tif", reference[i:i + 1], transform, crs, "uint16")
               for i, b in enumerate(BANDS)]
    stacked = write_raster(tmp_path / "stack.tif", reference, transform, crs, "uint16")
    return singles, stacked, reference, transform, crs


def test_single_band_files_stack_in_order_and_windows_cut(landsat) -> None:
    singles, stacked, reference, _, _ = landsat
    grid, window = evaluation.area(stacked, Window(8, 16, 64, 96))
    from_singles = evaluation.read_stack(singles, grid, window)
    np.testing.assert_array_equal(from_singles.values, reference[:, 8:72, 16:112])
    np.testing.assert_array_equal(evaluation.read_stack([stacked], grid, window).values, from_singles.values)
    with pytest.raises(ValueError, match="reaches past"):
        evaluation.area(stacked, Window(100, 0, 64, 64))


def test_a_coarser_raster_is_read_at_its_scale_exactly(landsat, tmp_path) -> None:
    """An MS on the 4x coarser, aligned grid reads back exactly under a window of the fine grid."""
    _, stacked, reference, transform, crs = landsat
    coarse = reference[:, 2::4, 2::4]
    ms = write_raster(tmp_path / "ms.tif", coarse, transform @ Affine.scale(4), crs, "uint16")
    grid, window = evaluation.area(stacked, Window(16, 32, 64, 64))
    np.testing.assert_array_equal(evaluation.read_stack([ms], grid, window, 0.25).values, coarse[:, 4:20, 8:24])


def test_nodata_inside_the_area_is_an_error(landsat, tmp_path) -> None:
    _, _, reference, transform, crs = landsat
    holed = reference.copy()
    holed[:, 40, 50] = 0
    path = write_raster(tmp_path / "holed.tif", holed, transform, crs, "uint16", nodata=0)
    grid, _ = evaluation.area(path, None)
    with pytest.raises(ValueError, match=r"holed.tif: 1 nodata pixel\(s\)"):
        evaluation.read_stack([path], grid, Window(32, 32, 32, 32))
    assert evaluation.read_stack([path], grid, Window(0, 0, 32, 32)).values.shape == (3, 32, 32)


def test_sensor_bands_by_name_description_or_count() -> None:
    l8, wv3 = sensor("landsat-8"), sensor("wv3")
    assert [b.name for b in evaluation.sensor_bands(l8, ["B4", "B2"], [None, None]).bands] == ["B4", "B2"]
    assert [b.name for b in evaluation.sensor_bands(l8, None, ["B3", "B2"]).bands] == ["B3", "B2"]
    assert evaluation.sensor_bands(wv3, None, [None] * 8).bands == wv3.bands
    with pytest.raises(ValueError, match=r"the MS has 3 band\(s\) and landsat-8 has 8 .*--bands B1 B2 B3"):
        evaluation.sensor_bands(l8, None, [None] * 3)
    with pytest.raises(ValueError, match="2 band names"):
        evaluation.sensor_bands(l8, ["B2", "B3"], [None] * 3)
    with pytest.raises(ValueError, match="has no band 'B99'"):
        evaluation.sensor_bands(l8, ["B99"], [None])


def test_wald_protocol_with_a_synthetic_pan(landsat) -> None:
    singles, _, reference, _, _ = landsat
    report = evaluation.wald_evaluation(singles, None, "landsat-8", ["exp", "gsa", "mtf-glp"], bands=list(BANDS))
    spec = landsat_subset()
    pair = degrade(reference, None, spec)
    assert pair.ms.shape == (3, 32, 32) and pair.pan.shape == (128, 128)
    np.testing.assert_allclose(pair.pan, reference.mean(axis=0))  # all three bands are visible
    gains = [b.gnyq for b in spec.bands]
    for method in ("exp", "gsa", "mtf-glp"):
        expected = reduced_resolution(BASELINES[method](pair.ms, pair.pan, 4, gains), reference)
        assert report.metrics[method] == pytest.approx(expected, rel=1e-12)
    assert report.pan_source == "synthetic" and "SYNTHETIC" in report.pan_description
    assert report.reference_shape == (3, 128, 128) and report.bands == BANDS and report.sensor == "landsat-8"
    # a property that makes the table meaningful: PAN detail helps, so GSA beats EXP on ERGAS and Q2n
    assert report.metrics["gsa"]["ERGAS"] < report.metrics["exp"]["ERGAS"]
    assert report.metrics["gsa"]["Q2n"] > report.metrics["exp"]["Q2n"]


def test_wald_protocol_with_a_real_pan(landsat, tmp_path) -> None:
    """A PAN at 4x the MS resolution (here a stand-in: B4 of a 512² crop on a 7.5 m grid) is MTF-degraded with the
    PAN's GNyq and decimated like the MS."""
    _, stacked, reference, transform, crs = landsat
    pan_values = np.kron(reference[2], np.ones((4, 4)))[None]  # (1, 512, 512)
    pan = write_raster(tmp_path / "pan.tif", pan_values, transform @ Affine.scale(0.25), crs, "uint16")
    report = evaluation.wald_evaluation([stacked], pan, "landsat-8", ["brovey"], bands=list(BANDS))
    pair = degrade(reference, pan_values[0], landsat_subset())
    expected = reduced_resolution(BASELINES["brovey"](pair.ms, pair.pan, 4), reference)
    assert report.metrics["brovey"] == pytest.approx(expected, rel=1e-12)
    assert report.pan_source == "real" and "pan.tif" in report.pan_description
    assert "GNyq 0.15" in report.pan_description  # landsat-8 PAN: the toolbox default GNyq


def test_wald_crossdiff_runs_the_pipeline_networks(landsat) -> None:
    singles, _, reference, _, _ = landsat
    spec = PipelineSpec("pansharpen", "random:1", {"sensor": "landsat-8", "network": SMALL})
    report = evaluation.wald_evaluation(singles, None, "landsat-8", ["crossdiff"], bands=list(BANDS),
                                        crossdiff=spec)
    pair = degrade(reference, None, landsat_subset())
    fused = build(spec).sharpen_dn(torch.from_numpy(pair.pan).float()[None, None],
                                   torch.from_numpy(pair.ms).float()[None])[0].double().numpy()
    assert report.metrics["crossdiff"] == pytest.approx(reduced_resolution(fused, reference), rel=1e-9)


@pytest.mark.parametrize("methods, crossdiff, message", [
    (["exp", "pca"], None, r"choose one or more of \('exp', 'brovey'"),
    (["crossdiff"], None, "needs CrossDiff weights"),
])
def test_wald_method_errors(landsat, methods, crossdiff, message) -> None:
    singles = landsat[0]
    with pytest.raises(ValueError, match=message):
        evaluation.wald_evaluation(singles, None, "landsat-8", methods, bands=list(BANDS), crossdiff=crossdiff)


def test_default_methods_are_every_baseline(landsat) -> None:
    report = evaluation.wald_evaluation(landsat[0], None, "landsat-8", bands=list(BANDS), window=Window(0, 0, 96, 96))
    assert list(report.metrics) == list(BASELINES)


def test_full_resolution_of_rasters(landsat, tmp_path) -> None:
    """Fused = GSA of a Wald pair's MS (32²) and synthetic PAN (128²), written on the PAN grid."""
    _, _, reference, transform, crs = landsat
    pair = degrade(reference, None, landsat_subset())
    fused = BASELINES["gsa"](pair.ms, pair.pan, 4)
    paths = {name: write_raster(tmp_path / f"{name}.tif", values, t, crs)
             for name, values, t in (("fused", fused, transform), ("pan", pair.pan[None], transform),
                                     ("ms", pair.ms, transform @ Affine.scale(4)))}
    got = evaluation.full_resolution_of(paths["fused"], [paths["ms"]], paths["pan"], "landsat-8", list(BANDS))
    expected = full_resolution(fused.astype(np.float32), pair.ms.astype(np.float32), None,
                               pair.pan.astype(np.float32), landsat_subset(), 4)
    assert got == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="multiple of the ratio 4"):
        evaluation.full_resolution_of(paths["fused"], [paths["ms"]], paths["pan"], "landsat-8", list(BANDS),
                                      Window(0, 0, 64, 62))


def test_translation_quality_and_range(data_dir, tmp_path) -> None:
    """Reference: B4, B3, B2 of the Sen1Floods11 S2 chip; prediction: the same bands 3 pixels to the right (a
    stand-in for a model's output)."""
    with rasterio.open(data_dir / "sen1floods11" / "Spain_7370579_S2Hand.tif") as src:
        values = src.read([4, 3, 2]).astype(np.float64)
        transform, crs = src.transform, src.crs
    reference = write_raster(tmp_path / "ref.tif", values[:, :64, :64], transform, crs, "int16")
    predicted = write_raster(tmp_path / "pred.tif", values[:, :64, 3:67], transform, crs, "int16")
    data_range, stated = evaluation.translation_range(None, "sentinel-2")
    assert data_range == 10000 and "sentinel-2" in stated
    quality, bands = evaluation.translation_quality(reference, predicted, data_range)
    expected = image_quality(values[:, :64, 3:67], values[:, :64, :64], 10000)
    for name in ("RMSE", "PSNR", "SSIM", "CC"):
        np.testing.assert_allclose(quality[name], expected[name], rtol=1e-12)
        assert quality[f"{name}_mean"] == pytest.approx(expected[f"{name}_mean"], rel=1e-12)
    assert bands == ("band 1", "band 2", "band 3")
    assert evaluation.translation_range(1.0, None) == (1.0, "1 (given)")
    for given in ((None, None), (1.0, "sentinel-2")):
        with pytest.raises(ValueError, match="exactly one of the two"):
            evaluation.translation_range(*given)
    with pytest.raises(ValueError, match="no DN scale"):
        evaluation.translation_range(None, "sentinel-1")
    two = write_raster(tmp_path / "two.tif", values[:2, :64, :64], transform, crs, "int16")
    with pytest.raises(ValueError, match=r"has 2 band\(s\), the reference .* 3"):
        evaluation.translation_quality(reference, two, 10000)


def test_sensor_subsets_keep_the_gains() -> None:
    spec = evaluation.sensor_bands(sensor("wv3"), ["red", "green", "blue"], [None] * 3)
    assert [b.gnyq for b in spec.bands] == [0.365, 0.360, 0.355]
    assert dataclasses.replace(spec).pan.gnyq == 0.14
