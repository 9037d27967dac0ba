"""A tiny deterministic stand-in for the COP-GEN-Beta network, with the official call `net(imgs, t_imgs) -> eps list`.

It mixes all modalities (a 3×3 convolution over their concatenated channels) and all four timesteps (sinusoidal
features with frequencies up to 1 rad per discrete step, like the real time tokens), so a wrong condition, a wrong
time label or a different ignored-modality draw all change its output. `tests/fixtures/make_sampler_fixtures.py` runs
the official sampler with it; the golden file stores its weights, so tests rebuild it exactly.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rsinfer.tiling import Tiling

MODALITIES = 4
CHANNELS = 4
TIME_FEATURES = 8


def _sinusoid(t: torch.Tensor) -> torch.Tensor:
    half = TIME_FEATURES // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)  # (half,)
    angles = t.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)  # (B, TIME_FEATURES)


class StandInCopGen(nn.Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        width = MODALITIES * CHANNELS
        self.mix = nn.Parameter(torch.randn(width, width, 3, 3, generator=g) / math.sqrt(9 * width))
        self.time = nn.Parameter(torch.randn(width, MODALITIES * TIME_FEATURES, generator=g) / math.sqrt(MODALITIES))
        self.calls: list[list[torch.Tensor]] = []  # the t_imgs of every call, for the schedule check

    def forward(self, imgs: list[torch.Tensor], t_imgs: list[torch.Tensor]) -> list[torch.Tensor]:
        self.calls.append([t.clone() for t in t_imgs])
        x = torch.cat(list(imgs), dim=1)  # (B, M·C, S, S)
        temb = torch.cat([_sinusoid(t) for t in t_imgs], dim=1)  # (B, M·TIME_FEATURES)
        gain = 1.0 + 0.5 * torch.tanh(temb @ self.time.T)  # (B, M·C)
        h = nn.functional.conv2d(x, self.mix, padding=1) * gain[:, :, None, None]
        return list(torch.tanh(h).chunk(MODALITIES, dim=1))  # M × (B, C, S, S)


class StandInVAE(nn.Module):
    """A cheap stand-in with the VAE API the pipeline uses: 8× average pooling + 1×1 conv to 4 latent channels,
    a seeded posterior draw, and nearest upsampling + 1×1 conv back to 3 channels."""

    scale_factor = 0.18215

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.enc = nn.Parameter(torch.randn(CHANNELS, 3, generator=g))
        self.dec = nn.Parameter(torch.randn(3, CHANNELS, generator=g) / 2)

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        mean = torch.einsum("oc,bchw->bohw", self.enc, nn.functional.avg_pool2d(x, 8))  # (B, 4, H/8, W/8)
        return self.scale_factor * (mean + 0.1 * torch.randn(mean.shape, generator=generator))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        up = nn.functional.interpolate(z / self.scale_factor, scale_factor=8, mode="nearest")
        return torch.tanh(torch.einsum("oc,bchw->bohw", self.dec, up))  # (B, 3, 8h, 8w)

    def decode_tiled(self, z: torch.Tensor, tiling: Tiling) -> torch.Tensor:
        return self.decode(z)
