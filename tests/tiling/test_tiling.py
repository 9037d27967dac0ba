"""rsinfer.tiling: windows cover the grid and stay in bounds, weights normalise, merging is tile-invariant."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from rsinfer.tiling import (BlockMerger, TensorMerger, Window, blend_tiles, blend_weights, plan_windows,
                            tile_weights)

MODES = ("cosine", "gaussian", "constant", "crop")


@st.composite
def grids(draw):
    overlap = draw(st.integers(0, 12))
    tile = draw(st.integers(max(8, 2 * overlap + 1), 2 * overlap + 40))  # ≥ 8: at most a few hundred windows
    return draw(st.integers(1, 150)), draw(st.integers(1, 150)), tile, overlap


@settings(max_examples=60, deadline=None)
@given(grids())
def test_windows_cover_the_grid_exactly_and_stay_in_bounds(grid):
    height, width, tile, overlap = grid
    windows = plan_windows(height, width, tile, overlap)
    count = torch.zeros(height, width, dtype=torch.int32)
    for w in windows:
        assert 0 <= w.row and w.bottom <= height and 0 <= w.col and w.right <= width
        assert (w.height, w.width) == (min(tile, height), min(tile, width))
        count[w.slices()] += 1
    assert (count >= 1).all()
    assert windows == sorted(windows, key=lambda w: (w.row, w.col))
    assert len(set(windows)) == len(windows)
    # neighbours overlap by at least `overlap` (border windows shifted inward overlap more)
    for axis in ("row", "col"):
        starts = sorted({getattr(w, axis) for w in windows})
        size = windows[0].height if axis == "row" else windows[0].width
        assert all(b - a <= size - overlap for a, b in zip(starts, starts[1:]))


def test_windows_match_a_hand_worked_plan():
    # 1000 px, tile 256, overlap 64: stride 192, starts 0 192 384 576 and the last shifted back to 744
    rows = sorted({w.row for w in plan_windows(1000, 300, 256, 64)})
    assert rows == [0, 192, 384, 576, 744]
    assert plan_windows(100, 90, 256, 32) == [Window(0, 0, 100, 90)]


@pytest.mark.parametrize("bad", [dict(tile=64, overlap=32), dict(tile=10, overlap=-1), dict(tile=0, overlap=0)])
def test_plan_rejects_bad_tiling(bad):
    with pytest.raises(ValueError, match="tile|overlap"):
        plan_windows(100, 100, **bad)


def test_window_is_an_integer_value_object():
    with pytest.raises(TypeError, match="int"):
        Window(0.5, 0, 1, 1)
    with pytest.raises(ValueError, match="positive"):
        Window(0, 0, 0, 3)
    assert Window(1, 2, 3, 4) == Window(1, 2, 3, 4) and hash(Window(1, 2, 3, 4)) == hash(Window(1, 2, 3, 4))


@settings(max_examples=25, deadline=None)
@given(grids(), st.sampled_from(MODES))
def test_blend_weights_normalise_to_one(grid, mode):
    """Σ wᵢ > 0 everywhere (every pixel is covered by a positive weight) and Σ wᵢ·1 / Σ wᵢ reproduces a constant."""
    height, width, tile, overlap = grid
    windows = plan_windows(height, width, tile, overlap)
    weights = [tile_weights(w, height, width, overlap, mode) for w in windows]
    assert all((wt >= 0).all() and wt.dtype == torch.float32 for wt in weights)
    ones = torch.ones(len(windows), 2, windows[0].height, windows[0].width)
    out = blend_tiles(ones * 3.5, windows, height, width, weights)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.full_like(out, 3.5), rtol=1e-6, atol=0)


@pytest.mark.parametrize("mode", MODES)
def test_blend_weights_are_positive_where_the_tile_contributes(mode):
    weight = blend_weights(37, 45, 10, mode)
    assert weight.shape == (37, 45)
    inside = weight[5:-5, 5:-5]
    assert (inside > 0).all()
    if mode == "crop":
        assert (weight[:5] == 0).all() and (weight[:, -5:] == 0).all()
    else:
        assert (weight > 0).all()


def test_cosine_weights_are_a_partition_of_unity_in_a_regular_overlap():
    w = blend_weights(1, 48, 16, "cosine", grid_edges=("top", "bottom"))[0]
    torch.testing.assert_close(w[32:] + w[:16], torch.ones(16), rtol=0, atol=1e-6)


def test_blend_rejects_unknown_mode():
    with pytest.raises(ValueError, match="cosine"):
        blend_weights(8, 8, 2, "hann")


@settings(max_examples=25, deadline=None)
@given(grids(), st.sampled_from(MODES))
def test_pointwise_function_is_tile_invariant(grid, mode):
    height, width, tile, overlap = grid
    scene = torch.randn(3, height, width)
    pointwise = lambda x: torch.tanh(1.7 * x) * x + 0.3  # noqa: E731
    windows = plan_windows(height, width, tile, overlap)
    tiles = torch.stack([pointwise(scene[(slice(None), *w.slices())]) for w in windows])
    weights = [tile_weights(w, height, width, overlap, mode) for w in windows]
    out = blend_tiles(tiles, windows, height, width, weights)
    ref = pointwise(scene)
    assert float((out - ref).abs().max()) <= 1e-6 * max(1.0, float(ref.abs().max()))


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_crop_blending_is_exact_for_a_convolution_within_the_overlap(radius):
    """A (2r+1)² zero-padded convolution with blend="crop" and overlap = 2r equals the whole-scene convolution."""
    height, width, overlap = 97, 83, 2 * radius
    tile = 4 * overlap + 7
    kernel = torch.randn(2, 3, 2 * radius + 1, 2 * radius + 1)
    conv = lambda x: F.conv2d(x[None], kernel, padding=radius)[0]  # noqa: E731
    scene = torch.randn(3, height, width)
    windows = plan_windows(height, width, tile, overlap)
    tiles = torch.stack([conv(scene[(slice(None), *w.slices())]) for w in windows])
    weights = [tile_weights(w, height, width, overlap, "crop") for w in windows]
    out = blend_tiles(tiles, windows, height, width, weights)
    ref = conv(scene)
    assert (out - ref).abs().max() <= 1e-6 * ref.abs().max()
    # and a plain average of the same tiles is not exact: the test can fail
    averaged = blend_tiles(tiles, windows, height, width, torch.ones(tile, tile))
    assert (averaged - ref).abs().max() > 1e-3


@settings(max_examples=25, deadline=None)
@given(grids(), st.sampled_from(MODES), st.sampled_from([8, 16, 32]), st.randoms(use_true_random=False))
def test_block_merger_matches_the_in_memory_merger_in_any_order(grid, mode, block, rng):
    """Every block comes back exactly once, equal to the whole-canvas blend, whatever the tile order; skipped tiles
    leave their pixels uncovered (NaN) unless another tile covers them."""
    height, width, tile, overlap = grid
    windows = plan_windows(height, width, tile, overlap)
    order = list(windows)
    if rng.random() < 0.5:
        rng.shuffle(order)
    skipped = {w for w in order if rng.random() < 0.2}
    tiles = {w: torch.randn(2, w.height, w.width) for w in order}
    whole = TensorMerger(2, height, width)
    streamed = BlockMerger(2, height, width, order, block=block)
    out = torch.full((2, height, width), -7.0)
    seen = torch.zeros(height, width, dtype=torch.int32)
    for window in order:
        if window in skipped:
            blocks = streamed.skip(window)
        else:
            weight = tile_weights(window, height, width, overlap, mode)
            whole.add(tiles[window], window, weight)
            blocks = streamed.add(tiles[window], window, weight)
        for b in blocks:
            assert b.window.row % block == 0 and b.window.col % block == 0  # aligned with the file's blocks
            out[(slice(None), *b.window.slices())] = b.values
            seen[b.window.slices()] += 1
    assert (seen == 1).all() and streamed.pending_cells == 0 and streamed.nbytes == 0
    torch.testing.assert_close(out, whole.result(), rtol=1e-6, atol=1e-6, equal_nan=True)


def test_block_merger_holds_about_one_row_of_cells_in_row_major_order():
    height, width, tile, overlap, block = 700, 3000, 100, 10, 50
    windows = plan_windows(height, width, tile, overlap)
    merger, peak = BlockMerger(1, height, width, windows, block=block), 0
    for w in windows:
        merger.add(torch.ones(1, tile, tile), w, torch.ones(tile, tile))
        peak = max(peak, merger.nbytes)
    assert peak <= 2 * block * block * 4 * (2 * width // block + 4)  # ≤ 2 rows of cells, not the scene


def test_block_merger_refuses_a_window_twice():
    window = Window(0, 0, 10, 10)
    merger = BlockMerger(1, 10, 10, [window], block=8)
    merger.add(torch.ones(1, 10, 10), window, torch.ones(10, 10))
    with pytest.raises(ValueError, match="already finished"):
        merger.skip(window)


def test_uncovered_pixels_are_empty():
    out = blend_tiles(torch.ones(1, 1, 4, 4), [Window(0, 0, 4, 4)], 6, 6, torch.ones(4, 4))
    assert torch.isnan(out[0, 4:, :]).all() and (out[0, :4, :4] == 1).all()
