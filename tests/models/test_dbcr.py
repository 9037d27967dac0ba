"""The DB-CR network: parameter count, blocks against independent formulas, any H × W, config options, key layout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rsinfer import models, ops
from rsinfer.models.dbcr import DbCrConfig, build
from rsinfer.models.nafnet import SarFusionBlock, TimeNAFBlock
from tests.numerics import relative_error

TINY = dict(widths=(8, 16, 32, 64), encoder_blocks=(1, 1, 1, 2), decoder_blocks=(1, 1, 1, 1), time_dim=16,
            time_pe_dim=16)


def inputs(batch: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.rand(batch, 13, height, width), torch.rand(batch, 2, height, width), torch.rand(batch) * 1000


def test_default_config_matches_the_papers_parameter_count() -> None:
    net = models.build("dbcr")
    count = sum(p.numel() for p in net.parameters())
    assert count == 18_050_237
    assert abs(count - 18.06e6) / 18.06e6 < 1e-3
    backbone = sum(p.numel() for n, p in net.named_parameters() if "modulation" not in n and "time_embedding" not in n)
    assert backbone == 13_437_269
    assert net.config == DbCrConfig()
    assert len(net.encoder[3].optical_blocks) == len(net.encoder[3].sar_blocks) == 28
    assert [lvl.fusion.heads for lvl in net.encoder] == [1, 1, 2, 4]


def test_time_naf_block_matches_its_formula() -> None:
    block = TimeNAFBlock(6, time_dim=10)
    x, emb = torch.randn(2, 6, 9, 7), torch.randn(2, 10)
    scale1, shift1, scale2, shift2 = (emb @ block.modulation.weight.T + block.modulation.bias).chunk(4, dim=-1)

    def modulate(v, shift, scale):
        return F.group_norm(v, 1, eps=1e-6) * (1 + scale[:, :, None, None]) + shift[:, :, None, None]

    h = F.conv2d(modulate(x, shift1, scale1), block.expand.weight, block.expand.bias)
    h = F.conv2d(h, block.depthwise.weight, block.depthwise.bias, padding=1, groups=12)
    h = h[:, :6] * h[:, 6:]
    h = h * F.conv2d(h.mean((2, 3), keepdim=True), block.channel_attention.weight, block.channel_attention.bias)
    y = x + block.beta * F.conv2d(h, block.project.weight, block.project.bias)
    h = F.conv2d(modulate(y, shift2, scale2), block.ffn_expand.weight, block.ffn_expand.bias)
    expected = y + block.gamma * F.conv2d(h[:, :6] * h[:, 6:], block.ffn_project.weight, block.ffn_project.bias)
    with ops.use_backend("reference"):
        assert relative_error(block(x, emb), expected) <= 1e-6


def test_sar_fusion_is_channel_attention_from_optical_queries_to_sar_keys() -> None:
    block = SarFusionBlock(8, heads=2)
    with torch.no_grad():
        block.temperature.copy_(torch.tensor([0.7, 1.9]))
    optical, sar = torch.randn(2, 8, 5, 11), torch.randn(2, 8, 5, 11)
    q = F.conv2d(F.group_norm(optical, 1, block.optical_norm.weight, block.optical_norm.bias), block.query.weight,
                 block.query.bias).flatten(2)  # (B, C, HW)
    kv = F.conv2d(F.group_norm(sar, 1, block.sar_norm.weight, block.sar_norm.bias), block.key_value.weight,
                  block.key_value.bias).flatten(2)
    k, v = kv[:, :8], kv[:, 8:]
    heads = []
    for h, temperature in enumerate((0.7, 1.9)):
        part = slice(4 * h, 4 * h + 4)
        qh, kh = F.normalize(q[:, part], dim=-1), F.normalize(k[:, part], dim=-1)
        attn = torch.softmax(temperature * qh @ kh.transpose(1, 2), dim=-1)  # (B, 4, 4) over channels
        heads.append(attn @ v[:, part])
    attended = torch.cat(heads, 1).reshape(2, 8, 5, 11)
    y = optical + F.conv2d(attended, block.project.weight, block.project.bias)
    expected = y + block.mlp(F.group_norm(y, 1, block.mlp_norm.weight, block.mlp_norm.bias))
    with ops.use_backend("reference"):
        assert relative_error(block(optical, sar), expected) <= 1e-6


@pytest.mark.parametrize("height, width", [(37, 29), (8, 8), (1, 13), (64, 24)])
def test_any_height_width_is_padded_by_replication_and_cropped(height: int, width: int) -> None:
    net = build(**TINY).eval()
    x, s, t = inputs(2, height, width)
    padded = (-height) % 8, (-width) % 8
    with torch.no_grad():
        out = net(x, s, t)
        full = net(F.pad(x, (0, padded[1], 0, padded[0]), mode="replicate"),
                   F.pad(s, (0, padded[1], 0, padded[0]), mode="replicate"), t)
    assert out.shape == x.shape
    assert relative_error(out, full[..., :height, :width]) <= 1e-6


def test_samples_in_a_batch_are_independent() -> None:
    net = build(**TINY).eval()
    x, s, t = inputs(3, 24, 40)
    with torch.no_grad():
        together = net(x, s, t)
        alone = torch.cat([net(x[i:i + 1], s[i:i + 1], t[i:i + 1]) for i in range(3)])
    assert relative_error(together, alone) <= 1e-5


def test_the_network_sees_time_through_alpha_and_sar_through_fusion() -> None:
    net = build(**TINY).eval()
    x, s, _ = inputs(1, 16, 16)
    with torch.no_grad():
        base = net(x, s, torch.tensor([300.0]))
        assert relative_error(net(x, s, torch.tensor([700.0])), base) > 1e-3
        assert relative_error(net(x, torch.rand_like(s), torch.tensor([300.0])), base) > 1e-3


@pytest.mark.parametrize("option", [dict(downsample="pixel_unshuffle"), dict(upsample="transposed_conv"),
                                    dict(head="conv1x1")])
def test_design_options_build_and_keep_shapes(option: dict) -> None:
    net = build(**TINY, **option).eval()
    x, s, t = inputs(2, 21, 18)
    with torch.no_grad():
        out = net(x, s, t)
    assert out.shape == x.shape and torch.isfinite(out).all()
    kernel = net.head.kernel_size[0]
    assert kernel == (1 if option.get("head") == "conv1x1" else 3)


@pytest.mark.parametrize("bad, match", [(dict(downsample="maxpool"), "downsample"), (dict(head="mlp"), "head"),
                                        (dict(fusion_heads=(1, 1, 3, 4)), "fusion heads"),
                                        (dict(encoder_blocks=(1, 1, 28)), "encoder_blocks"),
                                        (dict(widths=(8, 16, 24, 48)), "double"), (dict(depth=3), "unknown")])
def test_bad_config_names_the_value_and_what_is_allowed(bad: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build(**{**TINY, **bad})


def test_key_layout_and_strict_load_round_trip(tmp_path) -> None:
    from safetensors.torch import save_file

    net = build(**TINY)
    state = net.state_dict()
    prefixes = {k.split(".")[0] for k in state}
    assert prefixes == {"time_embedding", "optical_stem", "sar_stem", "encoder", "decoder", "head"}
    assert "encoder.3.optical_blocks.1.modulation.weight" in state and "encoder.0.fusion.temperature" in state
    assert "decoder.0.up.0.weight" in state and "encoder.0.sar_down.weight" in state
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "dbcr.safetensors")
    loaded = models.load("dbcr", tmp_path / "dbcr.safetensors", **TINY)
    x, s, t = inputs(1, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x, s, t), net.eval()(x, s, t))
    state["head.weight"] = state["head.weight"][:, :4]
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="head.weight"):
        models.load("dbcr", tmp_path / "bad.safetensors", **TINY)
