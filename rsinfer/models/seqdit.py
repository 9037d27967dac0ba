"""SeqDiT: COP-GEN-Beta's any-to-any interface with per-modality timestep modulation (registry name ``seqdit``).

Same inputs and outputs as `rsinfer.models.copgen.CopGenBeta` (one latent and one timestep per modality, in
`MODALITIES` order; one ε prediction per modality), but time enters through adaLN-Zero modulation (DiT, Peebles & Xie
2023) instead of in-context time tokens, and each modality's tokens are modulated by *its own* timestep.

Token layout: no time tokens; the sequence is the M modalities' patch tokens back to back,
``[P_0 (L tokens), P_1 (L), ..., P_{M-1} (L)]``, L = (img_size / patch_size)², with one learned positional embedding
over all M·L tokens. The modulation parameters are per modality, shaped (B, M, D), and reach the tokens through the
ops' ``segments = [L] * M`` (token n takes the parameters of the modality it belongs to).

Conditioning of modality m: c_m = MLP(sinusoid(t_m)) + e_m, with a learned modality embedding e_m (so two
modalities at the same noise level still get different modulations).

Block (pre-LN, adaLN-Zero), with (shift, scale, gate) × 2 = Linear(SiLU(c)) per modality:
    x ← x + gate₁ ⊙ Attn(modulate(x, shift₁, scale₁))
    x ← x + gate₂ ⊙ MLP(modulate(x, shift₂, scale₂))
The first modulate is `ops.modulate`; the first residual and the second modulate are one `ops.residual_modulate`.
Final layer: modulate(x, shift, scale) → per-modality Linear head → unpatchify. The modulation and head weights start at
zero (adaLN-Zero), so a freshly built network predicts ε = 0; load or randomise weights before use.

Public API: ``SeqDiTConfig`` (official-style names as in `copgen`, plus ``frequency_embedding_size``),
``build(**overrides) -> SeqDiT``, ``SeqDiT.forward(imgs, t_imgs) -> list[Tensor]`` (returns the dtype of ``imgs[0]``).
Random-weight configs only: no released checkpoint exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from rsinfer.models.config import config_with_overrides
from rsinfer import ops
from rsinfer.models.transformer import (Attention, Mlp, PatchEmbed, check_token_layout, timestep_embedding,
                                        unpatchify)

_LN_EPS = 1e-6  # DiT's LayerNorm epsilon inside modulate


@dataclass(frozen=True)
class SeqDiTConfig:
    img_size: int = 32
    patch_size: int = 2
    in_chans: int = 4
    embed_dim: int = 1024
    depth: int = 20
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_modalities: int = 4
    frequency_embedding_size: int = 256

    def __post_init__(self) -> None:
        check_token_layout(self.img_size, self.patch_size, self.embed_dim, self.num_heads)

    @property
    def patches_per_modality(self) -> int:
        return (self.img_size // self.patch_size) ** 2

    @property
    def segments(self) -> list[int]:
        return [self.patches_per_modality] * self.num_modalities


class TimestepEmbedder(nn.Module):
    """t (B,) → MLP(sinusoid(t)) (B, D): Linear → SiLU → Linear (keys ``mlp.0``, ``mlp.2``)."""

    def __init__(self, dim: int, frequency_embedding_size: int):
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(nn.Linear(frequency_embedding_size, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.frequency_embedding_size).to(self.mlp[0].weight.dtype))


def _per_token(p: torch.Tensor, segments: Sequence[int]) -> torch.Tensor:
    """Per-segment (B, S, D) → per-token (B, ΣS, D)."""
    return p.repeat_interleave(torch.as_tensor(list(segments), device=p.device), dim=1, output_size=sum(segments))


class AdaLNZeroBlock(nn.Module):
    """DiT block whose six modulation vectors are per modality (per token segment)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.attn = Attention(dim, num_heads, qkv_bias=True)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor, segments: Sequence[int]) -> torch.Tensor:
        # x: (B, N, D) tokens; c: (B, M, D) per-modality conditioning
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c).chunk(6, dim=-1)  # 6 × (B, M, D)
        h = ops.modulate(x, shift1, scale1, segments, _LN_EPS)
        x, h = ops.residual_modulate(x, self.attn(h), gate1, shift2, scale2, segments, _LN_EPS)
        return x + _per_token(gate2, segments) * self.mlp(h)


class SeqDiT(nn.Module):
    """See the module docstring."""

    def __init__(self, config: SeqDiTConfig):
        super().__init__()
        self.config = config
        c = config
        self.patch_embeds = nn.ModuleList(PatchEmbed(c.patch_size, c.in_chans, c.embed_dim)
                                          for _ in range(c.num_modalities))
        self.pos_embed = nn.Parameter(torch.zeros(1, c.num_modalities * c.patches_per_modality, c.embed_dim))
        self.t_embedder = TimestepEmbedder(c.embed_dim, c.frequency_embedding_size)
        self.modality_embed = nn.Parameter(torch.zeros(1, c.num_modalities, c.embed_dim))
        self.blocks = nn.ModuleList(AdaLNZeroBlock(c.embed_dim, c.num_heads, c.mlp_ratio) for _ in range(c.depth))
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(c.embed_dim, 2 * c.embed_dim))
        self.heads = nn.ModuleList(nn.Linear(c.embed_dim, c.patch_size ** 2 * c.in_chans)
                                   for _ in range(c.num_modalities))
        self._init_weights()

    def _init_weights(self) -> None:
        """DiT's initialisation: Xavier-uniform Linear weights, N(0, 0.02) embeddings, zero modulations and heads."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.modality_embed, std=0.02)
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        for zeroed in (self.final_modulation[-1], *self.heads):
            nn.init.zeros_(zeroed.weight)
            nn.init.zeros_(zeroed.bias)

    def forward(self, imgs: Sequence[torch.Tensor], t_imgs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        c = self.config
        if len(imgs) != c.num_modalities or len(t_imgs) != c.num_modalities:
            raise ValueError(f"expected {c.num_modalities} images and timesteps (one per modality), "
                             f"got {len(imgs)} and {len(t_imgs)}")
        for i, img in enumerate(imgs):
            if img.dim() != 4 or tuple(img.shape[1:]) != (c.in_chans, c.img_size, c.img_size):
                raise ValueError(f"imgs[{i}] has shape {tuple(img.shape)}; "
                                 f"expected (B, {c.in_chans}, {c.img_size}, {c.img_size})")
        dtype = self.pos_embed.dtype
        segments = c.segments
        x = torch.cat([embed(img.to(dtype)) for embed, img in zip(self.patch_embeds, imgs)], dim=1)  # (B, M·L, D)
        x = x + self.pos_embed
        cond = torch.stack([self.t_embedder(t) for t in t_imgs], dim=1) + self.modality_embed  # (B, M, D)

        for block in self.blocks:
            x = block(x, cond, segments)

        shift, scale = self.final_modulation(cond).chunk(2, dim=-1)  # 2 × (B, M, D)
        x = ops.modulate(x, shift, scale, segments, _LN_EPS)
        return [unpatchify(head(tokens), c.patch_size, c.in_chans).to(imgs[0].dtype)  # M × (B, C, S, S)
                for head, tokens in zip(self.heads, x.split(c.patches_per_modality, dim=1))]


def build(**overrides) -> SeqDiT:
    """A freshly initialised SeqDiT (adaLN-Zero: predicts 0 until trained); `overrides` are `SeqDiTConfig` fields."""
    return SeqDiT(config_with_overrides(SeqDiTConfig, "seqdit", overrides))
