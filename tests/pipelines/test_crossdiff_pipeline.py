"""CrossDiff pansharpening pipeline: the official per-tile recipe (parity_semantics.md, CrossDiff part) against a
straight-line re-implementation written here (bicubic ×4 by its kernel, the noise coefficients from the cosine
schedule in Python doubles, the official U-Net and fusion forwards of tests/models/test_crossdiff.py), the residual
sr_raw − ms_up and the features checked rather than the clamped output; window-seeded noise; padding; bad input.
"""

from __future__ import annotations

import math

import pytest
import torch

import rsinfer.models
from rsinfer.pipelines import CrossDiff
from rsinfer.tiling import Window
from tests.models.test_crossdiff import (OFFICIAL, SMALL, official_fusion_shapes, official_unet_shapes,
                                         random_state_dict, reference_fusion, reference_unet, wrapper_state_dict)
from tests.numerics import assert_matches_reference, relative_error


# ---- the official recipe, by hand ---------------------------------------------------------------------------------

def bicubic_x4_by_hand(image: torch.Tensor) -> torch.Tensor:
    """torch's bicubic ×4 (align_corners=False, Keys a = −0.75, border taps clamped), as float64 matrices."""
    a = -0.75

    def taps(t: float) -> list[float]:
        def near(x):
            return ((a + 2) * x - (a + 3)) * x * x + 1

        def far(x):
            return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

        return [far(t + 1), near(t), near(1 - t), far(2 - t)]

    def matrix(n: int) -> torch.Tensor:
        m = torch.zeros(4 * n, n, dtype=torch.float64)
        for out in range(4 * n):
            source = (out + 0.5) / 4 - 0.5
            first = math.floor(source)
            for index, weight in zip(range(first - 1, first + 3), taps(source - first)):
                m[out, min(max(index, 0), n - 1)] += weight
        return m

    return torch.einsum("oh,bchw,pw->bcop", matrix(image.shape[-2]), image.double(), matrix(image.shape[-1]))


def hand_noise_coefficients(step: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """a = float32(√∏_{i<step}(1 − β_i)) of the cosine schedule, s = √(1 − a²) in float32 (upstream q_sample)."""
    def alpha_bar(tau: float) -> float:
        return math.cos((tau + 0.008) / 1.008 * math.pi / 2) ** 2

    product = 1.0
    for i in range(step):
        product *= 1 - min(1 - alpha_bar((i + 1) / 1000) / alpha_bar(i / 1000), 0.999)
    a = torch.tensor(math.sqrt(product), dtype=torch.float32)
    return a, (1 - a ** 2).sqrt()


def reflect_pad_by_index(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    rows = list(range(x.shape[-2])) + [x.shape[-2] - 2 - k for k in range(height - x.shape[-2])]
    cols = list(range(x.shape[-1])) + [x.shape[-1] - 2 - k for k in range(width - x.shape[-1])]
    return x[..., rows, :][..., cols]


def reference_sharpen(weights, pan_dn, ms_dn, noise, scale=2047.0, mutation=None):
    """Upstream fusion.py for one batch: (sr_raw, ms_up, features) cropped to the input size."""
    height, width = pan_dn.shape[-2:]
    padded = (-(-height // 8) * 8, -(-width // 8) * 8)
    ms_up = (bicubic_x4_by_hand(ms_dn) / scale).float()
    if mutation == "lms_clipped":
        ms_up = ms_up.clamp(0, 1)
    pan0 = reflect_pad_by_index(pan_dn / scale, *padded)
    ms0 = reflect_pad_by_index(ms_up, *padded)
    a, s = hand_noise_coefficients(51 if mutation == "noise_index_plus_one" else 50)
    pan1, ms1 = (pan0, ms0) if mutation == "unit_range" else (pan0 * 2 - 1, ms0 * 2 - 1)
    n_p2m, n_m2p = (torch.zeros_like(noise["p2m"]), torch.zeros_like(noise["m2p"])) if mutation == "no_noise" else \
        (noise["p2m"], noise["m2p"])
    t = torch.full((pan_dn.shape[0],), 50)
    cos_first = mutation != "sin_first"
    fe_p2m = reference_unet(weights["p2m"], a * ms1 + s * n_p2m, pan1, t, cos_first)[0]
    fe_m2p = reference_unet(weights["m2p"], a * pan1 + s * n_m2p, ms1, t, cos_first)[0]
    first, second = (fe_m2p, fe_p2m) if mutation == "m2p_first" else (fe_p2m, fe_m2p)
    sr_raw = reference_fusion(weights["fusion"], ms0, first, second)[..., :height, :width]
    features = {"p2m": fe_p2m, "m2p": fe_m2p}
    features = {k: [f[..., :-(-height // 2 ** i), :-(-width // 2 ** i)] for i, f in enumerate(v)]
                for k, v in features.items()}
    return sr_raw, ms_up, features


# ---- fixtures -----------------------------------------------------------------------------------------------------

def make_pipeline(bands=4, channels=SMALL, inner=16, dn_scale=2047.0, seed=0, weight_seed=1):
    weights = {"p2m": random_state_dict(official_unet_shapes("p2m", channels, bands), weight_seed),
               "m2p": random_state_dict(official_unet_shapes("m2p", channels, bands), weight_seed + 1),
               "fusion": random_state_dict(official_fusion_shapes(bands, channels, inner), weight_seed + 2)}
    nets = {d: rsinfer.models.build("crossdiff-unet", direction=d, channels=list(channels), spectrun_num=bands)
            for d in ("p2m", "m2p")}
    for d, net in nets.items():
        net.load_state_dict(wrapper_state_dict(weights[d]))
    head = rsinfer.models.build("crossdiff-fusion", spectral_num=bands, channel_multiplier=list(channels),
                                inner_channel=inner, time_steps=[50])
    head.load_state_dict(weights["fusion"])
    return CrossDiff(p2m=nets["p2m"], m2p=nets["m2p"], fusion=head, dn_scale=dn_scale, seed=seed), weights


def dn_inputs(batch, bands, height, width, seed=0):
    """PAN and MS in 11-bit DN; the MS has hard edges (0 next to ~2000) so the bicubic overshoots [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    pan = torch.rand(batch, 1, height, width, generator=generator) * 2047
    edges = (torch.rand(batch, bands, height // 4, width // 4, generator=generator) > 0.5).float()
    ms = edges * 1900 + torch.rand(batch, bands, height // 4, width // 4, generator=generator) * 140
    return pan, ms


def given_noise(batch, bands, height, width, seed=3):
    generator = torch.Generator().manual_seed(seed)
    h8, w8 = -(-height // 8) * 8, -(-width // 8) * 8
    return {"p2m": torch.randn(batch, bands, h8, w8, generator=generator),
            "m2p": torch.randn(batch, 1, h8, w8, generator=generator)}


def assert_matches_official(out, reference):
    sr_raw, ms_up, features = reference
    torch.testing.assert_close(out.ms_up, ms_up, rtol=0, atol=2e-6)
    assert_matches_reference(out.sr_raw - out.ms_up, sr_raw - ms_up)  # the residual, ≤ 1e-5 relative
    for name in ("p2m", "m2p"):
        assert len(out.features[name]) == 4
        for feature, ref in zip(out.features[name], features[name]):
            assert_matches_reference(feature, ref)
    assert torch.equal(out.sr, out.sr_raw.clamp(0, 1))


# ---- semantics ----------------------------------------------------------------------------------------------------

def test_noise_coefficients_are_those_of_step_50():
    pipe, _ = make_pipeline()
    a, s = hand_noise_coefficients(50)
    assert pipe.signal_scale.dtype == torch.float32 and torch.equal(pipe.signal_scale, a)
    assert torch.equal(pipe.noise_scale, s)
    assert abs(float(a) - 0.995996) < 5e-7 and abs(float(s) - 0.08940) < 5e-6  # the parity note's values
    assert pipe.feature_step == 50


@pytest.mark.parametrize("bands, height, width", [(4, 32, 40), (8, 32, 40), (4, 36, 44), (3, 28, 12)])
def test_sharpen_matches_the_official_recipe(bands, height, width):
    pipe, weights = make_pipeline(bands)
    pan, ms = dn_inputs(2, bands, height, width)
    noise = given_noise(2, bands, height, width)
    out = pipe.sharpen(pan, ms, noise=noise)
    assert out.sr.shape == out.sr_raw.shape == out.ms_up.shape == (2, bands, height, width)
    with torch.no_grad():
        assert_matches_official(out, reference_sharpen(weights, pan, ms, noise))


def test_official_size_networks_match_the_official_recipe():
    pipe, weights = make_pipeline(4, OFFICIAL, 32, weight_seed=20)
    pan, ms = dn_inputs(1, 4, 32, 32, seed=5)
    noise = given_noise(1, 4, 32, 32)
    with torch.no_grad():
        assert_matches_official(pipe.sharpen(pan, ms, noise=noise), reference_sharpen(weights, pan, ms, noise))


@pytest.mark.parametrize("mutation", ["m2p_first", "noise_index_plus_one", "sin_first", "no_noise", "unit_range",
                                      "lms_clipped"])
def test_each_semantic_point_is_visible_in_the_residual(mutation):
    """Every point of the parity note changes the residual well beyond the 1e-5 tolerance, so the parity test above
    would catch an implementation that got it wrong."""
    pipe, weights = make_pipeline(4)
    pan, ms = dn_inputs(2, 4, 32, 40)
    noise = given_noise(2, 4, 32, 40)
    out = pipe.sharpen(pan, ms, noise=noise)
    with torch.no_grad():
        sr_raw, ms_up, _ = reference_sharpen(weights, pan, ms, noise, mutation=mutation)
    assert relative_error(out.sr_raw - out.ms_up, sr_raw - ms_up) > 1e-4


def test_lms_is_bicubic_on_dn_and_not_clipped():
    pipe, _ = make_pipeline(4)
    pan, ms = dn_inputs(1, 4, 32, 40)
    out = pipe.sharpen(pan, ms, noise=given_noise(1, 4, 32, 40))
    expected = bicubic_x4_by_hand(ms) / 2047
    torch.testing.assert_close(out.ms_up.double(), expected, rtol=0, atol=2e-6)
    assert out.ms_up.min() < -0.01 and out.ms_up.max() > 1.01  # bicubic overshoot kept
    assert out.sr.min() >= 0 and out.sr.max() <= 1


def test_dn_scale_applies_to_pan_and_ms():
    pipe, weights = make_pipeline(4, dn_scale=1023)
    pan, ms = dn_inputs(1, 4, 32, 40)
    pan, ms = pan / 2, ms / 2  # 10-bit DN
    noise = given_noise(1, 4, 32, 40)
    with torch.no_grad():
        assert_matches_official(pipe.sharpen(pan, ms, noise=noise),
                                reference_sharpen(weights, pan, ms, noise, scale=1023.0))


# ---- window-seeded noise ------------------------------------------------------------------------------------------

def test_tiles_see_the_noise_of_the_whole_image_at_their_place():
    pipe, _ = make_pipeline(4, seed=7)
    field = pipe.feature_noise(1, 48, 56)  # the whole 48 x 56 image (no padding needed)
    tiles = [Window(0, 0, 28, 28), Window(12, 20, 28, 28)]  # overlapping; 28 x 28 tiles are padded to 32 x 32
    noise = pipe.feature_noise(2, 28, 28, tiles)
    assert noise["p2m"].shape == (2, 4, 32, 32) and noise["m2p"].shape == (2, 1, 32, 32)
    for index, window in enumerate(tiles):
        rows, cols = slice(window.row, window.row + 32), slice(window.col, window.col + 32)
        for name in ("p2m", "m2p"):
            assert torch.equal(noise[name][index], field[name][0, :, rows, cols])
    assert not torch.equal(pipe.feature_noise(1, 48, 56)["p2m"], make_pipeline(4, seed=8)[0].feature_noise(
        1, 48, 56)["p2m"])
    assert not torch.allclose(field["p2m"][0, 0], field["m2p"][0, 0])  # independent streams


def test_sharpen_draws_window_seeded_noise_by_default():
    pipe, _ = make_pipeline(4, seed=7)
    pan, ms = dn_inputs(2, 4, 28, 28)
    tiles = [Window(0, 0, 28, 28), Window(12, 20, 28, 28)]
    seeded = pipe.sharpen(pan, ms, windows=tiles)
    explicit = pipe.sharpen(pan, ms, noise=pipe.feature_noise(2, 28, 28, tiles))
    assert torch.equal(seeded.sr_raw, explicit.sr_raw)
    one_by_one = [pipe.sharpen(pan[i:i + 1], ms[i:i + 1], windows=[w]).sr_raw for i, w in enumerate(tiles)]
    # independent of the batch it runs in (up to the convolution's batch-dependent summation order)
    assert_matches_reference(torch.cat(one_by_one), seeded.sr_raw, fp32_tol=1e-6)
    whole = pipe.sharpen(pan[:1], ms[:1])  # no windows: Window(0, 0, H, W), the same as the first tile
    assert torch.equal(whole.sr_raw, one_by_one[0])


# ---- bad input ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pipe4():
    return make_pipeline(4)[0]


@pytest.mark.parametrize("pan_shape, ms_shape, message", [
    ((1, 2, 32, 32), (1, 4, 8, 8), "the PAN must have exactly one band, got 2"),
    ((1, 1, 32, 32), (1, 8, 8, 8), "the MS has 8 bands but the networks take 4"),
    ((1, 1, 32, 32), (1, 4, 16, 16), r"the MS must be exactly 1/4 of the PAN .*PAN 32x32, MS 16x16"),
    ((1, 1, 30, 32), (1, 4, 7, 8), r"the MS must be exactly 1/4 of the PAN"),
    ((1, 1, 4, 32), (1, 4, 1, 8), "at least 8x8"),
    ((2, 1, 32, 32), (1, 4, 8, 8), "batch sizes differ"),
    ((1, 32, 32), (1, 4, 8, 8), r"must be \(B, C, H, W\)"),
])
def test_bad_shapes_raise(pipe4, pan_shape, ms_shape, message):
    with pytest.raises(ValueError, match=message):
        pipe4.sharpen(torch.rand(pan_shape) * 2047, torch.rand(ms_shape) * 2047)


def test_non_finite_input_raises(pipe4):
    pan, ms = dn_inputs(1, 4, 32, 32)
    pan[0, 0, 3, 4] = float("nan")
    with pytest.raises(ValueError, match=r"pan_dn holds 1 non-finite value\(s\)"):
        pipe4.sharpen(pan, ms)
    pan, ms = dn_inputs(1, 4, 32, 32)
    ms[0, 2, 1, 1] = float("inf")
    with pytest.raises(ValueError, match=r"ms_dn holds 1 non-finite value\(s\)"):
        pipe4.sharpen(pan, ms)


def test_bad_noise_and_windows_raise(pipe4):
    pan, ms = dn_inputs(1, 4, 36, 44)
    noise = given_noise(1, 4, 36, 36)
    with pytest.raises(ValueError, match=r"noise\['p2m'\] has shape \(1, 4, 40, 40\), expected \(1, 4, 40, 48\)"):
        pipe4.sharpen(pan, ms, noise=noise)
    with pytest.raises(ValueError, match="noise must have the keys"):
        pipe4.sharpen(pan, ms, noise={"p2m": noise["p2m"]})
    with pytest.raises(ValueError, match=r"one Window per sample \(1\), got 2"):
        pipe4.sharpen(pan, ms, windows=[Window(0, 0, 36, 44)] * 2)
    with pytest.raises(ValueError, match="does not match the 36x44 tile"):
        pipe4.sharpen(pan, ms, windows=[Window(0, 0, 36, 40)])


def test_mismatched_networks_raise():
    small = dict(channels=list(SMALL))
    p2m = rsinfer.models.build("crossdiff-unet", direction="p2m", **small)
    m2p = rsinfer.models.build("crossdiff-unet", direction="m2p", **small)
    head = rsinfer.models.build("crossdiff-fusion", channel_multiplier=list(SMALL))
    with pytest.raises(ValueError, match="p2m must be a CrossDiff U-Net with direction='p2m', got 'm2p'"):
        CrossDiff(p2m=m2p, m2p=p2m, fusion=head)
    with pytest.raises(ValueError, match=r"agree on the MS band count, got \{'p2m': 4, 'm2p': 4, 'fusion': 8\}"):
        CrossDiff(p2m=p2m, m2p=m2p, fusion=rsinfer.models.build("crossdiff-fusion", spectral_num=8,
                                                                channel_multiplier=list(SMALL)))
    with pytest.raises(ValueError, match=r"p2m feature widths \[8, 32, 32, 64\] do not match the fusion head"):
        CrossDiff(p2m=p2m, m2p=m2p, fusion=rsinfer.models.build("crossdiff-fusion"))
    with pytest.raises(ValueError, match="dn_scale must be a positive finite number"):
        CrossDiff(p2m=p2m, m2p=m2p, fusion=head, dn_scale=0)
