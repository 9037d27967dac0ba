"""CrossDiff networks: official key layout and parameter counts, strict loading of both checkpoint forms, the schedule
buffer check, the GroupNorm rule for reduced widths, and parity of the U-Nets and the fusion head with a straight-line
re-implementation of the official forward (codgodtao/CrossDiff @233beed5: model/easy_unet/pan_ms_v2.py,
ms_pan_v2.py, diffusion_pan2ms.py, fusion_modules/fusionnet_2.py, easy_unet/se.py) written here with plain torch ops.

The helpers at the top (official shapes, seeded official-layout state dicts, hand-computed schedule buffers, the
reference forwards) are also used by tests/pipelines/test_crossdiff_pipeline.py.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import rsinfer.models
from rsinfer.models.crossdiff import timestep_encoding
from tests.numerics import assert_matches_reference, relative_error

OFFICIAL = (32, 64, 128, 256)
SMALL = (8, 32, 32, 64)  # the smallest widths the official GroupNorm counts (4 | c0, 32 | c1, c2, c3) allow
BUFFER_NAMES = ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
                "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod_1",
                "sqrt_recipm1_alphas_cumprod_1", "posterior_variance", "posterior_log_variance_clipped",
                "posterior_mean_coef1", "posterior_mean_coef2")


# ---- the official layout, written out from the official constructors ----------------------------------------------

def official_unet_shapes(direction: str, channels=OFFICIAL, bands: int = 4) -> dict[str, tuple[int, ...]]:
    """`Multi_branch_Unet(channels, embed_dim=256, inter_dim=32, spectrun_num=bands)` (conv1 outputs channels[0])."""
    c0, c1, c2, c3 = channels
    out = bands if direction == "p2m" else 1
    shapes = {"embed.0.weight": (256, 32), "embed.0.bias": (256,), "conv1.weight": (c0, bands + 1, 3, 3),
              "conv1.bias": (c0,)}
    for name, cin, cout, transposed in (("res3", c0, c1, False), ("down1", c1, c2, False),
                                        ("down2", c2, c3, False), ("up1", c3, c2, True)):
        shapes |= {f"{name}.conv20.weight": (cin, cout, 3, 3) if transposed else (cout, cin, 3, 3),
                   f"{name}.conv20.bias": (cout,), f"{name}.dense1.dense.weight": (cin, 256),
                   f"{name}.dense1.dense.bias": (cin,), f"{name}.groupnorm1.weight": (cin,),
                   f"{name}.groupnorm1.bias": (cin,)}
    for index, width in ((2, c2), (3, c1), (4, c0), (5, c0)):
        shapes |= {f"dense{index}.dense.weight": (width, 256), f"dense{index}.dense.bias": (width,),
                   f"groupnorm{index}.weight": (width,), f"groupnorm{index}.bias": (width,)}
    shapes |= {"up2.weight": (2 * c2, c1, 3, 3), "up2.bias": (c1,), "up3.weight": (2 * c1, c0, 3, 3),
               "up3.bias": (c0,), "final1.weight": (c0, 2 * c0, 3, 3), "final1.bias": (c0,),
               "final2.weight": (out, c0 + bands + 1, 3, 3), "final2.bias": (out,)}
    return shapes


def official_fusion_shapes(bands: int = 4, channel_multiplier=OFFICIAL, inner: int = 32) -> dict[str, tuple]:
    """`FusionNet(spectral_num=bands, inner_channel=inner, channel_multiplier, time_steps=[50])`."""
    doubled = [2 * w for w in sorted(channel_multiplier, reverse=True)]
    shapes = {}
    for level, width in enumerate(doubled):
        shapes |= {f"decoder.{2 * level}.block.0.weight": (width, width, 3, 3),
                   f"decoder.{2 * level}.block.0.bias": (width,)}
        if level < 3:
            nxt, prefix = doubled[level + 1], f"decoder.{2 * level + 1}.block"
            shapes |= {f"{prefix}.0.weight": (nxt, width, 3, 3), f"{prefix}.0.bias": (nxt,),
                       f"{prefix}.2.cSE.fc1.weight": (nxt // 2, nxt), f"{prefix}.2.cSE.fc1.bias": (nxt // 2,),
                       f"{prefix}.2.cSE.fc2.weight": (nxt, nxt // 2), f"{prefix}.2.cSE.fc2.bias": (nxt,),
                       f"{prefix}.2.sSE.conv.weight": (1, nxt, 1, 1), f"{prefix}.2.sSE.conv.bias": (1,)}
    shapes |= {"final.weight": (inner, doubled[-1], 3, 3), "final.bias": (inner,),
               "final2.weight": (bands, inner, 3, 3), "final2.bias": (bands,)}
    return shapes


def random_state_dict(shapes: dict[str, tuple], seed: int) -> dict[str, torch.Tensor]:
    """Seeded weights with O(1) activations: weights ~ N(0, 1/fan_in), norms ~ 1 ± 0.2, biases ~ N(0, 0.1²)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        values = torch.randn(shape, generator=generator)
        if "groupnorm" in key and key.endswith("weight"):
            state[key] = 1 + 0.2 * values
        elif key.endswith("bias"):
            state[key] = 0.1 * values
        else:
            fan_in = shape[0] * math.prod(shape[2:]) if key.startswith(("up1.conv20", "up2", "up3")) else \
                math.prod(shape[1:])
            state[key] = values / math.sqrt(fan_in)
    return state


def hand_cosine_buffers() -> dict[str, torch.Tensor]:
    """The 12 float32 buffers `GaussianDiffusion.set_new_noise_schedule` stores for the cosine schedule (T=1000),
    evaluated here in Python doubles."""
    def alpha_bar(tau: float) -> float:
        return math.cos((tau + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar((i + 1) / 1000) / alpha_bar(i / 1000), 0.999) for i in range(1000)]
    cumprod, product = [], 1.0
    for beta in betas:
        product *= 1 - beta
        cumprod.append(product)
    prev = [1.0] + cumprod[:-1]
    variance = [b * (1 - p) / (1 - c) for b, p, c in zip(betas, prev, cumprod)]
    tables = {
        "betas": betas, "alphas_cumprod": cumprod, "alphas_cumprod_prev": prev,
        "sqrt_alphas_cumprod": [math.sqrt(c) for c in cumprod],
        "sqrt_one_minus_alphas_cumprod": [math.sqrt(1 - c) for c in cumprod],
        "log_one_minus_alphas_cumprod": [math.log(1 - c) for c in cumprod],
        "sqrt_recip_alphas_cumprod_1": [math.sqrt(1 / c) for c in cumprod],
        "sqrt_recipm1_alphas_cumprod_1": [math.sqrt(1 / c - 1) for c in cumprod],
        "posterior_variance": variance,
        "posterior_log_variance_clipped": [math.log(max(v, 1e-20)) for v in variance],
        "posterior_mean_coef1": [b * math.sqrt(p) / (1 - c) for b, p, c in zip(betas, prev, cumprod)],
        "posterior_mean_coef2": [(1 - p) * math.sqrt(1 - b) / (1 - c) for b, p, c in zip(betas, prev, cumprod)],
    }
    return {name: torch.tensor(values, dtype=torch.float64).float() for name, values in tables.items()}


def wrapper_state_dict(bare: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What an official `I{iter}_E{epoch}_gen.pth` of a stage-1 U-Net holds."""
    return {**{f"denoise_fn.{k}": v for k, v in bare.items()}, **hand_cosine_buffers()}


# ---- the official forward, straight-line --------------------------------------------------------------------------

GROUPS = {"res3": 4, "down1": 32, "down2": 32, "up1": 32, "groupnorm2": 32, "groupnorm3": 32, "groupnorm4": 4,
          "groupnorm5": 4}


def reference_time_embedding(sd, t: torch.Tensor, cos_first: bool = True) -> torch.Tensor:
    """gamma_embedding(t, 32): float32 freqs exp(−ln(1e4)·k/16), [cos | sin]; then Linear and SiLU."""
    freqs = torch.exp(-math.log(10000) * torch.arange(0, 16, dtype=torch.float32) / 16)
    args = t.reshape(-1).float()[:, None] * freqs[None]
    halves = [torch.cos(args), torch.sin(args)]
    encoding = torch.cat(halves if cos_first else halves[::-1], dim=-1)
    linear = encoding @ sd["embed.0.weight"].T + sd["embed.0.bias"]
    return linear * torch.sigmoid(linear)


def _add_time(h, sd, dense, e):
    return h + (e @ sd[f"{dense}.weight"].T + sd[f"{dense}.bias"])[:, :, None, None]


def _norm_silu(h, sd, norm, groups):
    h = F.group_norm(h, groups, sd[f"{norm}.weight"], sd[f"{norm}.bias"], eps=1e-5)
    return h * torch.sigmoid(h)


def reference_unet(sd, x_t, cond, t, cos_first: bool = True) -> tuple[list[torch.Tensor], torch.Tensor]:
    """`Multi_branch_Unet.forward(x_t, t, cond, feat_need=True)` → (fe = [h1, h2, h3, h4], ε)."""
    e = reference_time_embedding(sd, t, cos_first)
    h1 = F.conv2d(torch.cat([x_t, cond], dim=1), sd["conv1.weight"], sd["conv1.bias"], padding=1)
    fe = [h1]
    for name in ("res3", "down1", "down2"):
        h = _norm_silu(_add_time(fe[-1], sd, f"{name}.dense1.dense", e), sd, f"{name}.groupnorm1", GROUPS[name])
        fe.append(F.conv2d(h, sd[f"{name}.conv20.weight"], sd[f"{name}.conv20.bias"], stride=2, padding=1))
    h1, h2, h3, h4 = fe
    h = _norm_silu(_add_time(h4, sd, "up1.dense1.dense", e), sd, "up1.groupnorm1", 32)
    h = F.conv_transpose2d(h, sd["up1.conv20.weight"], sd["up1.conv20.bias"], stride=2, padding=1, output_padding=1)
    for index, skip, up in ((2, h3, "up2"), (3, h2, "up3")):
        h = _norm_silu(_add_time(h, sd, f"dense{index}.dense", e), sd, f"groupnorm{index}", GROUPS[f"groupnorm{index}"])
        h = F.conv_transpose2d(torch.cat([h, skip], dim=1), sd[f"{up}.weight"], sd[f"{up}.bias"], stride=2,
                               padding=1, output_padding=1)
    h = _norm_silu(_add_time(h, sd, "dense4.dense", e), sd, "groupnorm4", 4)
    h = F.conv2d(torch.cat([h, h1], dim=1), sd["final1.weight"], sd["final1.bias"], padding=1)
    h = _norm_silu(_add_time(h, sd, "dense5.dense", e), sd, "groupnorm5", 4)
    eps = F.conv2d(torch.cat([h, x_t, cond], dim=1), sd["final2.weight"], sd["final2.bias"], padding=1)
    return fe, eps


def reference_fusion(sd, ms0, feats_a, feats_b, leaky_gates: bool = True) -> torch.Tensor:
    """`FusionNet.forward(PAN, MS, [feats_a], [feats_b])` with one time step, its loop kept as upstream runs it
    (decoder.6 computed, then discarded). Upsampling ×2 by pixel repetition (what 'area' does at ×2)."""
    gate = F.leaky_relu if leaky_gates else torch.sigmoid

    def conv(prefix, x, padding=1):
        return F.conv2d(x, sd[f"{prefix}.weight"], sd[f"{prefix}.bias"], padding=padding)

    def attention(prefix, x):
        y = F.leaky_relu(conv(f"{prefix}.block.0", x), 0.01)
        squeezed = y.reshape(y.shape[0], y.shape[1], -1).mean(dim=2)
        hidden = F.relu(squeezed @ sd[f"{prefix}.block.2.cSE.fc1.weight"].T + sd[f"{prefix}.block.2.cSE.fc1.bias"])
        channel = gate(hidden @ sd[f"{prefix}.block.2.cSE.fc2.weight"].T + sd[f"{prefix}.block.2.cSE.fc2.bias"])
        spatial = gate(conv(f"{prefix}.block.2.sSE.conv", y, padding=0))
        return y * channel[:, :, None, None] + y * spatial

    lvl, x, diff = 0, None, None
    for index in range(7):
        if index % 2 == 0:
            diff = F.leaky_relu(conv(f"decoder.{index}.block.0",
                                     torch.cat([feats_a[3 - lvl], feats_b[3 - lvl]], dim=1)), 0.01)
            if lvl != 0:
                diff = diff + x
            lvl += 1
        else:
            diff = attention(f"decoder.{index}", diff)
            x = diff.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    result = conv("final2", F.leaky_relu(conv("final", x), 0.01))
    return ms0 + result


# ---- keys, shapes, counts -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("bands", [4, 8])
@pytest.mark.parametrize("direction", ["p2m", "m2p"])
def test_official_size_keys_and_shapes(direction, bands):
    with torch.device("meta"):
        net = rsinfer.models.build("crossdiff-unet", direction=direction, channels=list(OFFICIAL),
                                   spectrun_num=bands)
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == official_unet_shapes(direction, OFFICIAL,
                                                                                              bands)


@pytest.mark.parametrize("bands", [4, 8])
def test_fusion_official_size_keys_and_shapes(bands):
    with torch.device("meta"):
        head = rsinfer.models.build("crossdiff-fusion", spectral_num=bands, channel_multiplier=[32, 64, 128, 256],
                                    inner_channel=32, time_steps=[50])
    assert {k: tuple(v.shape) for k, v in head.state_dict().items()} == official_fusion_shapes(bands)


@pytest.mark.parametrize("bands, p2m, m2p, fusion", [(4, 1_087_320, 1_086_318, 4_789_895),
                                                     (8, 1_090_096, 1_087_506, 4_791_051)])
def test_parameter_counts_equal_the_official_ones(bands, p2m, m2p, fusion):
    with torch.device("meta"):
        nets = {"p2m": rsinfer.models.build("crossdiff-unet", direction="p2m", spectrun_num=bands),
                "m2p": rsinfer.models.build("crossdiff-unet", direction="m2p", spectrun_num=bands),
                "fusion": rsinfer.models.build("crossdiff-fusion", spectral_num=bands)}
    counts = {name: sum(p.numel() for p in net.parameters()) for name, net in nets.items()}
    assert counts == {"p2m": p2m, "m2p": m2p, "fusion": fusion}
    # the hand-written official layout gives the same numbers
    assert sum(math.prod(s) for s in official_unet_shapes("p2m", OFFICIAL, bands).values()) == p2m
    assert sum(math.prod(s) for s in official_fusion_shapes(bands).values()) == fusion


def test_fusion_constructor_does_not_mutate_its_list():
    widths = [32, 64, 128, 256]
    head = rsinfer.models.build("crossdiff-fusion", channel_multiplier=widths)
    assert widths == [32, 64, 128, 256]
    assert head.config.widths == (256, 128, 64, 32)  # used sorted decreasing, as upstream sorts in place


# ---- reduced widths and the GroupNorm rule ------------------------------------------------------------------------

def test_reduced_channels_keep_the_official_group_counts():
    net = rsinfer.models.build("crossdiff-unet", direction="m2p", channels=[8, 32, 32, 64], spectrun_num=3)
    groups = {name: module.num_groups for name, module in net.named_modules() if isinstance(module, torch.nn.GroupNorm)}
    assert groups == {"res3.groupnorm1": 4, "down1.groupnorm1": 32, "down2.groupnorm1": 32, "up1.groupnorm1": 32,
                      "groupnorm2": 32, "groupnorm3": 32, "groupnorm4": 4, "groupnorm5": 4}
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == official_unet_shapes("m2p", SMALL, 3)


@pytest.mark.parametrize("channels, index, groups", [([8, 16, 32, 64], 1, 32), ([6, 32, 32, 32], 0, 4),
                                                     ([32, 64, 128, 200], 3, 32)])
def test_channels_that_break_the_group_counts_raise(channels, index, groups):
    with pytest.raises(ValueError, match=rf"channels\[{index}\] = {channels[index]} is not a multiple of {groups}") \
            as err:
        rsinfer.models.build("crossdiff-unet", channels=channels)
    assert "e.g. [8, 32, 32, 64]" in str(err.value)


@pytest.mark.parametrize("overrides, message", [
    (dict(channels=[32, 64, 128]), "four positive integers"),
    (dict(direction="pan2ms"), "direction 'pan2ms' is not one of"),
    (dict(spectrun_num=0), "spectrun_num must be a positive integer"),
    (dict(channel=[32, 64, 128, 256]), "unknown crossdiff-unet config option"),
])
def test_bad_unet_options_raise(overrides, message):
    with pytest.raises(ValueError, match=message):
        rsinfer.models.build("crossdiff-unet", **overrides)


@pytest.mark.parametrize("overrides, message", [
    (dict(time_steps=[50, 100]), "one integer step"),
    (dict(channel_multiplier=[32, 64, 128]), "4 positive integers"),
    (dict(spectral_num=0), "spectral_num must be a positive integer"),
])
def test_bad_fusion_options_raise(overrides, message):
    with pytest.raises(ValueError, match=message):
        rsinfer.models.build("crossdiff-fusion", **overrides)


# ---- loading ------------------------------------------------------------------------------------------------------

def _small(direction: str, bands: int = 4):
    return rsinfer.models.build("crossdiff-unet", direction=direction, channels=list(SMALL), spectrun_num=bands)


@pytest.fixture(scope="module")
def p2m_weights() -> dict[str, torch.Tensor]:
    return random_state_dict(official_unet_shapes("p2m", SMALL, 4), seed=11)


@pytest.mark.parametrize("form", ["wrapper", "bare"])
def test_both_checkpoint_forms_load_strictly(p2m_weights, form, tmp_path):
    state = wrapper_state_dict(p2m_weights) if form == "wrapper" else dict(p2m_weights)
    net = _small("p2m")
    net.load_state_dict(state)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in p2m_weights.items())
    path = tmp_path / "I1_E1_gen.pth"
    torch.save(state, path)
    loaded = rsinfer.models.load("crossdiff-unet", path, direction="p2m", channels=list(SMALL), spectrun_num=4)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in p2m_weights.items())
    assert not loaded.training


def test_float32_rounding_of_the_buffers_is_accepted(p2m_weights):
    state = wrapper_state_dict(p2m_weights)
    state["alphas_cumprod"] = torch.nextafter(state["alphas_cumprod"], torch.tensor(2.0))  # one ulp up everywhere
    _small("p2m").load_state_dict(state)


@pytest.mark.parametrize("buffer, step, factor", [("betas", 123, 1 + 1e-4), ("posterior_mean_coef2", 999, 1.01),
                                                  ("sqrt_recip_alphas_cumprod_1", 0, 1 + 2e-5)])
def test_tampered_schedule_buffer_is_reported(p2m_weights, buffer, step, factor):
    state = wrapper_state_dict(p2m_weights)
    state[buffer] = state[buffer].clone()
    state[buffer][step] *= factor
    with pytest.raises(ValueError, match=rf"schedule buffer '{buffer}' does not match the cosine schedule.*"
                                         rf"max relative deviation .* at step {step}.*tolerance 1e-06"):
        _small("p2m").load_state_dict(state)


def test_a_linear_schedule_is_reported(p2m_weights):
    state = wrapper_state_dict(p2m_weights)
    state["betas"] = torch.linspace(1e-6, 1e-2, 1000)
    with pytest.raises(ValueError, match="schedule buffer 'betas' does not match"):
        _small("p2m").load_state_dict(state)


def test_missing_schedule_buffer_is_reported(p2m_weights):
    state = wrapper_state_dict(p2m_weights)
    del state["posterior_variance"]
    with pytest.raises(ValueError, match=r"lacks the schedule buffer\(s\) \['posterior_variance'\]"):
        _small("p2m").load_state_dict(state)


def _mutations(weights):
    missing = {f"denoise_fn.{k}": v for k, v in weights.items() if k != "down1.conv20.bias"}
    unexpected = {f"denoise_fn.{k}": v for k, v in weights.items()} | {"denoise_fn.res1.conv20.weight": torch.ones(1)}
    misshaped = dict(weights) | {"groupnorm2.weight": torch.ones(7)}
    bare_with_buffers = dict(weights) | {"betas": hand_cosine_buffers()["betas"]}
    return {"missing": (missing, r"1 missing keys: down1\.conv20\.bias"),
            "unexpected": (unexpected, r"1 unexpected keys: res1\.conv20\.weight"),
            "misshaped": (misshaped, r"1 mis-shaped keys: groupnorm2\.weight \(checkpoint \(7,\), model \(32,\)\)"),
            "bare_with_buffers": (bare_with_buffers, r"1 unexpected keys: betas")}


@pytest.mark.parametrize("case", ["missing", "unexpected", "misshaped", "bare_with_buffers"])
def test_anything_else_raises_listing_the_keys(p2m_weights, case):
    state, message = _mutations(p2m_weights)[case]
    if case in ("missing", "unexpected"):
        state |= hand_cosine_buffers()
    with pytest.raises(ValueError, match=message):
        _small("p2m").load_state_dict(state)


def test_wrong_direction_and_band_count_are_named(p2m_weights, tmp_path):
    with pytest.raises(ValueError, match=r"checkpoint is a p2m U-Net \(final2 outputs 4 channel\(s\)\), but "
                                         r"direction='m2p'"):
        _small("m2p").load_state_dict(wrapper_state_dict(p2m_weights))
    path = tmp_path / "p2m.pth"
    torch.save(p2m_weights, path)
    with pytest.raises(ValueError, match=r"checkpoint is a 4-band U-Net \(conv1 takes 5 channels\); the network was "
                                         r"built with spectrun_num=8"):
        rsinfer.models.load("crossdiff-unet", path, direction="p2m", channels=list(SMALL), spectrun_num=8)


def test_fusion_head_loads_the_official_dict_strictly(tmp_path):
    weights = random_state_dict(official_fusion_shapes(4, SMALL, 16), seed=5)
    torch.save(weights, tmp_path / "fusion_gen.pth")
    head = rsinfer.models.load("crossdiff-fusion", tmp_path / "fusion_gen.pth", channel_multiplier=list(SMALL),
                               inner_channel=16)
    assert all(torch.equal(head.state_dict()[k], v) for k, v in weights.items())
    del weights["decoder.6.block.0.bias"]  # the discarded level is still part of the checkpoint
    torch.save(weights, tmp_path / "fusion_gen.pth")
    with pytest.raises(ValueError, match=r"1 missing keys: decoder\.6\.block\.0\.bias"):
        rsinfer.models.load("crossdiff-fusion", tmp_path / "fusion_gen.pth", channel_multiplier=list(SMALL),
                            inner_channel=16)


# ---- parity with the official forward -----------------------------------------------------------------------------

@pytest.mark.parametrize("direction, bands", [("p2m", 4), ("m2p", 4), ("p2m", 8), ("m2p", 3)])
def test_unet_matches_the_official_forward(direction, bands):
    weights = random_state_dict(official_unet_shapes(direction, SMALL, bands), seed=3)
    net = _small(direction, bands)
    net.load_state_dict(wrapper_state_dict(weights))
    noisy, cond_channels = (bands, 1) if direction == "p2m" else (1, bands)
    x_t, cond = torch.randn(2, noisy, 24, 40), torch.randn(2, cond_channels, 24, 40)
    t = torch.tensor([50, 917])
    with torch.no_grad():
        ref_features, ref_eps = reference_unet(weights, x_t, cond, t)
        eps, features = net(x_t, cond, t), net.encode(x_t, cond, t)
        swapped_halves = reference_unet(weights, x_t, cond, t, cos_first=False)[1]
    assert eps.shape == (2, noisy, 24, 40)
    assert_matches_reference(eps, ref_eps)
    assert len(features) == 4
    for feature, ref in zip(features, ref_features):
        assert_matches_reference(feature, ref)
    assert relative_error(eps, swapped_halves) > 1e-3  # the test tells cos-first from sin-first


def test_unet_official_size_matches_the_official_forward():
    weights = random_state_dict(official_unet_shapes("p2m", OFFICIAL, 4), seed=8)
    net = rsinfer.models.build("crossdiff-unet", direction="p2m", channels=list(OFFICIAL), spectrun_num=4)
    net.load_state_dict(weights)
    x_t, cond = torch.randn(1, 4, 16, 24), torch.randn(1, 1, 16, 24)
    with torch.no_grad():
        ref_features, ref_eps = reference_unet(weights, x_t, cond, torch.tensor([50]))
        assert_matches_reference(net(x_t, cond, torch.tensor([50])), ref_eps)
        for feature, ref in zip(net.encode(x_t, cond, torch.tensor([50])), ref_features):
            assert_matches_reference(feature, ref)


def test_time_encoding_is_cos_half_first_at_integer_steps():
    t = torch.tensor([50, 1, 1000])
    k = torch.arange(16, dtype=torch.float64)
    angles = t.double()[:, None] * torch.exp(-math.log(10000.0) * k / 16)[None]
    expected = torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)
    encoding = timestep_encoding(t, 32)
    assert encoding.dtype == torch.float32
    torch.testing.assert_close(encoding.double(), expected, rtol=0, atol=2e-5)
    assert abs(float(encoding[0, 0]) - math.cos(50.0)) < 1e-6  # k = 0 (frequency 1): cos first
    assert abs(float(encoding[0, 16]) - math.sin(50.0)) < 1e-6


def test_unet_rejects_bad_inputs():
    net = _small("p2m")
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.randn(1, 4, 20, 24), torch.randn(1, 1, 20, 24), torch.tensor([50]))
    with pytest.raises(ValueError, match="takes x_t with 4 and cond with 1 channels, got 1 and 4"):
        net.encode(torch.randn(1, 1, 16, 16), torch.randn(1, 4, 16, 16), torch.tensor([50]))
    with pytest.raises(ValueError, match="one step per sample"):
        net.encode(torch.randn(2, 4, 16, 16), torch.randn(2, 1, 16, 16), torch.tensor([50, 50, 50]))


def _fusion_inputs(widths, bands, height, width, seed):
    generator = torch.Generator().manual_seed(seed)

    def features():
        return [torch.randn(2, w, height >> k, width >> k, generator=generator) for k, w in enumerate(widths)]

    return torch.rand(2, bands, height, width, generator=generator), features(), features()


@pytest.mark.parametrize("bands, widths, inner", [(4, SMALL, 16), (8, (16, 24, 40, 48), 8)])
def test_fusion_matches_the_official_forward(bands, widths, inner):
    weights = random_state_dict(official_fusion_shapes(bands, widths, inner), seed=2)
    head = rsinfer.models.build("crossdiff-fusion", spectral_num=bands, channel_multiplier=list(widths),
                                inner_channel=inner)
    head.load_state_dict(weights)
    ms0, p2m, m2p = _fusion_inputs(widths, bands, 24, 32, seed=4)
    with torch.no_grad():
        out = head(ms0, p2m, m2p)
        ref = reference_fusion(weights, ms0, p2m, m2p)
        p2m_second = reference_fusion(weights, ms0, m2p, p2m)
        sigmoid_gates = reference_fusion(weights, ms0, p2m, m2p, leaky_gates=False)
    assert_matches_reference(out - ms0, ref - ms0)  # the residual, not the MS-dominated output
    # the test can see which features come first and which gates are used
    assert relative_error(out - ms0, p2m_second - ms0) > 1e-2
    assert relative_error(out - ms0, sigmoid_gates - ms0) > 1e-2


def test_fusion_discarded_level_and_area_upsampling():
    weights = random_state_dict(official_fusion_shapes(4, SMALL, 16), seed=9)
    head = rsinfer.models.build("crossdiff-fusion", channel_multiplier=list(SMALL), inner_channel=16)
    head.load_state_dict(weights)
    ms0, p2m, m2p = _fusion_inputs(SMALL, 4, 16, 24, seed=1)
    with torch.no_grad():
        out = head(ms0, p2m, m2p)
        head.decoder[6].block[0].weight.fill_(float("nan"))  # decoder.6 never reaches the output upstream
        assert torch.equal(head(ms0, p2m, m2p), out)
        p2m[0] = torch.full_like(p2m[0], float("nan"))  # nor does h1
        assert torch.equal(head(ms0, p2m, m2p), out)
    x = torch.randn(2, 3, 5, 7)
    assert torch.equal(F.interpolate(x, size=(10, 14), mode="area"), x.repeat_interleave(2, 2).repeat_interleave(2, 3))


def test_fusion_rejects_mismatched_features():
    head = rsinfer.models.build("crossdiff-fusion", channel_multiplier=list(SMALL), inner_channel=16)
    ms0, p2m, m2p = _fusion_inputs(SMALL, 4, 16, 24, seed=1)
    with pytest.raises(ValueError, match=r"m2p h3 has shape \(2, 32, 2, 6\), expected \(2, 32, 4, 6\)"):
        head(ms0, p2m, m2p[:2] + [m2p[2][:, :, :2]] + m2p[3:])
    with pytest.raises(ValueError, match=r"p2m features must be \[h1, h2, h3, h4\]"):
        head(ms0, p2m[1:], m2p)
