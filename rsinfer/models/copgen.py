"""COP-GEN-Beta: the any-to-any U-ViT denoiser over four Copernicus modalities (registry name ``copgen-beta``).

Same forward semantics and state_dict keys as the official ``Triffuser`` (``libs/triffuser_multi_post_ln.py`` of
miquel-espinosa/COP-GEN-Beta): a post-LN U-ViT whose sequence is one raw sinusoidal time token per modality followed by
each modality's patch tokens, with U-Net-style long skips between the in- and out-blocks and one patch embedding and
one linear head per modality.

Public API:
- ``MODALITIES``: the fixed modality order of the lists the network takes and returns (dem, s1_rtc, s2_l1c, s2_l2a).
- ``CopGenConfig``: the official config names; defaults are the released model (U-ViT-L/2 on 32×32×4 latents).
- ``build(**overrides) -> CopGenBeta``: a freshly initialised network; overrides are ``CopGenConfig`` fields.
- ``CopGenBeta.forward(imgs, t_imgs) -> list[Tensor]``: ``imgs`` one (B, in_chans, img_size, img_size) latent per
  modality in ``MODALITIES`` order, ``t_imgs`` one (B,) float timestep per modality in discrete units [0, 1000];
  returns one noise (ε) prediction per modality, shaped like its input. It computes in the network's parameter dtype
  and returns the dtype of ``imgs[0]``.
- ``prepare``: deprecated alias of the fast path, which is now `rsinfer.engines.prepare(net, precision, engine,
  backend)` (the one execution layer: precision, eager or compiled, ops backend).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from rsinfer.models.config import config_with_overrides
from rsinfer.models.modalities import MODALITIES
from rsinfer import ops
from rsinfer.models.prepared import prepare
from rsinfer.models.transformer import (Attention, Mlp, PatchEmbed, check_token_layout, timestep_embedding,
                                        unpatchify)

__all__ = ["MODALITIES", "CopGenConfig", "CopGenBeta", "PostLNBlock", "build", "prepare"]



@dataclass(frozen=True)
class CopGenConfig:
    """The released COP-GEN-Beta config (``configs/majortom/discrete/rome_dems1s2s2_cop_gen_beta.py``)."""

    img_size: int = 32
    patch_size: int = 2
    in_chans: int = 4
    embed_dim: int = 1024
    depth: int = 20  # depth // 2 in-blocks, one mid-block, depth // 2 out-blocks
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_modalities: int = 4

    def __post_init__(self) -> None:
        check_token_layout(self.img_size, self.patch_size, self.embed_dim, self.num_heads)
        if self.num_modalities < 1 or self.depth < 0:
            raise ValueError(f"need num_modalities ≥ 1 and depth ≥ 0, got {self.num_modalities}, {self.depth}")

    @property
    def patches_per_modality(self) -> int:
        return (self.img_size // self.patch_size) ** 2

    @property
    def num_tokens(self) -> int:
        return self.num_modalities * (1 + self.patches_per_modality)


class PostLNBlock(nn.Module):
    """U-ViT block with post-LayerNorm; out-blocks first fuse their long skip: x ← LN₁(W[x, skip] + b).

    Then x ← LN₂(x + Attn(x)) and x ← LN₃(x + MLP(x)), the add-and-normalise steps done by `ops.add_layernorm`.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, long_skip: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim) if long_skip else None
        self.norm2 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads, qkv_bias=False)
        self.norm3 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.skip_linear = nn.Linear(2 * dim, dim) if long_skip else None

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if self.skip_linear is not None:
            x = self.norm1(self.skip_linear(torch.cat([x, skip], dim=-1)))  # (B, N, 2D) → (B, N, D)
        x = ops.add_layernorm(x, self.attn(x), self.norm2.weight, self.norm2.bias, self.norm2.eps)
        return ops.add_layernorm(x, self.mlp(x), self.norm3.weight, self.norm3.bias, self.norm3.eps)


class CopGenBeta(nn.Module):
    """The official ``Triffuser`` (post-LN, ``mlp_time_embed=False``, ``qkv_bias=False``) with its key layout."""

    def __init__(self, config: CopGenConfig):
        super().__init__()
        self.config = config
        c = config
        self.patch_embeds = nn.ModuleList(PatchEmbed(c.patch_size, c.in_chans, c.embed_dim)
                                          for _ in range(c.num_modalities))
        self.pos_embed = nn.Parameter(torch.zeros(1, c.num_tokens, c.embed_dim))
        self.in_blocks = nn.ModuleList(PostLNBlock(c.embed_dim, c.num_heads, c.mlp_ratio, long_skip=False)
                                       for _ in range(c.depth // 2))
        self.mid_block = PostLNBlock(c.embed_dim, c.num_heads, c.mlp_ratio, long_skip=False)
        self.out_blocks = nn.ModuleList(PostLNBlock(c.embed_dim, c.num_heads, c.mlp_ratio, long_skip=True)
                                        for _ in range(c.depth // 2))
        self.norm = nn.LayerNorm(c.embed_dim)
        self.decoder_preds = nn.ModuleList(nn.Linear(c.embed_dim, c.patch_size ** 2 * c.in_chans)
                                           for _ in range(c.num_modalities))
        self._init_weights()

    def _init_weights(self) -> None:
        """The official initialisation: truncated normal(0.02) for pos_embed and Linear weights, zero biases."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02, a=-2.0, b=2.0)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02, a=-2.0, b=2.0)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, imgs: Sequence[torch.Tensor], t_imgs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        c = self.config
        self._check_inputs(imgs, t_imgs)
        dtype = self.pos_embed.dtype
        patches = [embed(img.to(dtype)) for embed, img in zip(self.patch_embeds, imgs)]  # M × (B, L, D)
        time_tokens = [timestep_embedding(t, c.embed_dim).to(dtype)[:, None] for t in t_imgs]  # M × (B, 1, D)
        x = torch.cat([*time_tokens, *patches], dim=1) + self.pos_embed  # (B, M·(1 + L), D)

        skips = []
        for block in self.in_blocks:
            x = block(x)
            skips.append(x)
        x = self.mid_block(x)
        for block in self.out_blocks:
            x = block(x, skips.pop())
        x = self.norm(x)

        patch_tokens = x[:, c.num_modalities:].split(c.patches_per_modality, dim=1)  # M × (B, L, D)
        return [unpatchify(head(tokens), c.patch_size, c.in_chans).to(imgs[0].dtype)  # M × (B, C, S, S)
                for head, tokens in zip(self.decoder_preds, patch_tokens)]

    def _check_inputs(self, imgs: Sequence[torch.Tensor], t_imgs: Sequence[torch.Tensor]) -> None:
        c = self.config
        if len(imgs) != c.num_modalities or len(t_imgs) != c.num_modalities:
            raise ValueError(f"expected {c.num_modalities} images and timesteps (one per modality), "
                             f"got {len(imgs)} and {len(t_imgs)}")
        expected = f"(B, {c.in_chans}, {c.img_size}, {c.img_size})"
        for i, (img, t) in enumerate(zip(imgs, t_imgs)):
            if img.dim() != 4 or tuple(img.shape[1:]) != (c.in_chans, c.img_size, c.img_size):
                raise ValueError(f"imgs[{i}] has shape {tuple(img.shape)}; expected {expected} "
                                 "(the positional embedding is not interpolated)")
            if t.dim() != 1 or t.shape[0] != img.shape[0]:
                raise ValueError(f"t_imgs[{i}] has shape {tuple(t.shape)}; expected ({img.shape[0]},)")


def build(**overrides) -> CopGenBeta:
    """A freshly initialised COP-GEN-Beta; `overrides` are `CopGenConfig` fields (the official config names)."""
    return CopGenBeta(config_with_overrides(CopGenConfig, "copgen-beta", overrides))
