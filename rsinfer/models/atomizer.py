"""Atomizer: the any-sensor Perceiver encoder of "Atomizer: Generalizing to new modalities by breaking satellite
images down to a set of scalars" (Riffaud de Turckheim et al., arXiv 2506.13542), registry name ``atomizer``.

Same forward semantics and state_dict keys as the official ``Atomiser`` (HugoRdet/Atomizer @57bb634c,
``training/atomiser/Atomiser.py`` and ``nn_comp.py``). Every pixel-band value is a token (`atomizer_tokens`); learned
latents x (N, D) read the tokens by cross-attention and are refined by self-attention:

    x = latents                                               (N, D), broadcast over the batch
    for each of `depth` layers:
        x += to_out(attention(to_q(LN(x)), to_kv(LN_ctx(tokens))))    cross_heads × cross_dim_head, 1/√d, key mask
        x += GEGLU(LN(x))                                              w2(a · GELU(g)), [a | g] = w1(x), D → 8D → D
        self_per_cross_attn × [x += SelfAttention(LN(x)); x += GEGLU(LN(x))]    latent_heads × latent_dim_head
    pooled = LatentAttentionPooling(x)     a learned query attends to x (no LN), scores · d^−½ / 10 (temperature 10)
    logits = Linear(LN(pooled))            (B, num_classes) multi-label logits

Invalid (masked) tokens take no part. q, kv and the self-attention qkv have no bias; every LayerNorm has eps 1e-5
and an affine; heads split as "(h d)". With `weight_tie_layers`, layers 1 … depth−1 share one set of modules and
layer 0 has its own, as upstream's `cache_fn` does.

How the cross-attention is computed (the fast path; exact up to float32 rounding). A token t enters only through
k = W_k(γ ⊙ t̂ + β) and v = W_v(γ ⊙ t̂ + β), with t̂ = (t − μ_t)·ρ_t its LayerNorm (ρ_t = 1/√(var_t + ε)). So

    q · k = q̃ · t̂ + q · W_k β  with  q̃ = (W_k diag γ)ᵀ q · d^−½,     Σ_t p_t v_t = W_v diag γ (Σ_t p_t t̂_t) + W_v β.

1. No key or value projection. The term q · W_k β is the same for every token of a query and cancels in the
   softmax, so attention runs in the token space itself. The to_kv projection of all 172,800 tokens of a 120²
   12-band window disappears.
2. The tokenizer is fused into the attention. A token is [s_c | u_t]: the wavelength part s_c is shared by every
   token of band c, and u_t (value, row, column) is its own. Hence q̃ · t̂ = ρ_t (q̃_s · s_c) + q̃_u · (ρ_t u_t) −
   (Σ q̃)·(ρ_t μ_t). Tokens are stored per band as rows [ρ | ρu | ρμ | 1] (`TokenGroups`: 22 wide at the paper-era
   size, padded to 24, against 2·64 for k and v). The 16-wide wavelength part collapses into one query column per
   band, q̃_s · s_c. The rows are built once per window, never materialising the token tensor, and serve all layers.
   Σ_t e_t t̂_t is rebuilt from the same rows, Σ e·[ρ | ρu | ρμ | 1] per band.
3. Tokens are read in chunks with an exact online softmax. Scores are kept in base 2 (log2 e is folded into q̃) and
   exponentiated with exp2, which runs about 3x faster than exp on CPU. t̂ has zero mean and norm ≤ √D_in, so every
   score lies in ±b_q, with b_q = ‖q̃ − mean q̃‖·√D_in. When 2·b_q stays inside float32's exponent range,
   2^(score − b_q) can neither overflow nor leave the normal range. Chunks then add up with one fixed offset, which
   rides in the ones column. Each chunk costs one GEMM, one in-place exp2 and one GEMM, and the second GEMM also
   returns the softmax denominator. Otherwise the offset follows the running maximum, the usual online softmax.

Public API:
- `AtomizerConfig`: the official config names (the ``Atomiser`` section plus the top-level
  ``wavelengths_encoding``); build(**cfg, wavelengths_encoding=...) → `Atomizer`.
- `Atomizer.tokenize(image, mask, resolution, bands=None) -> (tokens (B, H·W·C, D_in), token_mask (B, H·W·C))`.
- `Atomizer.forward(image, mask, resolution, bands=None) -> logits (B, num_classes)`; `embed(...) -> (B, D)` pooled
  latent; `encode(...) -> (B, N, D)` latents.
- `Atomizer.forward_tokens(tokens, token_mask) -> logits`: the same network from (official) tokens.
- `checkpoint_state_dict(state_dict, net)`: maps a plain state dict, a ``.pth`` of the encoder or a Lightning
  ``state_dict`` (``encoder.`` prefix) onto the network's keys; the cached ``*wavelength_encoding_s2`` buffer is
  checked against the configured anchors and dropped, never required.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import get_args

import torch
import torch.nn.functional as F
from torch import nn

from rsinfer import ops
from rsinfer.models.atomizer_tokens import (
    BENV2_S2_BANDS,
    AtomizerTokenizer,
    BandSpec,
    BandValueEncoding,
    PositionEncoding,
    TokenGroups,
    WavelengthEncoding,
    gaussian_anchors,
    resolve_bands,
)
from rsinfer.models.config import config_with_overrides

__all__ = ["AtomizerConfig", "Atomizer", "build", "checkpoint_state_dict", "folded_cross_attention"]

POOLING_TEMPERATURE = 10.0  # upstream CrossAttention's default, used by the pooling head's manual attention path
CACHED_WAVELENGTHS = "wavelength_encoding_s2"  # upstream tokenizer's cached buffer, saved in its checkpoints
LOG2_E = 1.4426950408889634  # scores are kept in base 2: exp2 runs about 3x faster than exp on CPU
# 2^(s − offset) with s − offset ≥ −FIXED_OFFSET_SPAN stays a normal float32 (2^−126 is the smallest one)
FIXED_OFFSET_SPAN = 0.9 * -math.log2(torch.finfo(torch.float32).tiny)


@dataclass(frozen=True)
class AtomizerConfig:
    """The official config names. Architecture defaults are the one recovered configuration (a 2025-04-24 dev printout,
    research note §2.3), not confirmed as the paper's; the wavelength anchors have no default."""

    depth: int = 8
    num_latents: int = 512
    latent_dim: int = 512
    cross_heads: int = 1
    latent_heads: int = 8
    cross_dim_head: int = 64
    latent_dim_head: int = 64
    num_classes: int = 19
    self_per_cross_attn: int = 1
    weight_tie_layers: bool = False
    wavelength_encoding: WavelengthEncoding = "GAUSSIANS"
    bandvalue_encoding: BandValueEncoding = "NATURAL"
    bandvalue_num_freq_bands: int | None = None  # FF only; −1 = linspace(1, max_freq, max_freq)
    bandvalue_max_freq: float | None = None  # FF only
    pos_encoding: PositionEncoding = "FF"
    pos_num_freq_bands: int = 4
    pos_max_freq: float = 4
    wavelengths_encoding: Mapping[str, Mapping[str, float]] | None = None  # {g0: {mean, std}, ...}, in key order

    def __post_init__(self) -> None:
        for name, allowed in (("wavelength_encoding", WavelengthEncoding), ("bandvalue_encoding", BandValueEncoding),
                              ("pos_encoding", PositionEncoding)):
            if getattr(self, name) not in get_args(allowed):
                raise ValueError(f"{name} {getattr(self, name)!r} is not one of {get_args(allowed)}")
        if self.wavelengths_encoding is None:
            raise ValueError("wavelengths_encoding is required: the official config's Gaussian anchors "
                             "{'g0': {'mean': nm, 'std': nm}, ...} (a checkpoint does not fix them)")
        gaussian_anchors(self.wavelengths_encoding)
        for name in ("depth", "num_latents", "latent_dim", "cross_heads", "latent_heads", "cross_dim_head",
                     "latent_dim_head", "num_classes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.self_per_cross_attn < 0:
            raise ValueError(f"self_per_cross_attn must be ≥ 0, got {self.self_per_cross_attn}")
        self._check_fourier("pos", self.pos_num_freq_bands, self.pos_max_freq)
        if self.bandvalue_encoding == "FF":
            self._check_fourier("bandvalue", self.bandvalue_num_freq_bands, self.bandvalue_max_freq)

    @staticmethod
    def _check_fourier(prefix: str, num_bands: int | None, max_freq: float | None) -> None:
        if num_bands is None or max_freq is None:
            raise ValueError(f"{prefix} FF needs {prefix}_num_freq_bands and {prefix}_max_freq, got {num_bands!r} "
                             f"and {max_freq!r}")
        if num_bands == -1:
            if max_freq != int(max_freq) or max_freq < 1:
                raise ValueError(f"{prefix}_num_freq_bands = -1 takes linspace(1, max_freq, max_freq): "
                                 f"{prefix}_max_freq must be a positive integer, got {max_freq!r}")
        elif num_bands < 1:
            raise ValueError(f"{prefix}_num_freq_bands must be ≥ 1 or -1, got {num_bands}")

    @property
    def anchors(self) -> tuple[tuple[float, float], ...]:
        return gaussian_anchors(self.wavelengths_encoding)


def folded_cross_attention(q: torch.Tensor, tokens: TokenGroups, to_kv_weight: torch.Tensor, gamma: torch.Tensor,
                           beta: torch.Tensor, heads: int, chunk: int) -> torch.Tensor:
    """Multi-head attention of q over the valid tokens of one sample, in the tokens' own space (module docstring).

    q (N, heads·d) the projected queries; `tokens` one sample's tokens t, grouped (`TokenGroups`); to_kv_weight
    (2·heads·d, D_in); gamma, beta (D_in,) the affine of LN_ctx. Equals softmax(q kᵀ/√d) v per head with
    [k | v] = to_kv(LN_ctx(t)), returned as (N, heads·d) in float32.
    """
    n, inner = q.shape
    dim_head = inner // heads
    shared, rows, u = tokens.shared.float(), tokens.rows, tokens.individual_dim
    s = shared.shape[1]
    d_in = s + u
    weight = to_kv_weight.float() * gamma.float()  # (2·inner, D_in): W diag γ
    w_k, w_v = weight.view(2, heads, dim_head, d_in).unbind(0)  # (h, d, D_in) each
    v_bias = (to_kv_weight.float()[inner:] @ beta.float()).view(heads, 1, dim_head)  # W_v β

    q_heads = q.float().view(n, heads, dim_head).transpose(0, 1) * (dim_head ** -0.5 * LOG2_E)  # (h, N, d)
    folded = torch.bmm(q_heads, w_k).reshape(heads * n, d_in)  # q̃ in base 2: 2^(q̃ · t̂) = e^(q · k / √d)
    folded = folded - folded.mean(dim=-1, keepdim=True)  # t̂ has zero mean, so this changes no score
    bound = folded.detach().norm(dim=-1) * math.sqrt(d_in)  # (h·N,): |q̃ · t̂| ≤ bound
    running = bool(2 * bound.max() > FIXED_OFFSET_SPAN)
    offset = -bound if running else bound  # the GEMM returns q̃ · t̂ − offset
    per_group = folded[:, :s] @ shared.t()  # (h·N, groups): q̃_s · s_g
    queries = torch.cat([per_group[:, :1], folded[:, s:], -folded.sum(dim=1, keepdim=True), -offset[:, None],
                         folded.new_zeros(heads * n, rows.shape[1] - u - 3)], dim=1)  # (h·N, K)

    grad = torch.is_grad_enabled() and (queries.requires_grad or rows.requires_grad)  # in-place ops only without
    shift = folded.new_zeros(heads * n)  # running maximum of q̃ · t̂ − offset, when `running`
    scratch = None if grad else folded.new_empty(heads * n * min(chunk, rows.shape[0]))
    sums = []  # per group Σ_t e_t row_t, e_t = 2^(q̃ · t̂ − offset − shift) (h·N, K)
    start = 0
    for g, size in enumerate(tokens.sizes):
        queries = torch.cat([per_group[:, g:g + 1], queries[:, 1:]], dim=1) if grad else queries
        if not grad:
            queries[:, 0] = per_group[:, g]
        acc = folded.new_zeros(heads * n, rows.shape[1])
        pieces = -(-size // chunk)
        for part in rows[start:start + size].tensor_split(pieces):  # (c, K), chunks of nearly equal size
            if grad:
                scores = queries @ part.t()
            else:
                scores = scratch[:heads * n * part.shape[0]].view(heads * n, part.shape[0])
                torch.mm(queries, part.t(), out=scores)  # (h·N, c)
            if running:
                top = torch.maximum(shift, scores.detach().amax(dim=1))
                scores = scores - top[:, None] if grad else scores.sub_(top[:, None])
                rescale = torch.exp2(shift - top)[:, None]
                acc, sums = acc * rescale, [previous * rescale for previous in sums]
                shift = top
            scores = scores.exp2() if grad else scores.exp2_()
            acc = torch.addmm(acc, scores, part) if grad else acc.addmm_(scores, part)
        sums.append(acc)
        start += size
    sums = torch.stack(sums)  # (groups, h·N, K)
    total = sums.sum(dim=0)  # (h·N, K)
    shared_part = torch.einsum("gn,gs->ns", sums[:, :, 0], shared)  # Σ_g s_g Σ_t e_t ρ_t
    mixed = torch.cat([shared_part, total[:, 1:u + 1]], dim=1) - total[:, u + 1:u + 2]  # Σ_t e_t t̂_t (h·N, D_in)
    mixed = (mixed / total[:, u + 2:u + 3]).view(heads, n, d_in)  # Σ_t p_t t̂_t
    out = torch.bmm(mixed, w_v.transpose(1, 2)) + v_bias  # (h, N, d)
    return out.transpose(0, 1).reshape(n, inner)


class CrossAttention(nn.Module):
    """Queries from x, keys and values from a context; keys ``to_q``, ``to_kv``, ``to_out.0``."""

    def __init__(self, query_dim: int, context_dim: int, heads: int, dim_head: int,
                 temperature: float = 1.0) -> None:
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        self.temperature = temperature
        self.to_q = nn.Linear(query_dim, heads * dim_head, bias=False)
        self.to_kv = nn.Linear(context_dim, 2 * heads * dim_head, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, query_dim))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """x (B, n, D), context (B, M, D_ctx) → (B, n, D): scores · d^−½ / temperature, no mask."""
        q = _split_heads(self.to_q(x), self.heads)  # (B, h, n, d)
        k, v = (_split_heads(t, self.heads) for t in self.to_kv(context).chunk(2, dim=-1))  # (B, h, M, d)
        out = ops.attention(q, k, v, scale=self.dim_head ** -0.5 / self.temperature)
        return self.to_out(_merge_heads(out))

    def forward_grouped(self, x: torch.Tensor, contexts: Sequence[TokenGroups], norm_context: nn.LayerNorm,
                        chunk: int) -> torch.Tensor:
        """x (B, N, D) normalised latents; contexts: each sample's tokens (LN_ctx applied inside) → (B, N, D)."""
        q = self.to_q(x)  # (B, N, h·d)
        mixed = torch.stack([
            folded_cross_attention(q[b], context, self.to_kv.weight, norm_context.weight, norm_context.bias,
                                   self.heads, chunk) for b, context in enumerate(contexts)])  # (B, N, h·d)
        return self.to_out(mixed.to(q.dtype))


class SelfAttention(nn.Module):
    """softmax(q kᵀ/√d) v over the latents; keys ``to_qkv`` (no bias, split q | k | v) and ``to_out.0``."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (_split_heads(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=-1))  # (B, h, N, d) each
        return self.to_out(_merge_heads(ops.attention(q, k, v)))


class FeedForward(nn.Module):
    """GEGLU: w2(a · GELU(g)) with [a | g] = w1(x); keys ``w1`` (D → 2·mult·D), ``w2`` (mult·D → D)."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, 2 * mult * dim)
        self.w2 = nn.Linear(mult * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, gate = self.w1(x).chunk(2, dim=-1)
        return self.w2(a * F.gelu(gate))


class PreNorm(nn.Module):
    """fn(LN(x)); keys ``norm``, ``fn``, and ``norm_context`` for the cross-attention's tokens."""

    def __init__(self, dim: int, fn: nn.Module, context_dim: int | None = None) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn
        if context_dim is not None:
            self.norm_context = nn.LayerNorm(context_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class LatentAttentionPooling(nn.Module):
    """A learned query (1, 1, D) attends to the latents, temperature 10 → (B, D); keys ``query``, ``cross.*``."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, dim))
        self.cross = CrossAttention(dim, dim, heads, dim_head, temperature=POOLING_TEMPERATURE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cross(self.query.expand(x.shape[0], -1, -1), x).squeeze(1)


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, n, h·d) → (B, h, n, d)."""
    b, n, inner = x.shape
    return x.view(b, n, heads, inner // heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, h, n, d) → (B, n, h·d)."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def _layers(config: AtomizerConfig, token_dim: int) -> nn.ModuleList:
    """`depth` × [cross-attention, its feed-forward, self_per_cross_attn × [self-attention, feed-forward]].

    Weight tying as upstream's cache_fn: layer 0 builds its own modules, layers ≥ 1 share one module per role.
    """
    dim = config.latent_dim
    shared: dict[tuple, nn.Module] = {}

    def module(role: tuple, layer: int, make: Callable[[], nn.Module]) -> nn.Module:
        if layer == 0 or not config.weight_tie_layers:
            return make()
        if role not in shared:
            shared[role] = make()
        return shared[role]

    layers = nn.ModuleList()
    for i in range(config.depth):
        cross = module(("cross",), i, lambda: PreNorm(
            dim, CrossAttention(dim, token_dim, config.cross_heads, config.cross_dim_head), context_dim=token_dim))
        cross_ff = module(("cross_ff",), i, lambda: PreNorm(dim, FeedForward(dim)))
        self_blocks = nn.ModuleList(nn.ModuleList([
            module(("self", j), i, lambda: PreNorm(dim, SelfAttention(dim, config.latent_heads,
                                                                      config.latent_dim_head))),
            module(("self_ff", j), i, lambda: PreNorm(dim, FeedForward(dim))),
        ]) for j in range(config.self_per_cross_attn))
        layers.append(nn.ModuleList([cross, cross_ff, self_blocks]))
    return layers


class Atomizer(nn.Module):
    """The encoder and its classification head; `token_chunk` tokens are read at a time by the cross-attention."""

    token_chunk: int = 4096

    def __init__(self, config: AtomizerConfig) -> None:
        super().__init__()
        self.config = config
        self.transform = AtomizerTokenizer(config.anchors, config.bandvalue_encoding, config.bandvalue_max_freq,
                                           config.bandvalue_num_freq_bands, config.pos_max_freq,
                                           config.pos_num_freq_bands)
        self.transform.register_load_state_dict_pre_hook(_drop_cached_wavelengths)
        self.latents = nn.Parameter(torch.empty(config.num_latents, config.latent_dim))
        nn.init.trunc_normal_(self.latents, std=0.02, a=-2.0, b=2.0)
        self.layers = _layers(config, self.transform.token_dim)
        self.to_logits = nn.Sequential(
            LatentAttentionPooling(config.latent_dim, config.latent_heads, config.latent_dim_head),
            nn.LayerNorm(config.latent_dim),
            nn.Linear(config.latent_dim, config.num_classes),
        )

    @property
    def token_dim(self) -> int:
        return self.transform.token_dim

    def tokenize(self, image: torch.Tensor, mask: torch.Tensor, resolution: torch.Tensor | Sequence[float],
                 bands: Sequence[BandSpec] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """image, mask (B, C, H, W), resolution (B,) → official tokens (B, H·W·C, D_in), token_mask (B, H·W·C)."""
        return self.transform(image.float(), mask, resolution, bands)

    def encode(self, image: torch.Tensor, mask: torch.Tensor, resolution: torch.Tensor | Sequence[float],
               bands: Sequence[BandSpec] | None = None) -> torch.Tensor:
        """image (B, C, H, W) normalised values, mask (B, C, H, W) nonzero = valid, resolution (B,) → (B, N, D)."""
        return self.encode_grouped(self.transform.token_groups(image, mask, resolution, bands))

    def embed(self, image: torch.Tensor, mask: torch.Tensor, resolution: torch.Tensor | Sequence[float],
              bands: Sequence[BandSpec] | None = None) -> torch.Tensor:
        """The pooled latent (B, D) that feeds the classifier."""
        return self.to_logits[0](self.encode(image, mask, resolution, bands))

    def forward(self, image: torch.Tensor, mask: torch.Tensor, resolution: torch.Tensor | Sequence[float],
                bands: Sequence[BandSpec] | None = None) -> torch.Tensor:
        """(B, num_classes) multi-label logits (sigmoid for probabilities)."""
        return self.to_logits(self.encode(image, mask, resolution, bands))

    def forward_tokens(self, tokens: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        """tokens (B, T, D_in), token_mask (B, T) nonzero = valid → logits; tokens with mask 0 take no part."""
        if tokens.dim() != 3 or tokens.shape[-1] != self.token_dim:
            raise ValueError(f"tokens must be (B, T, {self.token_dim}), got shape {tuple(tokens.shape)}")
        if token_mask.shape != tokens.shape[:2]:
            raise ValueError(f"token_mask {tuple(token_mask.shape)} must be (B, T) = {tuple(tokens.shape[:2])}")
        shared = self.transform.wavelength_dim  # official tokens: the wavelength part is shared by a band's tokens
        contexts = [TokenGroups.from_tokens(sample[valid], shared)
                    for sample, valid in zip(tokens.float(), token_mask != 0)]
        return self.to_logits(self.encode_grouped(contexts))

    def encode_grouped(self, contexts: Sequence[TokenGroups]) -> torch.Tensor:
        """Each sample's valid tokens, grouped (`TokenGroups`) → latents (B, N, D)."""
        for b, context in enumerate(contexts):
            if context.rows.shape[0] == 0:
                raise ValueError(f"sample {b} has no valid token (its mask is all zero): nothing to attend to")
        x = self.latents.expand(len(contexts), -1, -1)  # (B, N, D)
        for cross, cross_ff, self_blocks in self.layers:
            x = cross.fn.forward_grouped(cross.norm(x), contexts, cross.norm_context, self.token_chunk) + x
            x = cross_ff(x) + x
            for attention, feed_forward in self_blocks:
                x = attention(x) + x
                x = feed_forward(x) + x
        return x


def _drop_cached_wavelengths(module: AtomizerTokenizer, state_dict: dict, prefix: str, *_) -> None:
    """Load pre-hook of ``transform``: check upstream's cached wavelength block against the anchors, then drop it."""
    cached = state_dict.pop(prefix + CACHED_WAVELENGTHS, None)
    if cached is not None:
        check_cached_wavelengths(cached, module)


def check_cached_wavelengths(cached: torch.Tensor, tokenizer: AtomizerTokenizer) -> None:
    """Upstream's cache [1, T, H, W, 12, G] holds the 12 BigEarthNet bands' encoding under the training anchors."""
    expected = tokenizer.band_encoding(resolve_bands(None)).cpu()  # (12, G)
    if cached.dim() < 2 or tuple(cached.shape[-2:]) != tuple(expected.shape):
        raise ValueError(f"the checkpoint's cached {CACHED_WAVELENGTHS} has shape {tuple(cached.shape)}; expected "
                         f"[..., {len(BENV2_S2_BANDS)}, {expected.shape[1]}] for {expected.shape[1]} configured "
                         "wavelength anchors")
    block = cached.detach().float().cpu().reshape(-1, *expected.shape)
    tolerance = max(1e-5, 2 * torch.finfo(cached.dtype).eps)
    error = (block - expected).abs().max().item()
    if error > tolerance:
        raise ValueError(f"the checkpoint's cached {CACHED_WAVELENGTHS} differs from the encoding of the configured "
                         f"wavelengths_encoding by up to {error:.3g} (tolerance {tolerance:.1g}): the anchors do not "
                         "match those the checkpoint was trained with")


def checkpoint_state_dict(state_dict: Mapping[str, torch.Tensor], net: Atomizer) -> dict[str, torch.Tensor]:
    """Map an official checkpoint onto `net`'s keys: a plain state dict, the encoder's ``.pth``, or a Lightning
    ``state_dict`` whose encoder keys carry ``encoder.`` and whose LightningModule holds the same tokenizer again as
    ``transform.*``. The cached ``*wavelength_encoding_s2`` blocks are checked against the anchors and dropped."""
    state_dict = dict(state_dict)
    encoder = {k[len("encoder."):]: v for k, v in state_dict.items() if k.startswith("encoder.")}
    if encoder:
        for key, value in state_dict.items():
            if key.startswith("encoder."):
                continue
            if key.startswith("transform.") and key in encoder:
                if not torch.equal(value, encoder[key]):
                    raise ValueError(f"checkpoint holds {key!r} twice (model level and under 'encoder.') with "
                                     "different values")
                continue
            encoder[key] = value  # anything else is left for the strict load to report
        state_dict = encoder
    for key in [k for k in state_dict if k.endswith(CACHED_WAVELENGTHS)]:
        check_cached_wavelengths(state_dict.pop(key), net.transform)
    return state_dict


def build(**overrides) -> Atomizer:
    """A freshly initialised Atomizer; `overrides` are `AtomizerConfig` fields (the official config names)."""
    return Atomizer(config_with_overrides(AtomizerConfig, "atomizer", overrides))
