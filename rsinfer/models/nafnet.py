"""NAFNet building blocks with time modulation, and the SAR→optical fusion block of DB-CR.

NAFNet (Chen et al., ECCV 2022) replaces activations by SimpleGate (split the channels in half, multiply the halves)
and channel attention by "simplified channel attention" (a 1×1 conv of the global average, multiplied back).
DB-CR makes every block time-conditioned: four per-channel vectors from the time embedding scale and shift the
normalised features ahead of the two paths (`rsinfer.ops.group_modulate`), and learnable scalars β, γ weight the two
residual branches.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rsinfer import ops

# β, γ start non-zero (NAFNet starts them at 0) so that a freshly built network exercises every path: random-weight
# runs and tests then check the whole computation, not an identity.
RESIDUAL_SCALE_INIT = 0.5


def simple_gate(x: torch.Tensor) -> torch.Tensor:
    """(B, 2C, H, W) → (B, C, H, W): the first channel half times the second."""
    a, b = x.chunk(2, dim=1)
    return a * b


class SimpleGate(nn.Module):
    """`simple_gate` on the last axis, for the (B, 2D) vectors of the time MLP."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=-1)
        return a * b


class SinusoidalEmbedding(nn.Module):
    """Positional encoding of a scalar per sample: (B,) → (B, dim), [cos | sin] at geometric frequencies."""

    def __init__(self, dim: int, max_period: float = 10000.0) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"sinusoidal embedding width must be even, got {dim}")
        half = dim // 2
        self.register_buffer("frequencies", torch.exp(-math.log(max_period) * torch.arange(half) / half),
                             persistent=False)

    def forward(self, value: torch.Tensor) -> torch.Tensor:
        angles = value.float()[:, None] * self.frequencies[None]  # (B, dim/2)
        return torch.cat([angles.cos(), angles.sin()], dim=-1)  # (B, dim)


class TimeNAFBlock(nn.Module):
    """NAFBlock whose two normalisations are modulated by the time embedding.

    x ← x + β · conv(SCA(SG(dwconv(conv(mod₁(x))))))   (MBConv path, expansion `dw_expand`)
    x ← x + γ · conv(SG(conv(mod₂(x))))                (FFN path, expansion `ffn_expand`)
    with mod_i(x) = GroupNorm₁(x)·(1 + scale_i) + shift_i and (scale₁, shift₁, scale₂, shift₂) = Linear(embedding).
    """

    def __init__(self, channels: int, time_dim: int, dw_expand: int = 2, ffn_expand: int = 2) -> None:
        super().__init__()
        dw = channels * dw_expand
        ffn = channels * ffn_expand
        self.modulation = nn.Linear(time_dim, 4 * channels)
        self.expand = nn.Conv2d(channels, dw, 1)
        self.depthwise = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.channel_attention = nn.Conv2d(dw // 2, dw // 2, 1)  # applied to the global average (SCA)
        self.project = nn.Conv2d(dw // 2, channels, 1)
        self.ffn_expand = nn.Conv2d(channels, ffn, 1)
        self.ffn_project = nn.Conv2d(ffn // 2, channels, 1)
        self.beta = nn.Parameter(torch.full((), RESIDUAL_SCALE_INIT))
        self.gamma = nn.Parameter(torch.full((), RESIDUAL_SCALE_INIT))

    def forward(self, x: torch.Tensor, time_embedding: torch.Tensor) -> torch.Tensor:
        scale1, shift1, scale2, shift2 = self.modulation(time_embedding).chunk(4, dim=-1)  # 4 × (B, C)
        h = self.expand(ops.group_modulate(x, shift1, scale1))  # (B, dw, H, W)
        h = simple_gate(self.depthwise(h))  # (B, dw/2, H, W)
        h = h * self.channel_attention(h.mean(dim=(2, 3), keepdim=True))
        x = x + self.beta * self.project(h)  # (B, C, H, W)
        h = simple_gate(self.ffn_expand(ops.group_modulate(x, shift2, scale2)))  # (B, ffn/2, H, W)
        return x + self.gamma * self.ffn_project(h)


class SarFusionBlock(nn.Module):
    """SFBlock: optical features attend to SAR features across channels (transposed attention), then an MLP.

    Q = conv(norm(optical)), (K, V) = conv(norm(sar)); per head, Q and K are L2-normalised over the H·W pixels and
    A = softmax(τ_h · Q Kᵀ) is a (C/h × C/h) channel-attention matrix applied to V (Restormer/XCA-style). The heads are
    concatenated and projected: optical ← optical + proj(A V); optical ← optical + MLP(norm(optical)) with a GELU MLP of
    hidden width `mlp_ratio`·C. SAR features pass through unchanged.
    """

    def __init__(self, channels: int, heads: int, mlp_ratio: int = 2) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"fusion heads {heads} must divide the channel count {channels}")
        self.heads = heads
        self.optical_norm = nn.GroupNorm(1, channels)
        self.sar_norm = nn.GroupNorm(1, channels)
        self.query = nn.Conv2d(channels, channels, 1)
        self.key_value = nn.Conv2d(channels, 2 * channels, 1)
        self.temperature = nn.Parameter(torch.ones(heads))
        self.project = nn.Conv2d(channels, channels, 1)
        self.mlp_norm = nn.GroupNorm(1, channels)
        self.mlp = nn.Sequential(nn.Conv2d(channels, mlp_ratio * channels, 1), nn.GELU(),
                                 nn.Conv2d(mlp_ratio * channels, channels, 1))

    def forward(self, optical: torch.Tensor, sar: torch.Tensor) -> torch.Tensor:
        b, c, h, w = optical.shape
        q = self.query(self.optical_norm(optical)).reshape(b, self.heads, c // self.heads, h * w)  # (B, h, C/h, HW)
        k, v = self.key_value(self.sar_norm(sar)).reshape(b, 2, self.heads, c // self.heads, h * w).unbind(1)
        q = F.normalize(q, dim=-1) * self.temperature[None, :, None, None]  # τ folded into Q: softmax(τ q̂ k̂ᵀ)
        k = F.normalize(k, dim=-1)
        attended = ops.attention(q, k, v, scale=1.0)  # (B, h, C/h, HW): tokens are channels, features are pixels
        optical = optical + self.project(attended.reshape(b, c, h, w))
        return optical + self.mlp(self.mlp_norm(optical))
