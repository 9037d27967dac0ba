"""The held-out set and the metrics of train/evaluate_decloud.py against independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rsinfer.metrics import sam, ssim
from rsinfer.tiling import Window, plan_windows
from train.clouds import Clouds
from train.data import Chip
from train.evaluate_decloud import (TILINGS, HeldOut, auroc, average_ranks, heldout_set, quality, sam_map,
                                    seam_ratio, spearman, ssim_map, tiled_restore, tiles_of)


def _chip() -> Chip:
    g = torch.Generator().manual_seed(0)
    return Chip(0.05 + 0.4 * torch.rand(13, 512, 512, generator=g), torch.rand(2, 512, 512, generator=g))


def test_heldout_set_is_16_tiles_of_columns_384_to_511_under_4_fields() -> None:
    chip = _chip()
    data = heldout_set(chip)
    assert data.clear.shape == (64, 13, 64, 64) and data.sar.shape == (64, 2, 64, 64)
    tiles = tiles_of(Window(0, 384, 512, 128), 64)
    assert len(tiles) == 16 and data.windows == tuple(tiles) * 4
    assert all(w.col >= 384 and w.right <= 512 for w in tiles)
    covered = torch.zeros(512, 512, dtype=torch.int32)
    for w in tiles:
        covered[w.row:w.bottom, w.col:w.right] += 1
    assert torch.equal(covered[:, 384:], torch.ones(512, 128, dtype=torch.int32)) and covered[:, :384].sum() == 0
    for i, w in enumerate(data.windows):
        assert torch.equal(data.clear[i], chip.optical[:, w.row:w.bottom, w.col:w.right])
    again = heldout_set(chip)
    assert torch.equal(again.cloudy, data.cloudy)  # seeded cloud fields
    assert not torch.equal(data.clouds.ramp[:16], data.clouds.ramp[16:32])  # field seeds differ


def _data(clear: torch.Tensor, opacity: torch.Tensor) -> HeldOut:
    n, _, h, w = clear.shape
    clouds = Clouds(opacity, torch.ones(n), torch.full_like(clear, 0.6), torch.zeros(n, 1, h, w))
    return HeldOut(clear, torch.zeros(n, 2, h, w), clouds, tuple(Window(0, 0, h, w) for _ in range(n)))


def test_psnr_per_region_by_hand() -> None:
    clear = torch.full((2, 13, 20, 24), 0.3, dtype=torch.float64)
    opacity = torch.zeros(2, 1, 20, 24)
    opacity[:, :, :, :12] = 1.0  # left half cloud (and opaque), right half clear
    estimate = clear.clone()
    estimate[:, :, :, :12] += 0.1  # error 0.1 under the cloud
    estimate[:, :, :, 12:] += 0.01  # error 0.01 in the clear
    q = quality(estimate, _data(clear, opacity))
    assert q["psnr_cloud"] == pytest.approx(20.0, abs=1e-9) and q["psnr_opaque"] == pytest.approx(20.0, abs=1e-9)
    assert q["psnr_clear"] == pytest.approx(40.0, abs=1e-9)
    assert q["psnr"] == pytest.approx(-10 * math.log10((0.01 + 0.0001) / 2), abs=1e-9)
    assert q["cloud_fraction"] == 0.5 and q["opaque_fraction"] == 0.5


def test_ssim_and_sam_maps_average_to_the_toolbox_metrics() -> None:
    g = torch.Generator().manual_seed(3)
    reference = torch.rand(3, 13, 29, 35, generator=g)
    estimate = (reference + 0.1 * torch.randn(3, 13, 29, 35, generator=g)).clamp(0, 1)
    structure, angles = ssim_map(estimate, reference), sam_map(estimate, reference)
    assert structure.shape == (3, 19, 25) and angles.shape == (3, 29, 35)
    for i in range(3):
        x, y = estimate[i].double().numpy(), reference[i].double().numpy()
        assert float(structure[i].mean()) == pytest.approx(float(np.mean(ssim(x, y, 1.0))), rel=1e-10)
        assert float(angles[i].mean()) == pytest.approx(sam(x, y), rel=1e-10)
    q = quality(estimate, _data(reference, torch.zeros(3, 1, 29, 35)))
    assert q["ssim"] == pytest.approx(float(structure.mean(dim=(1, 2)).mean()), rel=1e-12)
    assert math.isnan(q["psnr_cloud"]) and q["psnr_clear"] == q["psnr"]  # no cloud pixel: the region is empty


def test_average_ranks_share_ties() -> None:
    ranks = average_ranks(torch.tensor([3.0, 1.0, 3.0, 2.0, 3.0]))
    assert ranks.tolist() == [3.0, 0.0, 3.0, 1.0, 3.0]


def test_spearman_and_auroc_against_brute_force() -> None:
    g = torch.Generator().manual_seed(5)
    a = torch.randn(300, generator=g)
    b = a + torch.randn(300, generator=g)
    b[::7] = 0.25  # ties
    ra = torch.tensor([sum(float(x) < float(y) for x in a) + 0.5 * (sum(float(x) == float(y) for x in a) - 1)
                       for y in a])
    rb = torch.tensor([sum(float(x) < float(y) for x in b) + 0.5 * (sum(float(x) == float(y) for x in b) - 1)
                       for y in b])
    assert spearman(a, b) == pytest.approx(float(torch.corrcoef(torch.stack([ra, rb]).double())[0, 1]), rel=1e-9)
    labels = b > b.median()
    pos, neg = a[labels], a[~labels]
    pairs = (pos[:, None] > neg[None, :]).double() + 0.5 * (pos[:, None] == neg[None, :]).double()
    assert auroc(a, labels) == pytest.approx(float(pairs.mean()), rel=1e-12)
    assert auroc(torch.arange(10.0), torch.arange(10) >= 5) == 1.0
    with pytest.raises(ValueError, match="both classes"):
        auroc(a, torch.ones(300, dtype=torch.bool))


def test_seam_ratio_is_one_without_grid_signature_and_large_with_block_offsets() -> None:
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(2, 512, 512, generator=g)  # every neighbour difference has the same distribution
    assert seam_ratio(noise) == pytest.approx(1.0, abs=0.05)
    image = torch.rand(2, 192, 128, generator=g)
    on = torch.cat([(image[:, :, 64] - image[:, :, 63]).abs().mean(0),
                    (image[:, [64, 128]] - image[:, [63, 127]]).abs().mean(0).flatten()]).mean()
    assert seam_ratio(image) == pytest.approx(float(on / _off_line_mean(image)), rel=1e-5)
    blocks = 0.1 * image + torch.rand(2, 3, 2, generator=g).repeat_interleave(64, 1).repeat_interleave(64, 2)
    assert seam_ratio(blocks) > 5  # a jump at every 64-px line


def _off_line_mean(image: torch.Tensor) -> torch.Tensor:
    cols = (image[:, :, 1:] - image[:, :, :-1]).abs().mean(0)
    rows = (image[:, 1:] - image[:, :-1]).abs().mean(0)
    keep_cols = [j for j in range(cols.shape[1]) if j != 63]
    keep_rows = [i for i in range(rows.shape[0]) if i not in (63, 127)]
    return torch.cat([cols[:, keep_cols].flatten(), rows[keep_rows].flatten()]).mean()


class _Pointwise:
    """A stand-in for `DbCr` whose restoration is per pixel: tiling must then reproduce the whole result exactly."""

    def __init__(self) -> None:
        self.windows: list[Window] = []

    def restore(self, cloudy: torch.Tensor, sar: torch.Tensor, windows) -> torch.Tensor:
        self.windows += list(windows)
        return 0.5 * cloudy + 0.1 * sar[:, :1]


@pytest.mark.parametrize("tiling", [t for t in TILINGS.values() if t is not None])
def test_tiled_restore_blends_tiles_back_exactly_for_a_pointwise_model(tiling) -> None:
    g = torch.Generator().manual_seed(1)
    cloudy, sar = torch.rand(13, 200, 128, generator=g), torch.rand(2, 200, 128, generator=g)
    area = Window(100, 384, 200, 128)
    model = _Pointwise()
    whole = tiled_restore(model, cloudy, sar, area, None)
    assert model.windows == [area]
    model.windows.clear()
    tiled = tiled_restore(model, cloudy, sar, area, tiling)
    assert torch.allclose(tiled, whole, atol=1e-6)
    assert all(w.col >= 384 and w.row >= 100 and w.bottom <= 300 and w.right <= 512 for w in model.windows)
    assert len(model.windows) == len(plan_windows(200, 128, tiling[0], tiling[1]))
