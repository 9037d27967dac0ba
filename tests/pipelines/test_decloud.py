"""The ``decloud`` pipeline on real scenes (`rsinfer.pipelines.decloud`): grids, bands, resampling, provenance."""

from __future__ import annotations

import concurrent.futures
import multiprocessing

import numpy as np
import pytest
import rasterio
import torch
from rasterio.warp import Resampling, calculate_default_transform, reproject
from rasterio.windows import Window as RioWindow

from rsinfer.io import RasterInfo
from rsinfer.models.dbcr import build
from rsinfer.pipelines import PipelineSpec, Tiling, run
from rsinfer.pipelines import build as build_pipeline
from rsinfer.scene import Tiles
from rsinfer.tiling import Window, plan_windows
from rsinfer.pipelines.dbcr import DbCr, SamplingPlan
from rsinfer.pipelines.decloud import Decloud
from rsinfer.pipelines.sentinel import L1C_BANDS

MICRO = dict(widths=(4, 8, 16, 32), encoder_blocks=(1, 1, 1, 1), decoder_blocks=(1, 1, 1, 1), time_dim=8,
             time_pe_dim=8)
S2_NAME, S1_NAME = "Spain_7370579_S2Hand.tif", "Spain_7370579_S1Hand.tif"


# --- whole scenes ------------------------------------------------------------------------------------------------

def identity_network() -> torch.nn.Module:
    """A network whose head is zero, so x̂0 = x_t (the global residual): the scene output must equal the input DN."""
    net = build(**MICRO).eval()
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
    return net


def _expected_dn(s2_path, valid_extra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    with rasterio.open(s2_path) as src:
        dn = src.read().astype(np.float64)
        valid = (dn != src.nodata).all(axis=0)
    if valid_extra is not None:
        valid &= valid_extra
    return np.clip(dn, 0, 10000), valid


def _decloud(net: torch.nn.Module, steps: int = 2, **plan) -> Decloud:
    return Decloud.around(DbCr(net, SamplingPlan("alpha-ratio", steps, **plan), tile=128, batch_size=2))


def test_real_scene_writes_13_bands_on_the_s2_grid(data_dir, tmp_path) -> None:
    s2, s1 = data_dir / "sen1floods11" / S2_NAME, data_dir / "sen1floods11" / S1_NAME
    summary = run(_decloud(identity_network()), {"s2": s2, "s1": s1}, tmp_path / "clear.tif",
                  tiling=Tiling(256, 32, "cosine", 4), preview=tmp_path / "clear.png", progress=False)
    assert summary.tiles_run == 9
    with rasterio.open(s2) as src, rasterio.open(tmp_path / "clear.tif") as out:
        assert (out.count, out.crs, out.transform, out.shape) == (13, src.crs, src.transform, src.shape)
        assert out.dtypes == src.dtypes and out.nodata == src.nodata
        assert out.descriptions == L1C_BANDS
        tags = out.tags()
        written = out.read().astype(np.float64)
    assert tags["RSINFER_S1_SCALE"] == "dB" and tags["RSINFER_S2_LEVEL"] == "L1C"
    expected, valid = _expected_dn(s2)
    assert valid.mean() > 0.5
    np.testing.assert_array_equal(written[:, valid], expected[:, valid])
    assert (tmp_path / "clear.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bands_are_found_by_name_in_any_order(data_dir, tmp_path) -> None:
    """An L2A-style file with its 12 bands shuffled and described: read by name, written back in the file's order."""
    s2, s1 = data_dir / "sen1floods11" / S2_NAME, data_dir / "sen1floods11" / S1_NAME
    order = [12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13]  # 1-based bands of the L1C file, B10 (11) dropped, B12 first
    shuffled = tmp_path / "s2_l2a.tif"
    with rasterio.open(s2) as src:
        window = RioWindow(0, 0, 96, 80)
        with rasterio.open(shuffled, "w", **{**src.profile, "count": 12, "width": 96, "height": 80,
                                             "transform": src.window_transform(window)}) as dst:
            dst.write(src.read(order, window=window))
            dst.descriptions = tuple(src.descriptions[i - 1] for i in order)
    run(_decloud(identity_network()), {"s2": shuffled, "s1": s1}, tmp_path / "out.tif",
        tiling=Tiling(64, 16, "cosine", 2), progress=False)
    with rasterio.open(shuffled) as src, rasterio.open(tmp_path / "out.tif") as out:
        assert out.descriptions == src.descriptions and out.tags()["RSINFER_S2_LEVEL"] == "L2A"
        written, given = out.read().astype(np.float64), np.clip(src.read().astype(np.float64), 0, 10000)
    valid = (given != 0).all(axis=0)
    np.testing.assert_array_equal(written[:, valid], given[:, valid])


def test_s1_on_another_crs_is_resampled_onto_the_s2_grid(data_dir, tmp_path) -> None:
    s2, s1 = data_dir / "sen1floods11" / S2_NAME, data_dir / "sen1floods11" / S1_NAME
    window = RioWindow(100, 150, 96, 80)
    small_s2, utm_s1 = tmp_path / "s2.tif", tmp_path / "s1_utm.tif"
    with rasterio.open(s2) as src:
        profile = {**src.profile, "width": 96, "height": 80, "transform": src.window_transform(window)}
        with rasterio.open(small_s2, "w", **profile) as dst:
            dst.write(src.read(window=window))
            dst.descriptions = src.descriptions
    with rasterio.open(s1) as src:
        transform, width, height = calculate_default_transform(src.crs, "EPSG:32630", src.width, src.height,
                                                               *src.bounds)
        with rasterio.open(utm_s1, "w", **{**src.profile, "crs": "EPSG:32630", "transform": transform,
                                           "width": width, "height": height}) as dst:
            for band in (1, 2):
                reproject(rasterio.band(src, band), rasterio.band(dst, band), resampling=Resampling.bilinear)
            dst.descriptions = src.descriptions
    run(_decloud(identity_network()), {"s2": small_s2, "s1": utm_s1}, tmp_path / "out.tif",
        tiling=Tiling(128, 32, "cosine", 2), progress=False)
    with rasterio.open(small_s2) as src, rasterio.open(tmp_path / "out.tif") as out:
        assert (out.crs, out.transform, out.shape, out.count) == (src.crs, src.transform, src.shape, 13)
        written = out.read().astype(np.float64)
    expected, valid = _expected_dn(small_s2)
    covered = written[0] != 0  # S1 covers the whole crop except possibly a rim left as nodata
    assert covered[valid].mean() > 0.95
    np.testing.assert_array_equal(written[:, valid & covered], expected[:, valid & covered])


def test_wrong_bands_are_refused_with_the_expected_and_found_lists(data_dir, tmp_path) -> None:
    s2, s1 = data_dir / "sen1floods11" / S2_NAME, data_dir / "sen1floods11" / S1_NAME
    four = tmp_path / "s2_four.tif"
    with rasterio.open(s2) as src:
        with rasterio.open(four, "w", **{**src.profile, "count": 4}) as dst:
            dst.write(src.read([2, 3, 4, 8]))
            dst.descriptions = ("B2", "B3", "B4", "B8")
    pipe = _decloud(identity_network())
    with pytest.raises(ValueError, match=r"input 's2'.*not the bands of a layout.*Sentinel-2 L1C: 13 bands"):
        run(pipe, {"s2": four, "s1": s1}, tmp_path / "o.tif", progress=False)
    with pytest.raises(ValueError, match=r"needs input\(s\) \['s1'\]"):
        run(pipe, {"s2": s2}, tmp_path / "o.tif", progress=False)
    assert not (tmp_path / "o.tif").exists()


# --- window-seeded randomness: tile order and worker processes ----------------------------------------------------

SPEC = PipelineSpec("decloud", "random:5", {"sampler": "i2sb", "steps": 2, "seed": 7, "s1_scale": "dB",
                                              "network": MICRO})
RASTERS = {"s2": RasterInfo("s2.tif", 13, L1C_BANDS, ("int16",) * 13, 0.0, (100, 130)),
           "s1": RasterInfo("s1.tif", 2, ("VV", "VH"), ("float32",) * 2, None, (100, 130))}
TILING = Tiling(64, 16, "cosine", 4)


def _tiles(windows: list[Window]) -> Tiles:
    """Tiles of made-up DN at `windows` (their content depends only on the window, like real reads)."""
    def content(window: Window, channels: int, scale: float, offset: float) -> torch.Tensor:
        generator = torch.Generator().manual_seed(window.row * 1000 + window.col)
        return offset + scale * torch.rand(channels, 64, 64, generator=generator)

    s2 = torch.stack([content(w, 13, 4000.0, 500.0) for w in windows])
    s1 = torch.stack([content(w, 2, 20.0, -25.0) for w in windows])
    ones = torch.ones(len(windows), 64, 64, dtype=torch.bool)
    return Tiles({"s2": s2, "s1": s1}, {"s2": ones, "s1": ones}, ones, tuple(windows), (64, 64))


def _restore(windows: list[Window], order: list[int]) -> list[torch.Tensor]:
    """The decloud tile function over `windows` taken one by one in `order`, in a pipeline built from SPEC."""
    torch.set_num_threads(2)
    plan = build_pipeline(SPEC).plan(RASTERS, TILING)
    outputs = {i: plan.tile_fn(_tiles([windows[i]]))[0] for i in order}
    return [outputs[i] for i in range(len(windows))]


def test_stochastic_tiles_do_not_depend_on_order_or_workers() -> None:
    """Bit-identical tiles whether the scene's windows run batched, one by one in reverse order, or split between two
    spawned worker processes that each rebuild the pipeline from its picklable spec."""
    torch.set_num_threads(2)  # the conftest fixture restores the test's single thread
    windows = plan_windows(100, 130, TILING.tile, TILING.overlap)
    batched = list(build_pipeline(SPEC).plan(RASTERS, TILING).tile_fn(_tiles(windows)))
    reversed_order = _restore(windows, list(range(len(windows)))[::-1])
    halves = [windows[: len(windows) // 2], windows[len(windows) // 2:]]
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        from_workers = [t for part in pool.map(_restore, halves, [list(range(len(h))) for h in halves]) for t in part]
    for tile, again, worker in zip(batched, reversed_order, from_workers):
        assert torch.equal(tile, again) and torch.equal(tile, worker)
