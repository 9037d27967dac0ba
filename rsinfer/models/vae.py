"""Stable Diffusion KL-f8 autoencoder in the original LDM key layout (registry name ``sd-vae``).

The latent space of COP-GEN-Beta (``libs/autoencoder.py`` ``FrozenAutoencoderKL`` in COP-GEN-Beta and UniDiffuser):
an 8× downsampling convolutional encoder to a diagonal Gaussian posterior (mean, log-variance) and a decoder back to
pixels, with 248 tensors under ``encoder.*``, ``decoder.*``, ``quant_conv.*``, ``post_quant_conv.*``.

Public API:
- ``VAEConfig``: the official ``ddconfig`` names; defaults are SD v1 KL-f8 (ch=128, ch_mult=(1, 2, 4, 4), 2 res blocks,
  4 latent channels, attention only in the middle blocks) and ``scale_factor`` 0.18215.
- ``build(**overrides) -> AutoencoderKL``.
- ``AutoencoderKL.encode(x, generator)``: pixels (B, 3, H, W) in [-1, 1] → a scaled posterior *sample*
  ``scale_factor · (mean + exp(½·clamp(logvar, −30, 20)) · ε)``, ε drawn from `generator` (the global RNG if None,
  which reproduces the official ``randn_like``). (B, 4, H/8, W/8).
- ``AutoencoderKL.encode_mean(x)``: ``scale_factor · mean`` (deterministic).
- ``AutoencoderKL.decode(z)``: scaled latents (B, 4, h, w) → pixels (B, 3, 8h, 8w), roughly in [-1, 1].
- ``AutoencoderKL.decode_tiled(z, tiling)``: `decode` over overlapping latent tiles blended with smooth
  weights (`rsinfer.tiling`), for latents too large to decode at once; equals `decode` where one tile covers all.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rsinfer import ops
from rsinfer.models.config import config_with_overrides
from rsinfer.tiling import TensorMerger, Tiling, Window, plan_windows, tile_weights


@dataclass(frozen=True)
class VAEConfig:
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    in_channels: int = 3
    out_ch: int = 3
    z_channels: int = 4
    embed_dim: int = 4
    scale_factor: float = 0.18215

    def __post_init__(self) -> None:
        object.__setattr__(self, "ch_mult", tuple(self.ch_mult))
        if self.ch % 32 or not self.ch_mult or self.num_res_blocks < 1:
            raise ValueError(f"need ch a multiple of 32 (GroupNorm with 32 groups), a non-empty ch_mult and "
                             f"num_res_blocks ≥ 1; got ch={self.ch}, ch_mult={self.ch_mult}, "
                             f"num_res_blocks={self.num_res_blocks}")

    @property
    def downsampling(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """x + conv₂(SiLU(GN₂(conv₁(SiLU(GN₁(x)))))), with a 1×1 ``nin_shortcut`` on x when the width changes."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm1 = _group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = _group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all pixels with 1×1-conv projections, residual."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = _group_norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, height, width = x.shape
        h = self.norm(x)
        q, k, v = (proj(h).reshape(b, 1, c, height * width).transpose(2, 3)  # (B, 1, H·W, C)
                   for proj in (self.q, self.k, self.v))
        out = ops.attention(q, k, v)  # (B, 1, H·W, C)
        return x + self.proj_out(out.transpose(2, 3).reshape(b, c, height, width))


class Downsample(nn.Module):
    """3×3 stride-2 convolution after zero-padding one pixel on the right and bottom: (H, W) → (H/2, W/2)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest-neighbour 2× upsampling, then a 3×3 convolution: (H, W) → (2H, 2W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class MidBlock(nn.Module):
    """ResnetBlock → AttnBlock → ResnetBlock at the lowest resolution (keys ``block_1``, ``attn_1``, ``block_2``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels)
        self.attn_1 = AttnBlock(channels)
        self.block_2 = ResnetBlock(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Level(nn.Module):
    """One resolution of the encoder or decoder: res blocks (``block.{i}``), then an optional resampler."""

    def __init__(self, in_channels: int, out_channels: int, num_blocks: int, resample: type[nn.Module] | None,
                 resample_attr: str):
        super().__init__()
        self.block = nn.ModuleList(ResnetBlock(in_channels if i == 0 else out_channels, out_channels)
                                   for i in range(num_blocks))
        self.resample_attr = resample_attr
        if resample is not None:
            setattr(self, resample_attr, resample(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block:
            x = block(x)
        resample = getattr(self, self.resample_attr, None)
        return x if resample is None else resample(x)


class Encoder(nn.Module):
    """(B, in_channels, H, W) → (B, 2·z_channels, H/f, W/f) moments, f = 2^(len(ch_mult) − 1)."""

    def __init__(self, c: VAEConfig):
        super().__init__()
        widths = [c.ch * m for m in (1, *c.ch_mult)]
        last = len(c.ch_mult) - 1
        self.conv_in = nn.Conv2d(c.in_channels, c.ch, 3, padding=1)
        self.down = nn.ModuleList(Level(widths[i], widths[i + 1], c.num_res_blocks,
                                        Downsample if i != last else None, "downsample")
                                  for i in range(len(c.ch_mult)))
        self.mid = MidBlock(widths[-1])
        self.norm_out = _group_norm(widths[-1])
        self.conv_out = nn.Conv2d(widths[-1], 2 * c.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """(B, z_channels, h, w) → (B, out_ch, f·h, f·w); ``up.{i}`` is stored finest-first but runs coarsest-first."""

    def __init__(self, c: VAEConfig):
        super().__init__()
        widths = [c.ch * m for m in c.ch_mult]
        self.conv_in = nn.Conv2d(c.z_channels, widths[-1], 3, padding=1)
        self.mid = MidBlock(widths[-1])
        self.up = nn.ModuleList(Level(widths[min(i + 1, len(widths) - 1)], widths[i], c.num_res_blocks + 1,
                                      Upsample if i != 0 else None, "upsample")
                                for i in range(len(c.ch_mult)))
        self.norm_out = _group_norm(widths[0])
        self.conv_out = nn.Conv2d(widths[0], c.out_ch, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class AutoencoderKL(nn.Module):
    """The KL-regularised autoencoder with the LDM key layout; see the module docstring for the API."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.quant_conv = nn.Conv2d(2 * config.z_channels, 2 * config.embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(config.embed_dim, config.z_channels, 1)

    def encode_moments(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels (B, C, H, W) in [-1, 1] → posterior moments (B, 2·embed_dim, H/f, W/f): mean then log-variance."""
        return self.quant_conv(self.encoder(x))

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A scaled posterior sample (B, embed_dim, H/f, W/f); ε ~ N(0, I) from `generator` (global RNG if None)."""
        mean, logvar = self.encode_moments(x).chunk(2, dim=1)
        std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return self.config.scale_factor * (mean + std * noise)

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        """The scaled posterior mean (B, embed_dim, H/f, W/f)."""
        mean, _ = self.encode_moments(x).chunk(2, dim=1)
        return self.config.scale_factor * mean

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Scaled latents (B, embed_dim, h, w) → pixels (B, out_ch, f·h, f·w)."""
        return self.decoder(self.post_quant_conv(z / self.config.scale_factor))

    def decode_tiled(self, z: torch.Tensor, tiling: Tiling = Tiling(32, 8, "cosine")) -> torch.Tensor:
        """`decode` over overlapping latent windows (`tiling`, in latents), each decoded alone and blended in pixel
        space.

        Windows overlap by at least `tiling.overlap` latents (`rsinfer.tiling.plan_windows`); each decoded tile is
        weighted by `tiling.blend` over the overlap (no fade towards the latent border) and the weighted tiles are
        averaged, so there are no seams. Memory is bounded by one tile. One window covering `z` gives `decode(z)`.
        """
        if tiling.tile is None:
            return self.decode(z)
        b, _, height, width = z.shape
        f = self.config.downsampling
        merger = TensorMerger(b * self.config.out_ch, f * height, f * width, device=z.device)
        for window in plan_windows(height, width, tiling.tile, tiling.overlap):
            pixels = self.decode(z[:, :, window.row:window.bottom, window.col:window.right])  # (B, C, f·h, f·w)
            target = Window(f * window.row, f * window.col, f * window.height, f * window.width)
            weight = tile_weights(target, f * height, f * width, f * tiling.overlap, tiling.blend)
            merger.add(pixels.float().flatten(0, 1), target, weight)
        return merger.result().unflatten(0, (b, self.config.out_ch)).to(z.dtype)  # (B, C, f·H, f·W)

def build(**overrides) -> AutoencoderKL:
    """A freshly initialised KL-f8 autoencoder; `overrides` are `VAEConfig` fields (the official ddconfig names)."""
    return AutoencoderKL(config_with_overrides(VAEConfig, "sd-vae", overrides))
