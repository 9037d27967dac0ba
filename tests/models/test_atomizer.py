"""Atomizer: tokens and logits against an independent straight-line re-implementation of the official code.

The reference below (`official_tokens`, `official_forward`) follows HugoRdet/Atomizer @57bb634c step by step:
the official tokenizer's tensor layout (a (B, T, H, W, C, ·) block concatenated then flattened), the eager forward with
LN_ctx + to_kv over every token, SDPA on (B·h, N, d) tensors with a materialised boolean key mask, and the manual
temperature-10 pooling. It reads the seeded state dict directly, never the model's modules.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import rsinfer.models as models
from rsinfer.models.atomizer import checkpoint_state_dict, folded_cross_attention
from rsinfer.models.atomizer_tokens import BENV2_S2_BANDS, TokenGroups, fourier_features, resolve_bands
from rsinfer.sensors import sensor

ANCHOR_LIST = [(380, 15), (424, 15), (468, 15), (513, 15), (557, 15), (602, 15), (646, 15), (691, 15), (735, 15),
               (780, 15), (850, 15), (940, 15), (1200, 80), (1400, 30), (1600, 40), (2100, 120)]
ANCHORS = {f"g{i}": {"mean": float(m), "std": float(s)} for i, (m, s) in enumerate(ANCHOR_LIST)}
CFG = {"depth": 2, "num_latents": 16, "latent_dim": 64, "cross_heads": 2, "latent_heads": 4, "cross_dim_head": 16,
       "latent_dim_head": 16, "num_classes": 19, "self_per_cross_attn": 2, "weight_tie_layers": False,
       "wavelength_encoding": "GAUSSIANS", "bandvalue_encoding": "FF", "bandvalue_num_freq_bands": 6,
       "bandvalue_max_freq": 10, "pos_encoding": "FF", "pos_num_freq_bands": 4, "pos_max_freq": 4}
S2_TABLE = {"B01": (443, 20), "B02": (490, 65), "B03": (560, 35), "B04": (665, 30), "B05": (705, 15),
            "B06": (740, 15), "B07": (783, 20), "B08": (842, 115), "B8A": (865, 20), "B09": (945, 20),
            "B11": (1610, 90), "B12": (2190, 180)}  # the parity note's training table


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def seeded_state_dict(cfg: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights in the official key layout, larger than default init so every path matters."""
    generator = torch.Generator().manual_seed(seed)
    net = models.build("atomizer", **cfg, wavelengths_encoding=ANCHORS)
    state = {}
    for key, value in net.state_dict().items():
        if key == "transform.s2_res":
            state[key] = value.clone()
        elif key.endswith("norm.weight") or key.endswith("norm_context.weight") or key == "to_logits.1.weight":
            state[key] = 1 + 0.2 * torch.randn(value.shape, generator=generator)
        else:
            state[key] = 0.2 * torch.randn(value.shape, generator=generator)
    return state


def build(cfg: dict = CFG, seed: int = 0):
    net = models.build("atomizer", **cfg, wavelengths_encoding=ANCHORS)
    state = seeded_state_dict(cfg, seed)
    net.load_state_dict(state)
    return net.eval(), state


# ---- the independent reference ---------------------------------------------------------------------------------

def official_fourier(x: torch.Tensor, max_freq, num_bands: int) -> torch.Tensor:
    x = x.unsqueeze(-1)
    if num_bands == -1:
        scales = torch.linspace(1.0, max_freq, max_freq, dtype=x.dtype)
    else:
        scales = torch.linspace(1.0, max_freq / 2, num_bands, dtype=x.dtype)
    scales = scales[(*((None,) * (x.dim() - 1)), Ellipsis)]
    y = x * scales * math.pi * 0.75
    return torch.cat([torch.cat([y.sin(), y.cos()], dim=-1), x], dim=-1)


def official_tokens(image, mask, resolution, cfg, centers, widths):
    """The official process_data (minus its random rotation/flip), square images only, as upstream."""
    img = image.permute(0, 2, 3, 1)[:, None]  # B T H W C
    msk = mask.permute(0, 2, 3, 1)[:, None]
    b, t, h, w, c = img.shape
    means = torch.tensor([m for m, _ in ANCHOR_LIST], dtype=torch.float32).view(1, -1)
    stds = torch.tensor([s for _, s in ANCHOR_LIST], dtype=torch.float32).view(1, -1)
    lam, bw = torch.tensor(centers, dtype=torch.float32), torch.tensor(widths, dtype=torch.float32)
    lo, hi = lam - bw / 2, lam + bw / 2
    grid = torch.linspace(0, 1, 50)
    sampled = lo.unsqueeze(1) + (hi - lo).unsqueeze(1) * grid.unsqueeze(0)
    gauss = torch.exp(-0.5 * (((sampled.unsqueeze(2) - means.unsqueeze(0).unsqueeze(0))
                               / stds.unsqueeze(0).unsqueeze(0)) ** 2))
    wave = gauss.max(dim=-2).values.unsqueeze(0).unsqueeze(0).unsqueeze(0)  # 1 1 1 1 C G
    wave = wave.expand(1, t, h, w, c, wave.shape[-1]).expand(b, -1, -1, -1, -1, -1)
    if cfg["bandvalue_encoding"] == "NATURAL":
        value = img.unsqueeze(-1)
    else:
        value = official_fourier(img, cfg["bandvalue_max_freq"], cfg["bandvalue_num_freq_bands"])
    size = img.shape[-2]
    new_res = torch.full((12,), 20.0)[None, :c] / resolution[:, None]
    scalings = (size * new_res) / 400.0
    pos = []
    for i in range(b):
        per_band = []
        for s in torch.tensor([float(x) for x in scalings[i].tolist()]):
            axis = torch.linspace(-s / 2.0, s / 2.0, steps=size)
            grid2 = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1)
            enc = official_fourier(grid2, cfg["pos_max_freq"], cfg["pos_num_freq_bands"])  # h w 2 f
            per_band.append(enc.reshape(h, w, -1).unsqueeze(-2))
        pos.append(torch.cat(per_band, dim=-2)[None, None])
    pos = torch.cat(pos, dim=0)  # B 1 H W C 2P
    tokens = torch.cat([wave, value, pos], dim=5)
    return tokens.reshape(b, t * h * w * c, -1), msk.reshape(b, t * h * w * c)


def _ln(x, sd, key):
    return F.layer_norm(x, x.shape[-1:], sd[key + ".weight"], sd[key + ".bias"], 1e-5)


def _lin(x, sd, key, bias=True):
    return F.linear(x, sd[key + ".weight"], sd.get(key + ".bias") if bias else None)


def _heads(x, h):  # b n (h d) -> (b h) n d
    b, n, inner = x.shape
    return x.reshape(b, n, h, inner // h).permute(0, 2, 1, 3).reshape(b * h, n, inner // h)


def _unheads(x, h):  # (b h) n d -> b n (h d)
    bh, n, d = x.shape
    return x.reshape(bh // h, h, n, d).permute(0, 2, 1, 3).reshape(bh // h, n, h * d)


def _geglu(x, sd, key):
    a, gate = _lin(_ln(x, sd, key + ".norm"), sd, key + ".fn.w1").chunk(2, dim=-1)
    return _lin(a * F.gelu(gate), sd, key + ".fn.w2")


def official_forward(tokens, token_mask, sd, cfg):
    """Atomiser.forward on 3-D tokens: returns (latents, logits)."""
    b = tokens.shape[0]
    x = sd["latents"].unsqueeze(0).repeat(b, 1, 1)
    m = token_mask.to(torch.bool)
    tokens = tokens.masked_fill(~m.unsqueeze(-1), 0.0)
    hc, hl = cfg["cross_heads"], cfg["latent_heads"]
    for i in range(cfg["depth"]):
        key = f"layers.{i}.0"
        xn, ctx = _ln(x, sd, key + ".norm"), _ln(tokens, sd, key + ".norm_context")
        q = _heads(_lin(xn, sd, key + ".fn.to_q", bias=False), hc)
        k, v = (_heads(t, hc) for t in _lin(ctx, sd, key + ".fn.to_kv", bias=False).chunk(2, dim=-1))
        attn_mask = m.unsqueeze(1).expand(-1, x.shape[1], -1)
        attn_mask = attn_mask.unsqueeze(1).expand(-1, hc, -1, -1).reshape(b * hc, x.shape[1], -1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        x = _lin(_unheads(out, hc), sd, key + ".fn.to_out.0") + x
        x = _geglu(x, sd, f"layers.{i}.1") + x
        for j in range(cfg["self_per_cross_attn"]):
            key = f"layers.{i}.2.{j}"
            qkv = _lin(_ln(x, sd, key + ".0.norm"), sd, key + ".0.fn.to_qkv", bias=False)
            q, k, v = (_heads(t, hl) for t in qkv.chunk(3, dim=-1))
            x = _lin(_unheads(F.scaled_dot_product_attention(q, k, v), hl), sd, key + ".0.fn.to_out.0") + x
            x = _geglu(x, sd, key + ".1") + x
    query = sd["to_logits.0.query"].repeat(b, 1, 1)
    q = _heads(_lin(query, sd, "to_logits.0.cross.to_q", bias=False), hl)
    k, v = (_heads(t, hl) for t in _lin(x, sd, "to_logits.0.cross.to_kv", bias=False).chunk(2, dim=-1))
    sim = torch.einsum("b i d, b j d -> b i j", q, k) * cfg["latent_dim_head"] ** -0.5
    attn = (sim / 10.0).softmax(dim=-1)
    pooled = _lin(_unheads(torch.einsum("b i j, b j d -> b i d", attn, v), hl), sd, "to_logits.0.cross.to_out.0")
    logits = _lin(_ln(pooled.squeeze(1), sd, "to_logits.1"), sd, "to_logits.2")
    return x, logits


def s2_centers_widths(names=BENV2_S2_BANDS):
    return [S2_TABLE[n][0] for n in names], [S2_TABLE[n][1] for n in names]


def random_inputs(batch=2, channels=12, height=9, width=9, seed=1):
    generator = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, channels, height, width, generator=generator)
    mask = (torch.rand(batch, channels, height, width, generator=generator) > 0.3).float()
    mask[0] = 1.0
    return image, mask, torch.tensor([1.0, 0.5, 2.0, 0.25][:batch], dtype=torch.float64)


# ---- tokens ------------------------------------------------------------------------------------------------------

def test_fourier_features_hand_values():
    x = torch.tensor([0.3, -1.7])
    got = fourier_features(x, 10, 6)  # scales linspace(1, 5, 6)
    assert got.shape == (2, 13)
    for row, value in enumerate([0.3, -1.7]):
        scales = [1 + 0.8 * k for k in range(6)]
        expected = [math.sin(value * s * math.pi * 0.75) for s in scales]
        expected += [math.cos(value * s * math.pi * 0.75) for s in scales] + [value]
        assert got[row].tolist() == pytest.approx(expected, abs=2e-6)
    dense = fourier_features(torch.tensor([0.5]), 3, -1)  # num_freq_bands = -1: scales 1, 2, 3
    assert dense.shape == (1, 7)
    assert dense[0, :3].tolist() == pytest.approx([math.sin(0.5 * s * 0.75 * math.pi) for s in (1, 2, 3)], abs=1e-6)


def test_token_entries_hand_checked():
    """Token dims and (row, column, band) order, entries evaluated from the formulas in double precision."""
    net, _ = build()
    height, width, r = 5, 5, 0.5
    image = torch.randn(1, 12, height, width)
    tokens, token_mask = net.tokenize(image, torch.ones_like(image), torch.tensor([r], dtype=torch.float64))
    assert net.token_dim == 16 + 13 + 2 * 9 == tokens.shape[-1]
    assert tokens.shape == (1, height * width * 12, 47) and bool(token_mask.all())
    extent = height * (20 / r) / 400  # L = 5 px · 40 / 400 = 0.5
    for i, j, c in [(0, 0, 0), (1, 3, 4), (4, 4, 11), (2, 1, 8)]:
        token = tokens[0, (i * width + j) * 12 + c].double()
        center, band_width = S2_TABLE[BENV2_S2_BANDS[c]]
        for k, (mean, std) in enumerate(ANCHOR_LIST):
            lam = [center - band_width / 2 + band_width * p / 49 for p in range(50)]
            expected = max(math.exp(-0.5 * ((x - mean) / std) ** 2) for x in lam)
            assert token[k].item() == pytest.approx(expected, abs=1e-6)
        v = image[0, c, i, j].item()
        scales = [1 + 0.8 * k for k in range(6)]
        value = [math.sin(v * s * 0.75 * math.pi) for s in scales] + [math.cos(v * s * 0.75 * math.pi)
                                                                        for s in scales] + [v]
        assert token[16:29].tolist() == pytest.approx(value, abs=2e-5)
        for offset, index in ((29, i), (38, j)):
            coord = -extent / 2 + index * extent / (height - 1)
            pos_scales = [1 + k / 3 for k in range(4)]  # linspace(1, 2, 4)
            expected = [math.sin(coord * s * 0.75 * math.pi) for s in pos_scales]
            expected += [math.cos(coord * s * 0.75 * math.pi) for s in pos_scales] + [coord]
            assert token[offset:offset + 9].tolist() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("cfg_change", [{}, {"bandvalue_encoding": "NATURAL"},
                                        {"pos_num_freq_bands": -1, "pos_max_freq": 3}])
def test_tokens_equal_official_tokenizer(cfg_change):
    cfg = {**CFG, **cfg_change}
    net, _ = build(cfg)
    image, mask, resolution = random_inputs(batch=3, height=7, width=7)
    tokens, token_mask = net.tokenize(image, mask, resolution)
    expected, expected_mask = official_tokens(image, mask, resolution, cfg, *s2_centers_widths())
    assert torch.equal(tokens, expected)  # bit for bit in float32
    assert torch.equal(token_mask, expected_mask != 0)


def test_non_square_windows_use_separate_axes():
    net, _ = build()
    image = torch.randn(1, 12, 6, 11)
    r = torch.tensor([0.5], dtype=torch.float64)
    tokens, _ = net.tokenize(image, torch.ones_like(image), r)
    tokens = tokens.view(6, 11, 12, -1)
    tall, _ = official_tokens(torch.randn(1, 12, 6, 6), torch.ones(1, 12, 6, 6), r, CFG, *s2_centers_widths())
    wide, _ = official_tokens(torch.randn(1, 12, 11, 11), torch.ones(1, 12, 11, 11), r, CFG,
                              *s2_centers_widths())
    tall, wide = tall.view(6, 6, 12, -1), wide.view(11, 11, 12, -1)
    assert torch.equal(tokens[:, 0, :, 29:38], tall[:, 0, :, 29:38])  # rows: L from H, H steps
    assert torch.equal(tokens[0, :, :, 38:47], wide[0, :, :, 38:47])  # columns: L from W, W steps
    assert tokens[-1, 0, 0, 37].item() == pytest.approx(6 * 40 / 400 / 2)  # the row coordinate itself, +L_H/2
    assert tokens[0, -1, 0, 46].item() == pytest.approx(11 * 40 / 400 / 2)


def test_resolution_factor_scales_the_position_extent():
    net, _ = build()
    image = torch.randn(2, 12, 4, 4)
    tokens, _ = net.tokenize(image, torch.ones_like(image), torch.tensor([1.0, 0.25], dtype=torch.float64))
    rows = tokens.view(2, 4, 4, 12, -1)[:, :, 0, 0, 37]  # raw row coordinates
    assert rows[0].tolist() == pytest.approx([-0.1, -0.1 / 3, 0.1 / 3, 0.1])  # L = 4·20/400 = 0.2
    assert rows[1].tolist() == pytest.approx([-0.4, -0.4 / 3, 0.4 / 3, 0.4])  # r = 1/4: L = 4·80/400
    other = net.tokenize(image, torch.ones_like(image), [1.0, 1.0])[0]
    assert torch.equal(other[0], tokens[0]) and not torch.equal(other[1], tokens[1])
    # L = H·(20/r)/400 in float64, then rounded to float32 (at H = 11, r = 0.3 float32 arithmetic differs)
    odd = net.tokenize(torch.randn(1, 12, 11, 11), torch.ones(1, 12, 11, 11), [0.3])[0].view(11, 11, 12, -1)
    extent = np.float32(11 * (20 / 0.3) / 400)
    assert extent != np.float32(11) * (np.float32(20) / np.float32(0.3)) / np.float32(400)
    assert odd[-1, 0, 0, 37].item() == float(extent) / 2


# ---- bands ----------------------------------------------------------------------------------------------------

def test_band_subset_equals_masking_the_other_bands():
    net, _ = build()
    image, mask, resolution = random_inputs()
    subset = [1, 2, 3, 7]
    names = [BENV2_S2_BANDS[i] for i in subset]
    tokens, _ = net.tokenize(image[:, subset], mask[:, subset], resolution, bands=names)
    full, _ = net.tokenize(image, mask, resolution)
    assert torch.equal(tokens.view(2, 81, 4, -1), full.view(2, 81, 12, -1)[:, :, subset])
    masked = torch.zeros_like(mask)
    masked[:, subset] = mask[:, subset]
    with torch.no_grad():
        got = net(image[:, subset], mask[:, subset], resolution, bands=[f"sentinel-2:{n}" for n in names])
        expected = net(image, masked, resolution)
    assert relative_error(got, expected) < 1e-6


def test_landsat_bands_tokenise_with_their_own_wavelengths():
    net, _ = build()
    landsat = sensor("landsat-8").select(["B2", "B3", "B4"])
    image = torch.randn(1, 3, 5, 5)
    tokens, _ = net.tokenize(image, torch.ones_like(image), [1 / 3], bands=["landsat-8:B2", "l8:b3", landsat[2]])
    expected, _ = official_tokens(image, torch.ones_like(image), torch.tensor([1 / 3], dtype=torch.float64), CFG,
                                  [b.center_nm for b in landsat], [b.width_nm for b in landsat])
    assert torch.equal(tokens, expected)
    assert [b.center_nm for b in landsat] == [482.5, 562.5, 655.0]
    s2, _ = net.tokenize(image, torch.ones_like(image), [1 / 3], bands=["B02", "B03", "B04"])
    assert not torch.equal(tokens[0, 0, :16], s2[0, 0, :16])
    assert torch.equal(tokens[0, :, 16:], s2[0, :, 16:])  # same values and positions, other wavelengths


def test_default_bands_are_benv2_with_the_training_table():
    bands = resolve_bands(None)
    assert [b.name for b in bands] == list(BENV2_S2_BANDS)
    assert [(b.center_nm, b.width_nm) for b in bands] == [S2_TABLE[n] for n in BENV2_S2_BANDS]


def test_sar_unknown_and_mismatched_bands_are_refused():
    net, _ = build()
    image = torch.randn(1, 1, 3, 3)
    with pytest.raises(ValueError, match="no wavelength"):
        net.tokenize(image, torch.ones_like(image), [1.0], bands=["sentinel-1:VV"])
    with pytest.raises(ValueError, match="known bands: B01"):
        net.tokenize(image, torch.ones_like(image), [1.0], bands=["B13"])
    with pytest.raises(ValueError, match="known sensors"):
        net.tokenize(image, torch.ones_like(image), [1.0], bands=["spot-9:B1"])
    with pytest.raises(ValueError, match="1 channels but 12 bands"):
        net.tokenize(image, torch.ones_like(image), [1.0])
    with pytest.raises(ValueError, match="one factor per sample"):
        net.tokenize(image, torch.ones_like(image), [1.0, 2.0], bands=["B02"])


# ---- network --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg_change", [{}, {"bandvalue_encoding": "NATURAL", "cross_heads": 1},
                                        {"pos_num_freq_bands": -1, "pos_max_freq": 3, "self_per_cross_attn": 0}])
def test_forward_equals_official_eager_forward(cfg_change):
    """Fast path (folded attention, fused tokenizer, chunks that do not divide the token count) vs official eager."""
    cfg = {**CFG, **cfg_change}
    net, state = build(cfg)
    net.token_chunk = 50  # 81 tokens per band and sample: 2 chunks of 40-41 (fewer where masked)
    image, mask, resolution = random_inputs()
    tokens, token_mask = official_tokens(image, mask, resolution, cfg, *s2_centers_widths())
    latents, logits = official_forward(tokens, token_mask, state, cfg)
    with torch.no_grad():
        assert relative_error(net.encode(image, mask, resolution), latents) < 1e-5
        assert relative_error(net(image, mask, resolution), logits) < 1e-5
        assert relative_error(net.forward_tokens(tokens, token_mask), logits) < 1e-5


def test_forward_with_large_scores_uses_the_running_maximum():
    """Query weights ×60: scores span more than float32's exponent range, so the online maximum path runs."""
    net, state = build()
    for i in range(CFG["depth"]):
        state[f"layers.{i}.0.fn.to_q.weight"] = state[f"layers.{i}.0.fn.to_q.weight"] * 60
    net.load_state_dict(state)
    net.token_chunk = 97
    image, mask, resolution = random_inputs()
    tokens, token_mask = official_tokens(image, mask, resolution, CFG, *s2_centers_widths())
    _, logits = official_forward(tokens, token_mask, state, CFG)
    with torch.no_grad():
        assert relative_error(net(image, mask, resolution), logits) < 1e-5


@pytest.mark.parametrize("query_scale", [1.0, 400.0])
@pytest.mark.parametrize("chunk", [7, 64, 1000])
@pytest.mark.parametrize("shared_dim", [5, 0])
def test_folded_attention_equals_softmax_attention(query_scale, chunk, shared_dim):
    """Tokens in 3 groups sharing their first 5 entries (like a band's wavelength part), in shuffled order; with
    shared_dim 0 they form one group without a shared part. Scale 400 forces the running-maximum path."""
    torch.manual_seed(3)
    heads, dim_head, d_in, n = 3, 8, 11, 5
    sizes = (100, 150, 71)
    shared = torch.randn(3, 5)
    tokens = torch.cat([torch.cat([shared[g].expand(size, -1), 2 * torch.randn(size, d_in - 5) + 0.5], dim=1)
                        for g, size in enumerate(sizes)])[torch.randperm(sum(sizes))]  # (321, D_in)
    groups = TokenGroups.from_tokens(tokens, shared_dim)
    assert sorted(groups.sizes) == (sorted(sizes) if shared_dim else [321])
    assert groups.rows.shape[1] % 8 == 0
    to_kv, gamma, beta = torch.randn(2 * heads * dim_head, d_in), 1 + 0.3 * torch.randn(d_in), torch.randn(d_in)
    q = torch.randn(n, heads * dim_head) * query_scale
    got = folded_cross_attention(q, groups, to_kv, gamma, beta, heads, chunk)
    k, v = F.linear(F.layer_norm(tokens, (d_in,), gamma, beta), to_kv).chunk(2, dim=-1)
    qh, kh, vh = (x.view(-1, heads, dim_head).transpose(0, 1).double() for x in (q, k, v))
    probs = (qh @ kh.transpose(1, 2) / math.sqrt(dim_head)).softmax(dim=-1)
    expected = (probs @ vh).transpose(0, 1).reshape(n, heads * dim_head)
    assert torch.isfinite(got).all()
    assert relative_error(got, expected) < 1e-5


def test_token_groups_fall_back_to_one_group():
    tokens = torch.randn(200, 9)  # every token its own "group": splitting would not pay
    groups = TokenGroups.from_tokens(tokens, 4)
    assert groups.sizes == (200,) and groups.shared.shape == (1, 0) and groups.individual_dim == 9
    rho = 1 / torch.sqrt(tokens.var(dim=1, unbiased=False) + 1e-5)
    assert torch.allclose(groups.rows[:, 0], rho) and torch.allclose(groups.rows[:, 1:10], tokens * rho[:, None])
    assert torch.allclose(groups.rows[:, 10], tokens.mean(dim=1) * rho, atol=1e-6)
    assert torch.equal(groups.rows[:, 11], torch.ones(200)) and groups.rows.shape == (200, 16)


def test_gradients_equal_the_official_forward():
    """Training through the fast path (out-of-place chunk loop) gives the official gradients."""
    net, state = build()
    net.token_chunk = 200
    image, mask, resolution = random_inputs()
    tokens, token_mask = official_tokens(image, mask, resolution, CFG, *s2_centers_widths())
    reference = {k: v.clone().requires_grad_(v.is_floating_point() and k != "transform.s2_res")
                 for k, v in state.items()}
    official_forward(tokens, token_mask, reference, CFG)[1].square().sum().backward()
    net(image, mask, resolution).square().sum().backward()
    for key in ("latents", "layers.0.0.fn.to_kv.weight", "layers.1.0.norm_context.bias", "layers.0.0.fn.to_q.weight"):
        assert relative_error(net.get_parameter(key).grad, reference[key].grad) < 1e-5, key


def test_masked_tokens_equal_dropped_tokens():
    net, _ = build()
    net.token_chunk = 61
    image, mask, resolution = random_inputs()
    tokens, token_mask = net.tokenize(image, mask, resolution)
    with torch.no_grad():
        both = net.forward_tokens(tokens, token_mask)
        for b in range(2):
            kept = tokens[b][token_mask[b]][None]
            dropped = net.forward_tokens(kept, torch.ones(kept.shape[:2]))
            assert relative_error(both[b], dropped[0]) < 1e-6
        garbage = tokens.masked_fill(~token_mask[..., None], 1e3)  # masked values do not matter
        assert relative_error(net.forward_tokens(garbage, token_mask), both) < 1e-6


def test_forward_is_deterministic_and_refuses_an_empty_sample():
    net, _ = build()
    image, mask, resolution = random_inputs()
    with torch.no_grad():
        assert torch.equal(net(image, mask, resolution), net(image, mask, resolution))  # no random rotation/flip
        mask[1] = 0
        with pytest.raises(ValueError, match="sample 1 has no valid token"):
            net(image, mask, resolution)


def test_embed_is_the_pooled_latent_feeding_the_classifier():
    net, _ = build()
    image, mask, resolution = random_inputs()
    with torch.no_grad():
        pooled = net.embed(image, mask, resolution)
        assert pooled.shape == (2, 64)
        assert torch.allclose(net.to_logits[2](net.to_logits[1](pooled)), net(image, mask, resolution))


def test_weight_tying_shares_layers_after_the_first():
    cfg = {**CFG, "depth": 3, "weight_tie_layers": True}
    net, state = build(cfg)
    assert net.layers[1] is not net.layers[0] and net.layers[1][0] is net.layers[2][0]
    assert net.layers[1][2][1][0] is net.layers[2][2][1][0] and net.layers[0][2][1][0] is not net.layers[1][2][1][0]
    assert "layers.2.0.fn.to_kv.weight" in net.state_dict()  # the state dict repeats shared tensors per layer
    # a tied checkpoint holds the same tensors under layers 1 and 2
    state = {k: state[k.replace("layers.2.", "layers.1.")] if k.startswith("layers.2.") else v
             for k, v in state.items()}
    net.load_state_dict(state)
    assert torch.equal(net.layers[2][1].fn.w1.weight, state["layers.1.1.fn.w1.weight"])
    image, mask, resolution = random_inputs()
    tokens, token_mask = official_tokens(image, mask, resolution, cfg, *s2_centers_widths())
    with torch.no_grad():
        assert relative_error(net(image, mask, resolution), official_forward(tokens, token_mask, state, cfg)[1]) < 1e-5


# ---- config and checkpoints -----------------------------------------------------------------------------------

def test_config_errors_name_the_bad_value():
    with pytest.raises(ValueError, match="wavelengths_encoding is required"):
        models.build("atomizer", **CFG)
    with pytest.raises(ValueError, match="bandvalue_encoding 'RAW'"):
        models.build("atomizer", **{**CFG, "bandvalue_encoding": "RAW"}, wavelengths_encoding=ANCHORS)
    with pytest.raises(ValueError, match="pos_max_freq must be a positive integer"):
        models.build("atomizer", **{**CFG, "pos_num_freq_bands": -1, "pos_max_freq": 2.5},
                     wavelengths_encoding=ANCHORS)
    with pytest.raises(ValueError, match="unknown atomizer config option"):
        models.build("atomizer", **CFG, wavelengths_encoding=ANCHORS, dropout=0.1)
    with pytest.raises(ValueError, match=r"wavelengths_encoding\['g0'\]"):
        models.build("atomizer", **CFG, wavelengths_encoding={"g0": {"mean": 400.0}})


def cached_block(net, height=4, anchors=ANCHOR_LIST):
    """Upstream's wavelength_encoding_s2 buffer: [1, 1, H, W, 12, G], computed here from the formula."""
    centers, widths = s2_centers_widths()
    lam = torch.tensor(centers, dtype=torch.float32)[:, None] + torch.tensor(widths, dtype=torch.float32)[:, None] * (
        torch.linspace(0, 1, 50)[None] - 0.5)
    means = torch.tensor([m for m, _ in anchors], dtype=torch.float32)
    stds = torch.tensor([s for _, s in anchors], dtype=torch.float32)
    enc = torch.exp(-0.5 * ((lam[..., None] - means) / stds) ** 2).amax(dim=1)
    return enc[None, None, None, None].expand(1, 1, height, height, 12, len(anchors)).clone()


def lightning_checkpoint(state: dict, cache: torch.Tensor | None, cache_at: tuple[str, ...]) -> dict:
    """A LightningModule checkpoint laid out as pytorch_lightning 2.6 writes the official trainer's (checked
    against a real one): encoder keys under "encoder.", the tokenizer again at model level, training state around."""
    sd = OrderedDict((f"encoder.{k}", v) for k, v in state.items())
    sd["transform.s2_res"] = state["transform.s2_res"].clone()
    for prefix in cache_at:
        sd[f"{prefix}transform.wavelength_encoding_s2"] = cache.clone()
    params = [v for k, v in state.items() if k != "transform.s2_res"][:3]
    optimizer = torch.optim.Adam([p.clone().requires_grad_() for p in params], lr=1e-4)
    for p in optimizer.param_groups[0]["params"]:
        p.grad = torch.randn_like(p)
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5)
    monitor = "ModelCheckpoint{'monitor': 'val_mod_train_ap', 'mode': 'max', 'every_n_train_steps': 0, " \
              "'every_n_epochs': 1, 'train_time_interval': None}"
    progress = {"total": {"ready": 2, "completed": 2}, "current": {"ready": 2, "completed": 2}}
    return {
        "epoch": 7, "global_step": 5000, "pytorch-lightning_version": "2.6.0", "state_dict": sd,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_loop.state_dict": {"_batches_that_stepped": 5000},
                               "epoch_loop.scheduler_progress": progress}},
        "callbacks": {monitor: {"monitor": "val_mod_train_ap", "best_model_score": torch.tensor(0.3285),
                                "best_model_path": "/ckpt/Atomiser-epoch=07.ckpt", "current_score": torch.tensor(0.3),
                                "dirpath": "/ckpt", "best_k_models": {"/ckpt/Atomiser-epoch=07.ckpt":
                                                                      torch.tensor(0.3285)}}},
        "optimizer_states": [optimizer.state_dict()], "lr_schedulers": [scheduler.state_dict()],
        "hparams_name": "kwargs",
        "hyper_parameters": {"config": {"encoder": "Atomiser", "trainer": {"lr": "1e-4", "num_classes": 19},
                                        "Atomiser": dict(CFG), "wavelengths_encoding": ANCHORS}},
    }


@pytest.mark.parametrize("cache_at", [("encoder.", ""), ("encoder.",), ("",), ()],
                         ids=["cache-both", "cache-encoder", "cache-model", "no-cache"])
def test_lightning_checkpoint_loads(tmp_path, cache_at):
    net, state = build()
    path = tmp_path / "Atomiser-alone_best_model_val_mod_train-epoch=07-val_mod_train_ap=32.85.ckpt"
    torch.save(lightning_checkpoint(state, cached_block(net), cache_at), path)
    loaded = models.load("atomizer", path, **CFG, wavelengths_encoding=ANCHORS)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())
    image, mask, resolution = random_inputs()
    with torch.no_grad():
        assert torch.equal(loaded(image, mask, resolution), net(image, mask, resolution))


def test_encoder_pth_with_the_cache_loads_strictly(tmp_path):
    net, state = build()
    with_cache = {**state, "transform.wavelength_encoding_s2": cached_block(net, height=6)}
    fresh = models.build("atomizer", **CFG, wavelengths_encoding=ANCHORS)
    fresh.load_state_dict(with_cache)  # strict: the cache is checked and dropped by the tokenizer's load hook
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in state.items())
    torch.save(with_cache, tmp_path / "Atomiser_run.pth")
    models.load("atomizer", tmp_path / "Atomiser_run.pth", **CFG, wavelengths_encoding=ANCHORS)


def test_cache_from_other_anchors_is_rejected():
    net, state = build()
    shifted = [(m + 20, s) for m, s in ANCHOR_LIST]
    with pytest.raises(ValueError, match="anchors do not match"):
        checkpoint_state_dict({**state, "transform.wavelength_encoding_s2": cached_block(net, anchors=shifted)}, net)
    with pytest.raises(ValueError, match="12, 16"):
        checkpoint_state_dict({**state, "transform.wavelength_encoding_s2": cached_block(net)[..., :15]}, net)


def test_strict_load_errors_list_the_keys(tmp_path):
    net, state = build()
    broken = {f"encoder.{k}": v for k, v in state.items() if k != "latents"}
    broken["encoder.layers.0.0.fn.extra.weight"] = torch.zeros(1)
    broken["encoder.to_logits.2.weight"] = torch.zeros(5, 64)
    torch.save({"state_dict": broken, "epoch": 1}, tmp_path / "broken.ckpt")
    with pytest.raises(ValueError) as err:
        models.load("atomizer", tmp_path / "broken.ckpt", **CFG, wavelengths_encoding=ANCHORS)
    message = str(err.value)
    assert "missing keys: latents" in message and "layers.0.0.fn.extra.weight" in message
    assert "to_logits.2.weight (checkpoint (5, 64), model (19, 64))" in message
    other_anchors = {k: v for k, v in list(ANCHORS.items())[:12]}  # 12 anchors: token_dim 43, to_kv mis-shaped
    torch.save(state, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match=r"layers.0.0.fn.to_kv.weight \(checkpoint \(64, 47\), model \(64, 43\)\)"):
        models.load("atomizer", tmp_path / "plain.pt", **CFG, wavelengths_encoding=other_anchors)
    with pytest.raises(RuntimeError, match="Missing key"):
        models.build("atomizer", **CFG, wavelengths_encoding=ANCHORS).load_state_dict(
            {k: v for k, v in state.items() if k != "latents"})
