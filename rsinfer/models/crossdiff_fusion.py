"""CrossDiff stage-2 fusion head (`FusionNet`, codgodtao/CrossDiff model/fusion_modules/fusionnet_2.py) in the
official key layout: it fuses the encoder features of the P2M and M2P U-Nets into a residual on the upsampled MS.

With widths w_0 > w_1 > w_2 > w_3 (`channel_multiplier` sorted in decreasing order; officially 256, 128, 64, 32) and
the features of level l = 0 (deepest, h4) … 3 (h1) from both U-Nets, P2M first in every concatenation:

    x = Block_0(cat[h4_p2m, h4_m2p]),  x = up(Attn_1(x))                       (B, 2w_1, H/4, W/4)
    x = up(Attn_3(Block_2(cat[h3_p2m, h3_m2p]) + x))                          (B, 2w_2, H/2, W/2)
    x = up(Attn_5(Block_4(cat[h2_p2m, h2_m2p]) + x))                          (B, 2w_3, H, W)
    residual = final2(LeakyReLU(final(x)))                                    (B, S, H, W)
    sr_raw = ms_up + residual

- Block_2i (``decoder.{0,2,4,6}``) = conv3×3 (2w_i → 2w_i) + LeakyReLU(0.01).
- Attn_2i+1 (``decoder.{1,3,5}``) = conv3×3 (2w_i → 2w_{i+1}) + LeakyReLU, then cSE(x) + sSE(x) where
  cSE(x) = x · LeakyReLU(fc2(ReLU(fc1(mean_hw x)))) with fc1 C → C/2, fc2 C/2 → C, and
  sSE(x) = x · LeakyReLU(conv1×1_{C→1}(x)). The gates are LeakyReLU, **not sigmoid**, as in the official code.
- up = F.interpolate(mode='area') to twice the size, which for an integer ×2 is exactly nearest-neighbour.
- ``decoder.6`` (the h1 level, Block_6 of cat[h1_p2m, h1_m2p]) exists in the official network and checkpoints, but
  the official forward computes it and then discards it: `final` reads the upsampled Attn_5 output. Its output can
  never reach sr_raw, so this module keeps its parameters (checkpoints load strictly, parameter counts match) and
  does not compute it: at full resolution it is the costliest conv of the whole pipeline (2w_3 → 2w_3, 3×3, 37 k
  MAC per pixel at the official size).
- The official forward also takes the [0, 1] PAN and never reads it; it is not an argument here.

Parameters: 4,789,895 at 4 bands and 4,791,051 at 8 bands (official size). `time_steps` lists the diffusion steps
the features were extracted at; the Blocks' input width is 2w_i per step. Every official config uses one step, [50],
and so does this implementation (the pipeline reads its feature step from here).

Named presets (`PRESETS`, `build(preset=...)`, `rsinfer.models.load("crossdiff-fusion", path, preset=...)`) match the
U-Net presets of `rsinfer.models.crossdiff` of the same name: ``crossdiff-demo`` (the demo weights, train/pansharpen.py)
reads features of widths [16, 32, 32, 64] and is 16 wide between `final` and `final2`; the band count is the caller's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rsinfer.models.config import config_with_overrides

LEVELS = 4  # h4, h3, h2, h1


@dataclass(frozen=True)
class CrossDiffFusionConfig:
    """spectral_num: S, MS bands of the output. channel_multiplier: the U-Nets' feature widths (any order; the head
    uses them sorted decreasing). inner_channel: width between `final` and `final2`. time_steps: the feature
    extraction step(s), one entry (official [50])."""

    spectral_num: int = 4
    channel_multiplier: tuple[int, ...] = (32, 64, 128, 256)
    inner_channel: int = 32
    time_steps: tuple[int, ...] = (50,)

    def __post_init__(self) -> None:
        if not isinstance(self.spectral_num, int) or self.spectral_num < 1:
            raise ValueError(f"spectral_num must be a positive integer (MS bands), got {self.spectral_num!r}")
        widths = self.channel_multiplier
        if len(widths) != LEVELS or not all(isinstance(w, int) and w > 0 for w in widths):
            raise ValueError(f"channel_multiplier {list(widths)} must hold {LEVELS} positive integers, one per "
                             f"encoder feature h1 … h4")
        if not isinstance(self.inner_channel, int) or self.inner_channel < 1:
            raise ValueError(f"inner_channel must be a positive integer, got {self.inner_channel!r}")
        if len(self.time_steps) != 1 or not all(isinstance(t, int) and 1 <= t <= 1000 for t in self.time_steps):
            raise ValueError(f"time_steps {list(self.time_steps)} must be one integer step in 1..1000 (every official "
                             f"config uses [50]; stacking features of several steps is not supported)")

    @property
    def widths(self) -> tuple[int, ...]:
        """Per-network feature widths from the deepest level (h4) to h1: `channel_multiplier` sorted decreasing."""
        return tuple(sorted(self.channel_multiplier, reverse=True))

    @property
    def feature_step(self) -> int:
        return self.time_steps[0]


class ChannelGate(nn.Module):
    """cSE with a LeakyReLU gate: x · LeakyReLU(fc2(ReLU(fc1(spatial mean of x))))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // 2)
        self.fc2 = nn.Linear(channels // 2, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = x.flatten(2).mean(dim=2)  # (B, C)
        gate = F.leaky_relu(self.fc2(F.relu(self.fc1(squeezed))))  # (B, C)
        return x * gate[:, :, None, None]


class SpatialGate(nn.Module):
    """sSE with a LeakyReLU gate: x · LeakyReLU(conv1×1_{C→1}(x))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * F.leaky_relu(self.conv(x))  # (B, C, H, W) · (B, 1, H, W)


class ChannelSpatialGate(nn.Module):
    """cSE(x) + sSE(x)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.cSE = ChannelGate(channels)
        self.sSE = SpatialGate(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cSE(x) + self.sSE(x)


class FeatureBlock(nn.Module):
    """conv3×3 + LeakyReLU on the concatenated P2M/M2P features of one level (``decoder.{0,2,4,6}``)."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, padding=1), nn.LeakyReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class AttentionBlock(nn.Module):
    """conv3×3 + LeakyReLU + cSE/sSE (``decoder.{1,3,5}``)."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, padding=1), nn.LeakyReLU(),
                                   ChannelSpatialGate(channels_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


def upsample_area_x2(x: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) → (B, C, 2h, 2w): upstream's 'area' interpolation, computed as the nearest-neighbour ×2 it equals
    for an integer factor (each output pixel averages the one input pixel it lies in); nearest exports to ONNX as a
    Resize, area as an adaptive pooling of dynamic size."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class CrossDiffFusion(nn.Module):
    """sr_raw = ms_up + residual(P2M features, M2P features)."""

    def __init__(self, config: CrossDiffFusionConfig) -> None:
        super().__init__()
        self.config = config
        steps = len(config.time_steps)
        doubled = [2 * w for w in config.widths]  # P2M ⊕ M2P widths, deepest first
        self.decoder = nn.ModuleList()
        for level, width in enumerate(doubled):
            self.decoder.append(FeatureBlock(width * steps, width))
            if level < LEVELS - 1:
                self.decoder.append(AttentionBlock(width, doubled[level + 1]))
        self.final = nn.Conv2d(doubled[-1], config.inner_channel, 3, padding=1)
        self.final2 = nn.Conv2d(config.inner_channel, config.spectral_num, 3, padding=1)

    def _check(self, ms_up: torch.Tensor, p2m: Sequence[torch.Tensor], m2p: Sequence[torch.Tensor]) -> None:
        if ms_up.ndim != 4 or ms_up.shape[1] != self.config.spectral_num:
            raise ValueError(f"ms_up must be (B, {self.config.spectral_num}, H, W), got {tuple(ms_up.shape)}")
        batch, _, height, width = ms_up.shape
        if height % 2 ** (LEVELS - 1) or width % 2 ** (LEVELS - 1):
            raise ValueError(f"H and W must be multiples of {2 ** (LEVELS - 1)}, got {height}x{width}")
        for name, features in (("p2m", p2m), ("m2p", m2p)):
            if len(features) != LEVELS:
                raise ValueError(f"{name} features must be [h1, h2, h3, h4], got {len(features)} tensors")
            for level, (feature, channels) in enumerate(zip(features, reversed(self.config.widths))):
                expected = (batch, channels, height >> level, width >> level)
                if tuple(feature.shape) != expected:
                    raise ValueError(f"{name} h{level + 1} has shape {tuple(feature.shape)}, expected {expected}")

    def forward(self, ms_up: torch.Tensor, p2m: Sequence[torch.Tensor], m2p: Sequence[torch.Tensor]) -> torch.Tensor:
        """ms_up (B, S, H, W) on the [0, 1] scale; p2m, m2p = [h1, h2, h3, h4] of each U-Net → sr_raw (B, S, H, W)."""
        self._check(ms_up, p2m, m2p)
        x = None
        for level in range(LEVELS - 1):  # h4, h3, h2; the h1 level (decoder.6) is discarded upstream: skipped
            depth = LEVELS - 1 - level  # index of this level's feature in [h1, h2, h3, h4]
            fused = self.decoder[2 * level](torch.cat([p2m[depth], m2p[depth]], dim=1))  # (B, 2w_l, H/2^depth, ·)
            if x is not None:
                fused = fused + x
            x = upsample_area_x2(self.decoder[2 * level + 1](fused))  # (B, 2w_{l+1}, H/2^(depth−1), ·)
        residual = self.final2(F.leaky_relu(self.final(x)))  # (B, S, H, W)
        return ms_up + residual


PRESETS: dict[str, dict[str, Any]] = {
    # The demo weights (weights/README.md): the head over the crossdiff-demo U-Nets.
    "crossdiff-demo": dict(channel_multiplier=(16, 32, 32, 64), inner_channel=16),
}


def build(preset: str | None = None, **overrides) -> CrossDiffFusion:
    """A freshly initialised fusion head: the official size, or the named `preset` of `PRESETS`; `overrides` replace
    `CrossDiffFusionConfig` fields of either (official names). A list passed in is copied, never sorted in place (the
    official constructor sorts its argument)."""
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown crossdiff-fusion preset {preset!r}; choose one of {tuple(PRESETS)}")
    return CrossDiffFusion(config_with_overrides(CrossDiffFusionConfig, "crossdiff-fusion",
                                                 {**PRESETS.get(preset, {}), **overrides}))
