"""SeqDiT: per-modality adaLN-Zero modulation through ops.modulate / residual_modulate with segments."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import rsinfer.models
from tests.conftest import require_backend
from tests.numerics import assert_matches_reference, relative_error
from rsinfer.ops import use_backend

TINY = dict(img_size=6, patch_size=2, in_chans=4, embed_dim=24, depth=2, num_heads=3, mlp_ratio=2.0,
            num_modalities=4, frequency_embedding_size=16)


def _randomised(config: dict, seed: int = 0) -> torch.nn.Module:
    """A tiny SeqDiT with every weight random (adaLN-Zero would otherwise zero the modulations and the output)."""
    net = rsinfer.models.build("seqdit", **config).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) / math.sqrt(p.shape[-1]))
    return net


def _inputs(config: dict, batch: int = 2) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    s = config["img_size"]
    imgs = [torch.randn(batch, config["in_chans"], s, s) for _ in range(config["num_modalities"])]
    t_imgs = [torch.rand(batch) * 1000 for _ in range(config["num_modalities"])]
    t_imgs[1][0] = 0.0
    return imgs, t_imgs


def _by_modality_loop(net, imgs, t_imgs) -> list[torch.Tensor]:
    """Independent formulation: modulate each modality's token slice with its own parameters, in plain torch."""
    c, d = net.config, net.config.embed_dim
    length, heads = c.patches_per_modality, c.num_heads
    x = torch.cat([pe.proj(img).flatten(2).transpose(1, 2) for pe, img in zip(net.patch_embeds, imgs)], 1)
    x = x + net.pos_embed
    half = c.frequency_embedding_size // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half) / half)
    conds = []
    for m, t in enumerate(t_imgs):
        sinusoid = torch.cat([torch.cos(t[:, None] * freqs), torch.sin(t[:, None] * freqs)], -1)
        mlp = net.t_embedder.mlp
        conds.append(mlp[2](F.silu(mlp[0](sinusoid))) + net.modality_embed[:, m])

    def modulate_slices(h, shifts, scales):
        return torch.cat([F.layer_norm(h[:, m * length:(m + 1) * length], (d,), eps=1e-6) * (1 + scales[m][:, None])
                          + shifts[m][:, None] for m in range(c.num_modalities)], 1)

    def gated(gates, y):
        return torch.cat([gates[m][:, None] * y[:, m * length:(m + 1) * length] for m in range(c.num_modalities)], 1)

    for block in net.blocks:
        params = [block.adaLN_modulation[1](F.silu(cm)).chunk(6, -1) for cm in conds]
        sh1, sc1, g1, sh2, sc2, g2 = ([p[i] for p in params] for i in range(6))
        h = modulate_slices(x, sh1, sc1)
        qkv = block.attn.qkv(h).unflatten(-1, (3, heads, d // heads)).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2]).transpose(1, 2).flatten(2)
        x = x + gated(g1, block.attn.proj(attn))
        h = modulate_slices(x, sh2, sc2)
        x = x + gated(g2, block.mlp.fc2(F.gelu(block.mlp.fc1(h))))
    final = [net.final_modulation[1](F.silu(cm)).chunk(2, -1) for cm in conds]
    x = modulate_slices(x, [f[0] for f in final], [f[1] for f in final])
    p, side = c.patch_size, c.img_size // c.patch_size
    outs = []
    for m, head in enumerate(net.heads):
        tokens = head(x[:, m * length:(m + 1) * length])  # (B, L, p·p·C), channels fastest
        outs.append(tokens.reshape(-1, side, side, p, p, c.in_chans).permute(0, 5, 1, 3, 2, 4)
                    .reshape(-1, c.in_chans, side * p, side * p))
    return outs


@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_matches_per_modality_formulation(backend):
    net = _randomised(TINY)
    imgs, t_imgs = _inputs(TINY)
    with torch.no_grad():
        expected = _by_modality_loop(net, imgs, t_imgs)
        with use_backend(backend):
            out = net(imgs, t_imgs)
    for o, e in zip(out, expected):
        assert_matches_reference(o, e)


def test_each_modality_is_modulated_by_its_own_timestep():
    """Without blocks only the final modulation mixes in time: changing t_m changes only output m."""
    config = {**TINY, "depth": 0}
    net = _randomised(config, seed=1)
    imgs, t_imgs = _inputs(config)
    with torch.no_grad():
        before = net(imgs, t_imgs)
        t_imgs[2] = t_imgs[2] + 250.0
        after = net(imgs, t_imgs)
    for m in range(4):
        changed = relative_error(after[m], before[m])
        assert (changed > 1e-3) if m == 2 else (changed == 0.0), (m, changed)


def test_fresh_network_is_adaln_zero():
    """adaLN-Zero initialisation: every block is the identity and the prediction is exactly 0."""
    net = rsinfer.models.build("seqdit", **TINY).eval()
    imgs, t_imgs = _inputs(TINY)
    with torch.no_grad():
        out = net(imgs, t_imgs)
    assert all(torch.equal(o, torch.zeros_like(o)) for o in out)
    assert sum(p.numel() for p in net.parameters()) > 0
    with pytest.raises(ValueError, match="unknown seqdit config option.*'mlp_time_embed'"):
        rsinfer.models.build("seqdit", mlp_time_embed=True)


def test_forward_under_triton_interpreter_equals_reference():
    require_backend("triton")
    net = _randomised(TINY)
    imgs, t_imgs = _inputs(TINY, batch=1)
    with torch.no_grad():
        with use_backend("reference"):
            ref = net(imgs, t_imgs)
        with use_backend("triton"):
            out = net(imgs, t_imgs)
    assert max(relative_error(o, r) for o, r in zip(out, ref)) <= 1e-5
