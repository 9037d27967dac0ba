"""Scene translation (`translate_images`) against its definition, composed here by hand with stand-in models:

    z = encode(2x − 1)  →  z' = sample_latents (one latent tile) or translate_latents (several)
                        →  y = (decode(z') + 1) / 2, clamped to [0, 1]

on a real Sentinel-1 rendering (the Sen1Floods11 chip). One generator feeds, in this order, the encoder's posterior
draw, the initial noise and the ignored modalities' noise, as in the pipeline. A scene smaller than the network's 256
pixels or not a multiple of 8 is padded on the bottom/right (reflection where it fits, else replication) and the
result is cut back to the scene.
"""

from __future__ import annotations

import pytest
import rasterio
import torch
import torch.nn.functional as F
from tests.pipelines.copgen_standin import StandInCopGen, StandInVAE

from rsinfer.pipelines.copgen import CopGenBeta
from rsinfer.pipelines.copgen_scene import render_input, translate_images, translate_latents


@pytest.fixture
def s1_rendering(data_dir) -> torch.Tensor:
    """The Sen1Floods11 S1 chip (VV, VH in dB, 512 × 512) as its Major TOM rendering (3, 512, 512) in [0, 1]."""
    with rasterio.open(data_dir / "sen1floods11" / "Spain_7370579_S1Hand.tif") as src:
        vv_vh = torch.from_numpy(src.read())
    return render_input("s1_rtc", vv_vh, torch.isfinite(vv_vh).all(dim=0))


def _pipe() -> CopGenBeta:
    return CopGenBeta(StandInCopGen(), StandInVAE())


def _encode(pipe: CopGenBeta, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(3, H, W) image in [0, 1] → (1, 4, H/8, W/8) latent of the encoder, which takes [−1, 1]."""
    with torch.no_grad():
        return pipe.vae.encode(2.0 * image[None] - 1.0, generator)


def _decode(pipe: CopGenBeta, z: torch.Tensor) -> torch.Tensor:
    """(1, 4, h, w) latent → (3, 8h, 8w) image in [0, 1]: the decoder's [−1, 1] mapped by (x + 1) / 2."""
    with torch.no_grad():
        return ((pipe.vae.decode(z)[0] + 1.0) / 2.0).clamp(0.0, 1.0)


def _check(out: torch.Tensor, expected: torch.Tensor) -> None:
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    assert 0.05 < float(expected.std())  # an image, not a constant the mappings could not change


def test_one_tile_translation_is_encode_sample_decode(s1_rendering: torch.Tensor) -> None:
    """256 × 256 pixels are one 32 × 32 latent tile: translation is plain latent sampling between the mappings."""
    pipe, image = _pipe(), s1_rendering[:, 100:356, 40:296]
    out = translate_images(pipe, {"s1_rtc": image}, "s2_l2a", 3, "dpm-solver++3s",
                           generator=torch.Generator().manual_seed(11))

    generator = torch.Generator().manual_seed(11)
    z = _encode(pipe, image, generator)
    sampled = pipe.sample_latents({"s1_rtc": z}, ["s2_l2a"], 3, "dpm-solver++3s", generator=generator)
    _check(out, _decode(pipe, sampled["s2_l2a"]))


def test_scene_translation_is_encode_tiled_sampling_decode(s1_rendering: torch.Tensor) -> None:
    """The whole 512² chip: a 64 × 64 latent in nine 32 × 32 tiles (the default latent tiling, overlap 12), fused at
    every step (`translate_latents`)."""
    pipe = _pipe()
    out = translate_images(pipe, {"s1_rtc": s1_rendering}, "s2_l2a", 2, "unipc",
                           generator=torch.Generator().manual_seed(5))

    generator = torch.Generator().manual_seed(5)
    z = _encode(pipe, s1_rendering, generator)
    _check(out, _decode(pipe, translate_latents(pipe, {"s1_rtc": z}, "s2_l2a", 2, "unipc", generator=generator)))


@pytest.mark.parametrize("height, width, mode", [(200, 180, "reflect"), (120, 100, "replicate")])
def test_small_scene_is_padded_then_cut_back(s1_rendering: torch.Tensor, height: int, width: int, mode: str) -> None:
    """Padded on the bottom/right to 256², translated as one tile, cut back: reflection when the padding is shorter
    than the scene along both axes, else replication (BigEarthNet's 120-pixel patches)."""
    pipe, image = _pipe(), s1_rendering[:, 300:300 + height, 7:7 + width]
    out = translate_images(pipe, {"s1_rtc": image}, "dem", 2, "unipc", generator=torch.Generator().manual_seed(2))

    padded = F.pad(image[None], (0, 256 - width, 0, 256 - height), mode=mode)[0]  # (3, 256, 256)
    generator = torch.Generator().manual_seed(2)
    z = _encode(pipe, padded, generator)
    sampled = pipe.sample_latents({"s1_rtc": z}, ["dem"], 2, "unipc", generator=generator)
    _check(out, _decode(pipe, sampled["dem"])[:, :height, :width])
