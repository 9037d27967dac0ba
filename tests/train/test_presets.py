"""The named DB-CR presets of the demo weights and the SAR-free ablation (`rsinfer.models.dbcr.PRESETS`)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from rsinfer import models
from rsinfer.models.dbcr import PRESETS, DbCrConfig, build
from tests.numerics import relative_error


def _parameters(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _naf_block(c: int, time_dim: int) -> int:
    """Parameters of one TimeNAFBlock at width c (dw and FFN expansion 2): modulation, 1×1 expand, 3×3 depthwise,
    SCA, project, FFN expand and project, β and γ."""
    return (time_dim * 4 * c + 4 * c) + (c * 2 * c + 2 * c) + (2 * c * 9 + 2 * c) + (c * c + c) + (c * c + c) \
        + (c * 2 * c + 2 * c) + (c * c + c) + 2


def _fusion(c: int, heads: int) -> int:
    """SFBlock: two GroupNorms, query, key/value, temperatures, project, MLP norm and the 2× MLP."""
    return 2 * 2 * c + (c * c + c) + (c * 2 * c + 2 * c) + heads + (c * c + c) + 2 * c + (c * 2 * c + 2 * c) \
        + (2 * c * c + c)


def _expected_count(sar: bool) -> int:
    widths, heads, time_dim, pe = (16, 32, 64, 128), (1, 1, 2, 4), 32, 64
    count = (pe * 2 * time_dim + 2 * time_dim) + (time_dim * 2 * time_dim + 2 * time_dim)  # time MLP
    count += 13 * 16 + 16 + (2 * 16 + 16 if sar else 0)  # 1×1 stems
    for level, c in enumerate(widths):
        branches = 2 if sar else 1
        count += branches * _naf_block(c, time_dim) + _naf_block(c, time_dim)  # encoder block(s) + decoder block
        count += _fusion(c, heads[level]) if sar else 0
        if level < 3:
            count += branches * (c * 2 * c * 4 + 2 * c)  # 2×2 strided downsamplers
            count += 2 * c * 4 * c  # decoder upsampler into level c: 1×1 conv 2c → 4c (no bias), pixel shuffle
    count += 16 * 13 * 9 + 13  # 3×3 head
    return count


@pytest.mark.parametrize("preset, sar", [("dbcr-demo", True), ("dbcr-demo-sar-free", False)])
def test_presets_build_the_documented_networks(preset: str, sar: bool) -> None:
    net = models.build("dbcr", preset=preset)
    assert net.config == DbCrConfig(**{k: v for k, v in PRESETS[preset].items()})
    assert net.config.widths == (16, 32, 64, 128) and net.config.encoder_blocks == (1, 1, 1, 1)
    assert _parameters(net) == _expected_count(sar) == {True: 886_573, False: 475_597}[sar]
    keys = net.state_dict().keys()
    assert any(k.startswith("sar_stem") for k in keys) == sar
    assert any(".fusion." in k or ".sar_blocks." in k or ".sar_down." in k for k in keys) == sar


def test_default_build_is_unchanged_by_presets() -> None:
    assert build(widths=(8, 16, 32, 64), encoder_blocks=(1, 1, 1, 2)).config.sar_branch == "fused"
    assert DbCrConfig().sar_branch == "fused"


def test_overrides_apply_on_top_of_a_preset() -> None:
    net = build(preset="dbcr-demo", time_dim=16, head="conv1x1")
    assert net.config.widths == (16, 32, 64, 128) and net.config.time_dim == 16 and net.head.kernel_size == (1, 1)


@pytest.mark.parametrize("bad, match", [(dict(preset="dbcr-huge"), "unknown dbcr preset 'dbcr-huge'.*dbcr-demo"),
                                        (dict(sar_branch="late"), "sar_branch 'late' is not one of")])
def test_bad_preset_or_branch_names_the_value_and_the_choices(bad: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build(**bad)


def test_sar_free_network_ignores_sar_but_checks_its_shape() -> None:
    net = build(preset="dbcr-demo-sar-free").eval()
    x, t = torch.rand(2, 13, 21, 30), torch.tensor([1000.0, 400.0])
    with torch.no_grad():
        a = net(x, torch.rand(2, 2, 21, 30), t)
        b = net(x, torch.rand(2, 2, 21, 30), t)
    assert a.shape == x.shape and relative_error(a, b) == 0
    with pytest.raises(ValueError, match="sar"):
        net(x, torch.rand(2, 2, 20, 30), t)


def test_sar_free_network_equals_the_fused_one_without_its_sar_path() -> None:
    """The ablation computes exactly the optical path of the fused network with every fusion removed: copy the shared
    weights and replace each SFBlock by the identity."""
    fused, free = build(preset="dbcr-demo").eval(), build(preset="dbcr-demo-sar-free").eval()
    free.load_state_dict({k: v for k, v in fused.state_dict().items() if k in free.state_dict()}, strict=True)
    for level in fused.encoder:
        level.fusion.forward = lambda optical, sar: optical
    x, s, t = torch.rand(1, 13, 24, 16), torch.rand(1, 2, 24, 16), torch.tensor([700.0])
    with torch.no_grad():
        assert relative_error(free(x, s, t), fused(x, s, t)) <= 1e-6


@pytest.mark.parametrize("preset", ["dbcr-demo", "dbcr-demo-sar-free"])
def test_load_with_a_preset_is_strict(tmp_path, preset: str) -> None:
    net = build(preset=preset)
    path = tmp_path / "w.safetensors"
    save_file({k: v.half().contiguous() for k, v in net.state_dict().items()}, str(path))
    loaded = models.load("dbcr", path, preset=preset)
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value.half().float())
    other = "dbcr-demo-sar-free" if preset == "dbcr-demo" else "dbcr-demo"
    with pytest.raises(ValueError, match="missing keys" if other == "dbcr-demo" else "unexpected keys"):
        models.load("dbcr", path, preset=other)
