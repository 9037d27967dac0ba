"""Transformer layers shared by the token networks (`copgen`, `seqdit`).

Public API:
- `timestep_embedding(t, dim)`: sinusoidal embedding of (possibly fractional) timesteps, cosine half first.
- `patchify(x, p)` / `unpatchify(tokens, p, channels)`: images (B, C, H, W) ⇄ patch tokens (B, h·w, p·p·C), the channel
  index varying fastest inside a patch (U-ViT's layout).
- `PatchEmbed`: strided convolution from image to tokens (key `proj.*`).
- `Attention`: multi-head self-attention with a fused `qkv` projection, computed by `rsinfer.ops.attention`
  (keys `qkv.*`, `proj.*`).
- `Mlp`: Linear → exact GELU → Linear (keys `fc1.*`, `fc2.*`).

Every attention goes through `rsinfer.ops`, so the backend selected with `rsinfer.ops.use_backend` decides how it runs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rsinfer import ops


def check_token_layout(img_size: int, patch_size: int, embed_dim: int, num_heads: int) -> None:
    """Latents must split into whole patches and the width into whole heads (shared by the sequence-model configs)."""
    if img_size % patch_size:
        raise ValueError(f"img_size={img_size} is not a multiple of patch_size={patch_size}")
    if embed_dim % num_heads:
        raise ValueError(f"embed_dim={embed_dim} is not divisible by num_heads={num_heads}")


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """[cos(t·f_i), sin(t·f_i)] with f_i = max_period^(−i/half), i < half = dim // 2; t: (B,) float → (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]  # (B, half)
    embedding = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)  # (B, 2·half)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)  # (B, dim)
    return embedding


def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, h·p, w·p) → (B, h·w, p·p·C), tokens in raster order, channels fastest within a patch."""
    b, c, height, width = x.shape
    h, w = height // patch_size, width // patch_size
    x = x.reshape(b, c, h, patch_size, w, patch_size)  # (B, C, h, p1, w, p2)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, h * w, patch_size * patch_size * c)


def unpatchify(tokens: torch.Tensor, patch_size: int, channels: int) -> torch.Tensor:
    """(B, h·w, p·p·C) → (B, C, h·p, w·p) for square token grids; the inverse of `patchify`."""
    b, n, _ = tokens.shape
    side = math.isqrt(n)
    if side * side != n or tokens.shape[-1] != patch_size * patch_size * channels:
        raise ValueError(f"cannot unpatchify tokens of shape {tuple(tokens.shape)} with patch_size={patch_size}, "
                         f"channels={channels}: need a square token count and p·p·C features")
    x = tokens.reshape(b, side, side, patch_size, patch_size, channels)  # (B, h, w, p1, p2, C)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(b, channels, side * patch_size, side * patch_size)


class PatchEmbed(nn.Module):
    """Non-overlapping p×p patches of a (B, C, H, W) image → (B, (H/p)·(W/p), D) tokens in raster order."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % self.patch_size or x.shape[-1] % self.patch_size:
            raise ValueError(f"image size {tuple(x.shape[-2:])} is not a multiple of patch_size={self.patch_size}")
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, D, h, w) → (B, h·w, D)


class Attention(nn.Module):
    """softmax(q kᵀ / √d) v over all tokens, heads of size d = dim / num_heads; q, k, v from one fused projection."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, dim = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, dim // self.num_heads)  # (B, N, 3, H, d)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 × (B, H, N, d)
        out = ops.attention(q, k, v)  # (B, H, N, d)
        return self.proj(out.transpose(1, 2).reshape(b, n, dim))  # (B, N, D)


class Mlp(nn.Module):
    """fc2(GELU(fc1(x))), exact (erf) GELU."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))
