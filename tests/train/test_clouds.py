"""The synthetic-cloud generator: seeded, the cover it draws, soft edges, opaque cores, the compositing formula."""

from __future__ import annotations

import pytest
import torch

from train.clouds import CLOUD_SPECTRUM, CloudConfig, generate_clouds, lattice_noise


def _clouds(seed: int, config: CloudConfig = CloudConfig(), batch: int = 6, height: int = 37, width: int = 53):
    return generate_clouds(batch, height, width, torch.Generator().manual_seed(seed), config)


def test_a_seed_gives_the_same_clouds_and_another_seed_others() -> None:
    a, b, c = _clouds(3), _clouds(3), _clouds(4)
    for name in ("ramp", "peak", "spectrum", "haze"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.ramp, c.ramp)


@pytest.mark.parametrize("cover", [0.1, 0.37, 0.7])
def test_the_cloud_covers_the_drawn_fraction_of_pixels(cover: float) -> None:
    clouds = _clouds(0, CloudConfig(cover=(cover, cover)), height=64, width=64)
    inside = (clouds.ramp > 0).double().mean(dim=(1, 2, 3))
    # threshold at the nearest-rank (1 − cover) quantile: the pixels above it are cover·(N − 1) ± 1 of N = 4096
    assert torch.all((inside - cover).abs() <= 1.5 / 4096)


def test_edges_are_soft_and_cores_reach_the_peak_opacity() -> None:
    clouds = _clouds(1, CloudConfig(cover=(0.5, 0.5), edge=(0.5, 0.5), opaque_fraction=0.0), height=96, width=96)
    ramp = clouds.ramp
    assert ramp.min() == 0 and ramp.max() == 1
    edge = ((ramp > 0) & (ramp < 1)).double().mean()
    assert 0.05 < edge < 0.45  # a band of partial opacity between clear sky and core
    assert torch.all((clouds.peak >= 0.75) & (clouds.peak <= 1.0))
    assert torch.allclose(clouds.opacity.amax(dim=(1, 2, 3)), clouds.peak)


def test_opaque_cores_hide_the_ground_completely() -> None:
    clouds = _clouds(2, CloudConfig(opaque_fraction=1.0))
    assert torch.all(clouds.peak == 1)
    core = clouds.opacity.expand(-1, 13, -1, -1) == 1
    assert core.any()
    one, other = torch.rand(6, 13, 37, 53), torch.rand(6, 13, 37, 53)
    assert torch.equal(clouds.apply(one)[core], clouds.apply(other)[core])  # no ground signal under the core
    assert torch.equal(clouds.apply(one)[core], clouds.spectrum.clamp(0, 1)[core])
    opaque = _clouds(5).opaque()
    assert torch.all(opaque.peak == 1) and torch.equal(opaque.ramp, _clouds(5).ramp)


def test_the_cloudy_image_follows_the_compositing_formula() -> None:
    clouds = _clouds(7)
    clear = torch.rand(6, 13, 37, 53) * 0.5
    alpha, haze, s = clouds.peak[:, None, None, None] * clouds.ramp, clouds.haze, clouds.spectrum
    expected = ((1 - alpha) * ((1 - haze) * clear + haze * s) + alpha * s).clamp(0, 1)
    assert torch.allclose(clouds.apply(clear), expected, atol=1e-6)
    with pytest.raises(ValueError, match="does not match the cloud field"):
        clouds.apply(torch.rand(6, 13, 36, 53))


def test_cloud_spectrum_is_bright_blue_white_and_dark_in_b9_b10() -> None:
    clouds = _clouds(8, CloudConfig(texture=0.0))
    brightness = clouds.spectrum[:, 3, 0, 0] / CLOUD_SPECTRUM[3]  # B4
    assert torch.all((brightness >= 0.75 - 1e-6) & (brightness <= 1.15 + 1e-6))
    expected = torch.tensor(CLOUD_SPECTRUM)[None] * brightness[:, None]
    assert torch.allclose(clouds.spectrum[:, :, 5, 9], expected.clamp(0, 1), atol=1e-6)
    spectrum = torch.tensor(CLOUD_SPECTRUM)
    assert spectrum[1] >= spectrum[3] and spectrum[9] < 0.5 * spectrum[3] and spectrum[10] < 0.1 * spectrum[3]
    assert torch.all(clouds.haze >= 0) and torch.all(clouds.haze <= 0.25)


def test_lattice_noise_is_smooth_at_the_cell_scale() -> None:
    noise = lattice_noise(8, 128, 128, 16.0, torch.Generator().manual_seed(0))[:, 0]  # (8, 128, 128)

    def correlation(shift: int) -> float:
        a, b = noise[:, :, :-shift].flatten(), noise[:, :, shift:].flatten()
        return float(torch.corrcoef(torch.stack([a, b]))[0, 1])

    assert correlation(1) > 0.95  # neighbours within a cell agree
    assert abs(correlation(48)) < 0.2  # three cells apart: independent lattice values
    assert -0.2 < float(noise.min()) and float(noise.max()) < 1.2  # bicubic overshoots [0, 1) only a little


@pytest.mark.parametrize("bad, match", [(dict(cover=(0.5, 0.2)), "cover"), (dict(cover=(0.1, 1.0)), "below 1"),
                                        (dict(peak=(0.7, 1.2)), "at most 1"), (dict(opaque_fraction=1.5), "opaque"),
                                        (dict(scale=8, octaves=5), "scale 8")])
def test_bad_config_names_the_value(bad: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CloudConfig(**bad)
