"""run_scene with a coarser output grid (`output_scale=1/f`): block statistics against numpy, the coarse grid's
georeference, windows on multiples of f, cells past the scene's edge, and the errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
import torch
from tests.scene.scene_data import LANDSAT, crop, gdalinfo

from rsinfer.scene import InputSpec, TileFunction, Tiles, run_scene
from rsinfer.tiling import plan_windows


class MaskedBlockMean(TileFunction):
    """Per f × f cell, the mean of sqrt(DN) over the cell's valid pixels (masked by the input's own mask); records
    every call's windows, masks and validity."""

    def __init__(self, factor: int, name: str = "red") -> None:
        self.factor, self.name, self.calls = factor, name, []

    def __call__(self, tiles: Tiles) -> torch.Tensor:
        f = self.factor
        values, mask = tiles.inputs[self.name][:, :1].double(), tiles.masks[self.name]  # (B, 1, H, W), (B, H, W)
        self.calls.append((tiles.windows, mask.clone(), tiles.valid.clone(), tiles.shape, tuple(values.shape)))
        b, _, height, width = values.shape
        weight = mask[:, None].double()
        cells = lambda x: x.reshape(b, 1, height // f, f, width // f, f).sum(dim=(3, 5))  # noqa: E731
        total, count = cells(values.sqrt() * weight), cells(weight)
        return (total / count.clamp_min(1)).float()  # (B, 1, H/f, W/f); cells without a valid pixel are masked


def _block_mean_reference(dn: np.ndarray, valid: np.ndarray, factor: int) -> np.ndarray:
    """numpy: pad to whole cells with NaN, nanmean of sqrt(DN) per cell (NaN where a cell has no valid pixel)."""
    height, width = dn.shape
    rows, cols = -(-height // factor) * factor, -(-width // factor) * factor
    padded = np.full((rows, cols), np.nan)
    padded[:height, :width] = np.where(valid, np.sqrt(dn.astype(np.float64)), np.nan)
    blocks = padded.reshape(rows // factor, factor, cols // factor, factor)
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning, match="Mean of empty slice"):
        return np.nanmean(blocks, axis=(1, 3))


@pytest.fixture
def red_with_holes(tmp_path):
    """A 301 × 277 crop of the Landsat 8 red band (sizes not multiples of f) with nodata 0: a hole wider than a cell
    and scattered nodata pixels."""
    path = crop(LANDSAT["B4"], tmp_path / "red.tif", 700, 900, 301, 277, nodata=0)
    with rasterio.open(path, "r+") as ds:
        data = ds.read(1)
        data[40:100, 60:130] = 0
        data[np.random.default_rng(3).random(data.shape) < 0.02] = 0
        ds.write(data[None])
    return path, data


@pytest.mark.parametrize("factor,tile,overlap,blend", [(7, 28, 0, "constant"), (7, 42, 14, "cosine"),
                                                       (4, 32, 8, "crop"), (5, None, 0, "constant")])
def test_masked_cell_mean_equals_the_numpy_block_mean(red_with_holes, tmp_path, factor, tile, overlap, blend):
    """Any tiling (overlapping windows blend identical cell values; the whole grid as one tile too) gives the numpy
    block mean of the valid pixels; cells without one are nodata."""
    path, dn = red_with_holes
    out = tmp_path / "mean.tif"
    fn = MaskedBlockMean(factor)
    summary = run_scene(fn, {"red": path}, out, tile=tile, overlap=overlap, blend=blend, batch_size=3,
                        output_scale=1 / factor, progress=False)
    expected = _block_mean_reference(dn, dn != 0, factor)
    with rasterio.open(out) as ds:
        values = ds.read(1, masked=True)
    assert values.shape == (math.ceil(301 / factor), math.ceil(277 / factor)) == summary.shape[1:]
    empty = np.isnan(expected)
    assert empty.sum() >= 2 and (values.mask == empty).all()  # cells inside the hole are nodata, the others not
    np.testing.assert_allclose(values.data[~empty], expected[~empty], rtol=2e-7)
    if tile is not None:
        windows = plan_windows(*values.shape, tile // factor, overlap // factor)
        assert summary.tiles_run + summary.tiles_skipped == len(windows) and summary.tiles_run > 0


def test_the_coarse_grid_is_the_input_grid_with_pixels_f_times_larger(red_with_holes, tmp_path):
    path, _ = red_with_holes
    out = tmp_path / "coarse.tif"
    run_scene(MaskedBlockMean(8), {"red": path}, out, tile=64, overlap=16, output_scale=1 / 8, progress=False)
    with rasterio.open(path) as src, rasterio.open(out) as dst:
        assert dst.crs == src.crs and dst.shape == (38, 35)  # ceil(301 / 8), ceil(277 / 8)
        a, b, c, d, e, f = src.transform[:6]
        assert dst.transform[:6] == (8 * a, b, c, d, 8 * e, f)  # same origin, exactly 8x the pixel
        # the centre of output pixel (i, j) is the centre of its 8 × 8 input cell
        for i, j in ((0, 0), (37, 34), (12, 5)):
            centre = src.transform * (8 * j + 4, 8 * i + 4)
            assert dst.transform * (j + 0.5, i + 0.5) == pytest.approx(centre, abs=1e-6)
    info = gdalinfo(out)
    assert info["size"] == [35, 38]


def test_windows_start_on_multiples_of_f_and_read_past_the_edge_as_nodata(red_with_holes, tmp_path):
    """Each window's footprint starts on a multiple of f; the last row and column of cells reach past the scene,
    where the masks are False; a cell is valid when any of its pixels is."""
    path, dn = red_with_holes
    fn = MaskedBlockMean(7)
    run_scene(fn, {"red": path}, tmp_path / "o.tif", tile=42, overlap=14, output_scale=1 / 7, batch_size=2,
              progress=False)
    seen = [(w, m, v) for windows, masks, valid, shape, read in fn.calls for w, m, v in zip(windows, masks, valid)]
    assert all(shape == (6, 6) and read[2:] == (42, 42) for _, _, _, shape, read in fn.calls)
    planned = plan_windows(43, 40, 6, 2)
    with_data = [w for w in planned if (dn[w.row * 7:w.row * 7 + 42, w.col * 7:w.col * 7 + 42] != 0).any()]
    assert len(with_data) < len(planned)  # a window inside the hole is skipped, not run
    assert [w for w, _, _ in seen] == with_data
    for window, mask, valid in seen:
        rows = slice(window.row * 7, window.row * 7 + 42)
        cols = slice(window.col * 7, window.col * 7 + 42)
        inside = np.zeros((42, 42), dtype=bool)
        part = (dn[rows, cols] != 0)
        inside[:part.shape[0], :part.shape[1]] = part  # past row 301 / col 277: invalid
        np.testing.assert_array_equal(mask.numpy(), inside)
        np.testing.assert_array_equal(valid.numpy(), inside.reshape(6, 7, 6, 7).any(axis=(1, 3)))
    last = [m for w, m, _ in seen if w.bottom == 43 and w.right == 40]
    assert len(last) == 1 and not last[0][301 - 37 * 7:].any() and not last[0][:, 277 - 34 * 7:].any()


def test_an_input_at_another_scale_is_read_over_the_coarse_footprint(red_with_holes, tmp_path):
    """A second input read at half the grid input's resolution arrives at tile/2 pixels per window side."""
    path, dn = red_with_holes
    fn = MaskedBlockMean(4)
    fn.input_specs = {"half": InputSpec(scale=0.5)}
    run_scene(fn, {"red": path, "half": path}, tmp_path / "o.tif", tile=32, overlap=0, output_scale=1 / 4,
              progress=False)
    assert {read for *_, read in fn.calls} == {(len(w), 1, 32, 32) for w, *_ in fn.calls}
    assert all(m.shape[1:] == (32, 32) for _, m, *_ in fn.calls)


def test_a_tile_larger_than_the_scene_shrinks_to_whole_cells(red_with_holes, tmp_path):
    path, dn = red_with_holes
    fn = MaskedBlockMean(16)
    summary = run_scene(fn, {"red": path}, tmp_path / "o.tif", tile=4096, overlap=0, output_scale=1 / 16,
                        progress=False)
    assert summary.tiles_run == 1 and fn.calls[0][3] == (19, 19)  # 301 rounded up to 304 = 19 cells of 16


@pytest.mark.parametrize("kwargs,message", [
    ({"output_scale": 0.3}, r"output_scale must be 1/f for an integer f >= 1, got 0.3"),
    ({"output_scale": 2.0}, r"output_scale must be 1/f .* got 2.0"),
    ({"output_scale": 1 / 8, "tile": 60, "overlap": 8}, r"tile 60 and overlap 8 must be multiples of 8"),
    ({"output_scale": 1 / 8, "tile": 64, "overlap": 12}, r"tile 64 and overlap 12 must be multiples of 8"),
])
def test_bad_output_scales_and_tilings_are_refused(red_with_holes, tmp_path, kwargs, message):
    path, _ = red_with_holes
    kwargs = {"tile": 64, "overlap": 8, **kwargs}
    with pytest.raises(ValueError, match=message):
        run_scene(MaskedBlockMean(8), {"red": path}, tmp_path / "o.tif", progress=False, **kwargs)
    assert not (tmp_path / "o.tif").exists()
