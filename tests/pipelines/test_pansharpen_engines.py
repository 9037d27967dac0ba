"""CrossDiff's three networks behind `rsinfer.engines` (`ServedCrossDiff`): each engine against `CrossDiff` run
eagerly on the same networks, noise and tensors, on tiles that are not the size the engines were prepared for."""

from __future__ import annotations

import pytest
import torch

from rsinfer import models
from rsinfer.pipelines.crossdiff import CrossDiff
from rsinfer.pipelines.pansharpen import ServedCrossDiff
from tests.numerics import relative_error

WIDTHS = [8, 32, 32, 64]  # the smallest the official GroupNorms allow
BANDS = 4


@pytest.fixture(scope="module")
def networks():
    torch.manual_seed(3)
    p2m = models.build("crossdiff-unet", direction="p2m", spectrun_num=BANDS, channels=WIDTHS).eval()
    m2p = models.build("crossdiff-unet", direction="m2p", spectrun_num=BANDS, channels=WIDTHS).eval()
    fusion = models.build("crossdiff-fusion", spectral_num=BANDS, channel_multiplier=WIDTHS, inner_channel=16).eval()
    with torch.no_grad():  # the head's last conv starts at zero upstream: give every weight a visible value
        for p in (*p2m.parameters(), *m2p.parameters(), *fusion.parameters()):
            p.normal_(0, 0.05)
    return p2m, m2p, fusion


@pytest.mark.parametrize("engine", ["onnxruntime", "compile"])
def test_engines_match_eager_crossdiff(networks, engine, tmp_path) -> None:
    torch.manual_seed(4)
    pan, ms = 2047 * torch.rand(2, 1, 72, 88), 2047 * torch.rand(2, BANDS, 18, 22)  # 72 × 88: not the 64² prepared
    expected = CrossDiff(*networks, 2047.0, 0).sharpen(pan, ms)
    served = ServedCrossDiff(*networks, 2047.0, 0, engine=engine, tile=64, batch_size=2, cache_dir=str(tmp_path))
    got = served.sharpen(pan, ms)
    assert got.sr_raw.shape == (2, BANDS, 72, 88)
    assert relative_error(got.sr_raw, expected.sr_raw) <= 1e-5
    assert (got.sr_raw - expected.ms_up).abs().max() > 1e-3  # the head's residual is there, not only MS_0
