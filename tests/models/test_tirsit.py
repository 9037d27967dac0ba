"""The TIRSIT network: parameter count, the feature mask (eq. 1-3), the whole forward against an independent functional
U-Net, η = 1 as the unguided U-Net, any H × W, the receptive margin, config options and the strict key layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rsinfer import models
from rsinfer.models import tirsit
from rsinfer.models.tirsit import FeatureMask, TirsitConfig, build, reflect_pad
from tests.numerics import relative_error

TINY = dict(widths=(4, 8, 16), kernel_size=4)


def randomise_batch_norm(net: torch.nn.Module) -> torch.nn.Module:
    """Running statistics and affine parameters away from their (identity) initial values, so eval-mode BatchNorm is
    not a no-op in the comparisons."""
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            with torch.no_grad():
                module.running_mean.normal_(0, 0.3)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.2)
    return net.eval()


def inputs(batch: int, height: int, width: int, source: int = 2, target: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(batch, source, height, width), torch.rand(batch, target, height, width)


def reference_forward(net: tirsit.TirsitNet, source_diff: torch.Tensor, guide: torch.Tensor | None) -> torch.Tensor:
    """The network written out functionally from its weights (numpy-reflect padding, conv, BatchNorm, activations,
    eq. 1-3 with torch.var); guide None: the unguided U-Net, E_guidance and the masks removed."""
    config = net.config
    m, k = 2 ** len(config.widths), config.kernel_size
    p = (k - 1) // 2
    height, width = source_diff.shape[-2:]
    pads = ((0, 0), (0, 0), (0, -height % m), (0, -width % m))

    def pad(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.pad(x.numpy(), pads, mode="reflect"))

    def norm(x: torch.Tensor, module: torch.nn.Module) -> torch.Tensor:
        if isinstance(module, torch.nn.BatchNorm2d):
            return F.batch_norm(x, module.running_mean, module.running_var, module.weight, module.bias,
                                eps=module.eps)
        return x

    def encode(x: torch.Tensor, level: tirsit.EncoderLevel) -> torch.Tensor:
        x = F.conv2d(x, level.conv.weight, level.conv.bias, stride=2, padding=p)
        return F.leaky_relu(norm(x, level.norm), config.leaky_slope)

    f, g = pad(source_diff), pad(guide) if guide is not None else None
    skips = []
    for n in range(len(config.widths)):
        f = encode(f, net.input_encoder[n])
        unmasked = f
        if g is not None:
            g = encode(g, net.guidance_encoder[n])
            standardised = (g - g.mean((2, 3), keepdim=True)) / torch.sqrt(
                g.var((2, 3), unbiased=False, keepdim=True) + config.std_epsilon)
            f = ((1 - config.eta) * torch.sigmoid(standardised) + config.eta) * f
        skips.append(f if config.skip_features == "masked" else unmasked)
    x = f
    for n in reversed(range(len(config.widths))):
        level = net.decoder[n]
        x = F.conv_transpose2d(x, level.conv.weight, level.conv.bias, stride=2, padding=p, output_padding=2 + 2 * p - k)
        x = norm(x, level.norm)
        if n > 0:
            x = F.relu(x) if config.decoder_activation == "relu" else F.leaky_relu(x, config.leaky_slope)
            x = torch.cat([x, skips[n - 1]], 1)
        elif config.output_activation == "tanh":
            x = torch.tanh(x)
    return x[..., :height, :width]


def test_default_parameter_count_is_in_the_docstring_and_follows_from_the_layers() -> None:
    net = models.build("tirsit", source_channels=2, target_channels=3)
    count = sum(p.numel() for p in net.parameters())
    assert net.config == TirsitConfig()
    # Written out from the layer list: 4×4 kernels; a bias where no BatchNorm follows (first encoder level, last
    # decoder level); BatchNorm weight + bias elsewhere.
    widths, k = (32, 64, 128, 256, 256), 4

    def encoder(c_in: int) -> int:
        total, previous = 0, c_in
        for n, w in enumerate(widths):
            total += k * k * previous * w + (w if n == 0 else 2 * w)
            previous = w
        return total

    decoder_in = [256 * 2, 128 * 2, 64 * 2, 32 * 2]  # levels 3 … 0 after concatenation; level 4 takes 256
    decoder = k * k * 256 * 256 + 2 * 256  # level 4 → level 3 resolution, 256 channels
    for c_in, c_out in zip(decoder_in, [128, 64, 32]):
        decoder += k * k * c_in * c_out + 2 * c_out
    decoder += k * k * 64 * 3 + 3  # level 0 → the image, with bias, no norm
    assert count == encoder(2) + encoder(3) + decoder == 5_907_715
    assert f"{count:,}" in tirsit.__doc__
    for part, expected in (("input_encoder", encoder(2)), ("guidance_encoder", encoder(3)), ("decoder", decoder)):
        assert sum(p.numel() for p in getattr(net, part).parameters()) == expected
        assert f"{expected:,}" in tirsit.__doc__


def test_feature_mask_hand_values_and_range() -> None:
    # One channel holding [0, 2]: mean 1, std 1, standardised [−1, 1]; mask = 0.5·σ(∓1) + 0.5.
    mask = FeatureMask(eta=0.5, epsilon=1e-12)(torch.tensor([[[[0.0, 2.0]]]]))
    sigmoid_one = 1 / (1 + math.exp(-1))
    assert torch.allclose(mask, torch.tensor([[[[0.5 + 0.5 * (1 - sigmoid_one), 0.5 + 0.5 * sigmoid_one]]]]),
                          atol=1e-7, rtol=0)
    for eta in (0.0, 0.3, 0.5, 1.0):
        features = torch.randn(3, 5, 7, 9) * 50 + torch.randn(1, 5, 1, 1) * 1e3
        mask = FeatureMask(eta, 1e-5)(features)
        assert mask.min() >= eta and mask.max() <= 1


def test_feature_mask_standardises_each_channel_of_each_sample() -> None:
    features = torch.randn(2, 4, 11, 6)
    scale, shift = torch.rand(2, 4, 1, 1) * 20 + 0.5, torch.randn(2, 4, 1, 1) * 100
    module = FeatureMask(eta=0.25, epsilon=1e-10)
    mask = module(features)
    # Hand check: per (sample, channel) z-score over H × W with the biased std.
    mean = features.mean((2, 3), keepdim=True)
    std = torch.sqrt(((features - mean) ** 2).mean((2, 3), keepdim=True))
    expected = 0.75 * torch.sigmoid((features - mean) / std) + 0.25
    assert relative_error(mask, expected) <= 1e-6
    # Invariant to a per-channel affine change of the guide features (the norm is removed, the pattern kept).
    assert relative_error(module(features * scale + shift), mask) <= 1e-5
    # Channels do not see each other: changing channel 0 leaves the others' masks untouched.
    changed = features.clone()
    changed[:, 0] = torch.randn(2, 11, 6)
    assert torch.equal(module(changed)[:, 1:], mask[:, 1:])


@pytest.mark.parametrize("options", [dict(), dict(skip_features="unmasked"), dict(kernel_size=3, eta=0.2),
                                     dict(decoder_activation="leaky_relu", output_activation="none", kernel_size=5)])
def test_forward_matches_an_independent_functional_unet(options: dict) -> None:
    net = randomise_batch_norm(build(**{**TINY, **options}))
    x, g = inputs(2, 19, 26)
    with torch.no_grad():
        assert relative_error(net(x, g), reference_forward(net, x, g)) <= 1e-5


def test_eta_one_turns_guidance_off_and_gives_the_unguided_unet() -> None:
    net = randomise_batch_norm(build(**TINY, eta=1.0))
    x, g = inputs(2, 24, 21)
    other_guide = torch.randn_like(g) * 10
    with torch.no_grad():
        out = net(x, g)
        assert torch.equal(out, net(x, other_guide))
        assert relative_error(out, reference_forward(net, x, None)) <= 1e-5
        guided = randomise_batch_norm(build(**TINY))
        guided.load_state_dict(net.state_dict())
        assert relative_error(guided(x, g), out) > 1e-2  # at η = 0.5 the guide does change the output


@pytest.mark.parametrize("height, width", [(37, 53), (8, 8), (1, 13), (64, 24), (5, 3)])
def test_any_height_width_is_padded_by_reflection_and_cropped(height: int, width: int) -> None:
    net = randomise_batch_norm(build(**TINY))
    x, g = inputs(2, height, width)
    with torch.no_grad():
        out = net(x, g)
        expected = reference_forward(net, x, g)  # numpy's reflect padding, whatever the pad size
    assert out.shape == (2, 3, height, width)
    assert relative_error(out, expected) <= 1e-5


@pytest.mark.parametrize("size, before, after", [(7, 3, 5), (4, 9, 14), (2, 5, 6), (1, 0, 7), (9, 0, 0)])
def test_reflect_pad_matches_numpy_for_any_pad(size: int, before: int, after: int) -> None:
    x = torch.randn(1, 2, size, size + 3)
    expected = np.pad(x.numpy(), ((0, 0), (0, 0), (before, after), (after, before)), mode="reflect")
    assert torch.equal(reflect_pad(x, before, after, after, before), torch.from_numpy(expected))


@pytest.mark.parametrize("options", [dict(), dict(kernel_size=3), dict(kernel_size=5), dict(kernel_size=2),
                                     dict(widths=(4, 8))])
def test_receptive_margin_is_the_exact_reach_of_the_convolutions(options: dict) -> None:
    net = build(**{**TINY, **options, "eta": 1.0}).eval()  # η = 1: no global statistics, only the convolutions
    margin, multiple = net.receptive_margin, net.config.size_multiple
    width = 4 * margin + 4 * multiple
    x = torch.randn(1, 2, 4, width, requires_grad=True)
    out = net(x, torch.rand(1, 3, 4, width))
    reach = 0
    for column in range(2 * margin, 2 * margin + multiple):  # every phase of the 2^L grid
        (grad,) = torch.autograd.grad(out[0, :, 2, column].sum(), x, retain_graph=True)
        read = grad[0].abs().sum((0, 1)).nonzero().flatten()
        reach = max(reach, column - int(read.min()), int(read.max()) - column)
    assert reach == margin


def test_samples_in_a_batch_are_independent() -> None:
    net = randomise_batch_norm(build(**TINY))
    x, g = inputs(3, 16, 20)
    with torch.no_grad():
        together = net(x, g)
        alone = torch.cat([net(x[i:i + 1], g[i:i + 1]) for i in range(3)])
    assert relative_error(together, alone) <= 1e-6


def test_instance_norm_option_has_no_norm_parameters_and_normalises_per_sample() -> None:
    net = build(**TINY, norm="instance").eval()
    assert not any(".norm." in key for key in net.state_dict())
    assert net.input_encoder[1].conv.bias is None and net.input_encoder[0].conv.bias is not None
    x, g = inputs(1, 16, 16)
    with torch.no_grad():
        out = net(x, g)
        assert relative_error(net(x * 3 + 1, g), out) > 1e-3  # the first level is not normalised
        assert out.shape == (1, 3, 16, 16) and torch.isfinite(out).all()


@pytest.mark.parametrize("bad, match", [(dict(norm="group"), "norm"), (dict(skip_features="both"), "skip_features"),
                                        (dict(eta=1.5), "eta"), (dict(kernel_size=1), "kernel_size"),
                                        (dict(widths=()), "widths"), (dict(std_epsilon=0.0), "std_epsilon"),
                                        (dict(output_activation="sigmoid"), "output_activation"),
                                        (dict(source_channels=0), "source_channels"), (dict(depth=5), "unknown")])
def test_bad_config_names_the_value_and_what_is_allowed(bad: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build(**{**TINY, **bad})


def test_wrong_input_shapes_raise() -> None:
    net = build(**TINY).eval()
    with pytest.raises(ValueError, match=r"source_diff must be \(B, 2, H, W\)"):
        net(torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"guide must be \(B, 3, H, W\)"):
        net(torch.randn(1, 2, 8, 8), torch.randn(1, 2, 8, 8))
    with pytest.raises(ValueError, match="must match source_diff"):
        net(torch.randn(1, 2, 8, 8), torch.randn(1, 3, 8, 9))


def test_key_layout_and_strict_load_round_trip(tmp_path) -> None:
    from safetensors.torch import save_file

    net = randomise_batch_norm(build(source_channels=4, target_channels=2, **TINY))
    state = net.state_dict()
    assert {k.split(".")[0] for k in state} == {"input_encoder", "guidance_encoder", "decoder"}
    assert {"input_encoder.0.conv.bias", "guidance_encoder.2.norm.running_var", "decoder.0.conv.bias",
            "decoder.2.conv.weight", "decoder.1.norm.weight"} <= set(state)
    assert state["decoder.0.conv.weight"].shape == (8, 2, 4, 4)  # ConvTranspose: (in, out, k, k), 2·4 → 2 bands
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "tirsit.safetensors")
    loaded = models.load("tirsit", tmp_path / "tirsit.safetensors", source_channels=4, target_channels=2, **TINY)
    x, g = inputs(1, 20, 12, source=4, target=2)
    with torch.no_grad():
        assert torch.equal(loaded(x, g), net(x, g))

    renamed = {k.replace("guidance_encoder", "guide_encoder"): v for k, v in state.items()}
    save_file({k: v.contiguous() for k, v in renamed.items()}, tmp_path / "renamed.safetensors")
    with pytest.raises(ValueError, match=r"missing keys: guidance_encoder.*unexpected keys: guide_encoder"):
        models.load("tirsit", tmp_path / "renamed.safetensors", source_channels=4, target_channels=2, **TINY)
    # Weights for other band counts: the first E_input convolution does not fit.
    with pytest.raises(ValueError, match=r"mis-shaped keys: input_encoder.0.conv.weight"):
        models.load("tirsit", tmp_path / "tirsit.safetensors", source_channels=2, target_channels=2, **TINY)
