"""SD KL-f8 autoencoder: parity with the official FrozenAutoencoderKL (golden fixtures), keys, sampling, tiling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import rsinfer.models
from tests.numerics import assert_matches_reference, relative_error
from rsinfer.ops import use_backend
from rsinfer.tiling import Tiling, Window, blend_tiles, plan_windows, tile_weights

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "copgen"
WEIGHTS = FIXTURES / "vae_tiny_weights.safetensors"
TINY = dict(ch=32, ch_mult=(1, 1), num_res_blocks=1)  # written by tests/fixtures/make_copgen_fixtures.py


@pytest.fixture(scope="module")
def vae() -> torch.nn.Module:
    return rsinfer.models.load("sd-vae", WEIGHTS, **TINY)


@pytest.fixture(scope="module")
def golden() -> dict[str, torch.Tensor]:
    return load_file(FIXTURES / "vae_tiny_io.safetensors")


def test_moments_and_decode_match_official(vae, golden):
    with torch.no_grad(), use_backend("reference"):
        assert_matches_reference(vae.encode_moments(golden["x"]), golden["moments"])
        assert_matches_reference(vae.decode(golden["z"]), golden["decoded"])


def test_posterior_sample_matches_official_seeded_draw(vae, golden):
    """The official encode draws randn_like on the global RNG; a generator seeded alike gives the same sample."""
    with torch.no_grad():
        torch.manual_seed(77)
        assert_matches_reference(vae.encode(golden["x"]), golden["sample"])
        seeded = vae.encode(golden["x"], generator=torch.Generator().manual_seed(77))
        assert_matches_reference(seeded, golden["sample"])
        other = vae.encode(golden["x"], generator=torch.Generator().manual_seed(78))
        mean = vae.encode_mean(golden["x"])
    assert relative_error(other, golden["sample"]) > 1e-3
    mean_ref, logvar = golden["moments"].chunk(2, dim=1)
    assert_matches_reference(mean, 0.18215 * mean_ref)
    # the sample is mean + σ·ε: its standardised residual is the seeded N(0, 1) draw
    eps = (golden["sample"] / 0.18215 - mean_ref) / torch.exp(0.5 * logvar.clamp(-30, 20))
    assert_matches_reference(eps, torch.randn(mean_ref.shape, generator=torch.Generator().manual_seed(77)))


def test_released_config_key_layout():
    expected = json.loads((FIXTURES / "vae_full_keys.json").read_text())
    with torch.device("meta"):
        vae = rsinfer.models.build("sd-vae")
    assert len(expected) == 248
    assert {k: list(v.shape) for k, v in vae.state_dict().items()} == expected
    assert vae.config.scale_factor == 0.18215 and vae.config.downsampling == 8


def test_strict_load_rejects_another_networks_checkpoint():
    with pytest.raises(ValueError, match=r"120 missing keys: decoder\.conv_in\.bias.*"
                                         r"56 unexpected keys: decoder_preds"):
        rsinfer.models.load("sd-vae", FIXTURES / "copgen_tiny_weights.safetensors", **TINY)


def test_tiled_decode_blends_independently_decoded_tiles(vae):
    """Every pixel is the cosine-weighted average of the tiles covering it, each tile decoded on its own."""
    z = torch.randn(2, 4, 11, 9)
    tile, overlap, f = 6, 2, vae.config.downsampling
    with torch.no_grad():
        tiled = vae.decode_tiled(z, Tiling(tile, overlap, "cosine"))
        windows = plan_windows(11, 9, tile, overlap)
        assert len(windows) > 4
        pixel_windows = [Window(f * w.row, f * w.col, f * w.height, f * w.width) for w in windows]
        tiles = [vae.decode(z[:, :, w.row:w.bottom, w.col:w.right]).flatten(0, 1) for w in windows]
        weights = [tile_weights(w, 11 * f, 9 * f, overlap * f, "cosine") for w in pixel_windows]
        expected = blend_tiles(tiles, pixel_windows, 11 * f, 9 * f, weights).unflatten(0, (2, 3))
        whole = vae.decode(z)
    assert tiled.shape == whole.shape == (2, 3, 11 * f, 9 * f)
    assert_matches_reference(tiled, expected)
    assert relative_error(tiled, whole) < 0.5  # not equal (the mid-block attention is global), but the same image


def test_tiled_decode_with_one_tile_is_decode(vae):
    z = torch.randn(1, 4, 7, 5)
    with torch.no_grad():
        assert_matches_reference(vae.decode_tiled(z, Tiling(8, 2, "cosine")), vae.decode(z))
        assert_matches_reference(vae.decode_tiled(z, Tiling(None, 0)), vae.decode(z))
    with pytest.raises(ValueError, match="tile 8 and overlap 4"):  # the one tiling rule, checked by Tiling
        vae.decode_tiled(z, Tiling(8, 4, "cosine"))
