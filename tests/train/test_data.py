"""The training data: the chip in the pipeline's units, crops that never read the hold-out, symmetries, gains."""

from __future__ import annotations

import pytest
import rasterio
import torch

from rsinfer.tiling import Window
from train.data import SEN1FLOODS11_HOLDOUT, CropSampler, load_chip, random_gains


def test_the_chip_is_normalised_as_the_decloud_pipeline_does(data_dir) -> None:
    chip = load_chip(data_dir)
    with rasterio.open(data_dir / "sen1floods11/Spain_7370579_S2Hand.tif") as f:
        dn = torch.from_numpy(f.read().astype("float64"))
    with rasterio.open(data_dir / "sen1floods11/Spain_7370579_S1Hand.tif") as f:
        db = torch.from_numpy(f.read().astype("float64"))
    assert chip.optical.shape == (13, 512, 512) and chip.sar.shape == (2, 512, 512)
    assert torch.allclose(chip.optical.double(), dn.clamp(0, 10000) / 10000, atol=1e-7)
    vv, vh = (db[0].clamp(-25, 0) + 25) / 25, (db[1].clamp(-32.5, 0) + 32.5) / 32.5
    assert torch.allclose(chip.sar.double(), torch.stack([vv, vh]), atol=1e-6)


def _coordinates(height: int = 40, width: int = 56) -> torch.Tensor:
    """(2, H, W): each pixel's row and column, so a crop tells where it was cut."""
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return torch.stack([rows, cols]).float()


@pytest.mark.parametrize("holdout", [Window(0, 40, 40, 16), Window(10, 20, 12, 9)])
def test_crops_never_touch_the_holdout_and_share_one_symmetry(holdout: Window) -> None:
    image = _coordinates()
    shifted = image + 1000  # a second image on the same grid
    sampler = CropSampler([image, shifted], 8, holdout, torch.Generator().manual_seed(0))
    seen = set()
    for _ in range(40):
        crops, others = sampler.sample(16)
        assert torch.equal(others, crops + 1000)  # the same places and the same symmetry for every image
        for crop in crops:
            rows, cols = crop[0].long(), crop[1].long()
            top, left = int(rows.min()), int(cols.min())
            assert int(rows.max()) - top == 7 and int(cols.max()) - left == 7  # one contiguous 8 × 8 window
            window = Window(top, left, 8, 8)
            assert not (window.row < holdout.bottom and holdout.row < window.bottom
                        and window.col < holdout.right and holdout.col < window.right)
            # the crop is the window under one of the 8 symmetries of the square
            original = image[:, top:top + 8, left:left + 8]
            variants = [torch.rot90(original, k, (1, 2)).flip(2) if f else torch.rot90(original, k, (1, 2))
                        for k in range(4) for f in (0, 1)]
            matches = [i for i, v in enumerate(variants) if torch.equal(v, crop)]
            assert len(matches) == 1
            seen.add(matches[0])
    assert seen == set(range(8))


def test_the_sen1floods11_holdout_is_columns_384_to_511() -> None:
    assert SEN1FLOODS11_HOLDOUT == Window(0, 384, 512, 128)
    sampler = CropSampler([_coordinates(512, 512)], 64, SEN1FLOODS11_HOLDOUT, torch.Generator().manual_seed(1))
    assert int(sampler.corners[:, 1].max()) == 384 - 64 and len(sampler.corners) == 449 * 321


def test_crop_sampler_errors_name_the_problem() -> None:
    image = _coordinates()
    with pytest.raises(ValueError, match="crop size 41"):
        CropSampler([image], 41, Window(0, 0, 1, 1), torch.Generator())
    with pytest.raises(ValueError, match="avoids the hold-out"):
        CropSampler([image], 30, Window(15, 20, 10, 10), torch.Generator())
    with pytest.raises(ValueError, match="one grid"):
        CropSampler([image, image[:, :20]], 8, Window(0, 0, 1, 1), torch.Generator())


def test_gains_scale_each_sample_within_bounds_and_clip() -> None:
    x = torch.full((64, 3, 4, 4), 0.5)
    gained = random_gains(x, (0.9, 1.1), torch.Generator().manual_seed(0))
    factors = gained[:, 0, 0, 0] / 0.5
    assert torch.all((factors >= 0.9) & (factors <= 1.1)) and factors.std() > 0.03
    assert torch.equal(gained, gained[:, :1, :1, :1].expand_as(gained))  # one factor per sample
    assert float(random_gains(torch.full((8, 1, 2, 2), 0.95), (1.1, 1.1), torch.Generator()).max()) == 1.0
