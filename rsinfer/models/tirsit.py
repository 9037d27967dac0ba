"""TIRSIT: the multistream-guided translation network of "Modality Translation in Remote Sensing Time Series" (Liu,
Hong, Chanussot, Zhao, Ghamisi; IEEE TGRS 60, 2022), §III-B.

The network maps a temporal difference in the source modality to the same difference in the target modality, guided
by a neighbouring image of the target modality: (S_ij, T_j) → T̂_ij (§III-A). The reconstruction that turns T̂_ij into
the target image (eq. 8-12) is not part of the network: it lives in `rsinfer.pipelines.tirsit`.

No code or weights were published. What the paper fixes, and where:
- §III-B-3: a U-Net with two encoders, E_input for the source difference and E_guidance for the guide image, each a
  stack of strided convolutions followed by leaky ReLU; a decoder that mirrors the encoder and concatenates the
  encoder's features at each resolution (skip connections).
- §III-B-1, eq. (1)-(3), the feature mask module at every encoder level n: the guide features are standardised per
  channel over the spatial dimensions, f̂ⁿ_guide = (fⁿ_guide − mean(fⁿ_guide)) / std(fⁿ_guide)  (1);
  maskⁿ = (1 − η)·σ(f̂ⁿ_guide) + η with σ the sigmoid and η = 0.5  (2); f'ⁿ_input = maskⁿ · fⁿ_input  (3).
- §IV-C-1: "a five-layer U-Net", 32 filters in the first layer.

Everything else is open and is a named field of `TirsitConfig` (each field's docstring line says so): the channel
growth after the first level, kernel sizes, normalisation layers, the decoder activation, which features the skip
connections carry, the std's epsilon and the output activation. The defaults follow pix2pix's U-Net (Isola et al.
2017, the paper's baseline and the U-Net it builds on): 4×4 convolutions with stride 2, BatchNorm except on the first
encoder and the last decoder layer, leaky ReLU 0.2 in the encoder, ReLU in the decoder, widths doubling up to 8× the
first, tanh at the output. The network, with L = len(widths) levels:

    source diff (B, Cs, H, W) ─► E_input:    [conv s2 ─► norm ─► LReLU ─► × maskⁿ ─► skipⁿ] n = 0 … L−1
    guide       (B, Ct, H, W) ─► E_guidance: [conv s2 ─► norm ─► LReLU ─► maskⁿ = (1 − η)·σ(std.) + η]
    decoder: [up-conv s2 ─► norm ─► ReLU ─► concat skipⁿ⁻¹] n = L−1 … 1, then up-conv s2 ─► tanh ─► (B, Ct, H, W)

H and W are padded by reflection to a multiple of 2^L (32 for the defaults) and the output is cropped back.

Parameter count: the defaults (source_channels=2, target_channels=3) give 5,907,715 parameters: E_input 1,739,168,
E_guidance 1,739,680, decoder 2,428,867 (BatchNorm running statistics are buffers, not parameters). Compute: 1.9 GMAC
per 256² tile.

Tiling. The convolutions alone reach `TirsitNet.receptive_margin` pixels (93 for the defaults) and align to
2^L-pixel steps, but eq. (1) standardises over the whole feature map, so the network's output on a tile depends on the
tile's statistics: TIRSIT is not exactly tile-invariant for any overlap, by the paper's design.

Key layout (ours; there is no official one): ``input_encoder.{n}.{conv,norm}``, ``guidance_encoder.{n}.{conv,norm}``,
``decoder.{n}.{conv,norm}`` with decoder level n producing the resolution of encoder level n − 1 (n = 0: the image).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from rsinfer.models.config import config_with_overrides

Norm = Literal["batch", "instance", "none"]
DecoderActivation = Literal["relu", "leaky_relu"]
SkipFeatures = Literal["masked", "unmasked"]
OutputActivation = Literal["tanh", "none"]


@dataclass(frozen=True)
class TirsitConfig:
    """Every design point of the network: the paper's values where it states them, pix2pix's where it does not.

    source_channels, target_channels: bands of the source and target modality (paper: S1 VV/VH → S2 B4,B3,B2, or
        S2 B4,B3,B2 → S2 B11,B12).
    widths: output channels of encoder levels 0 … L−1; the paper fixes L = 5 and widths[0] = 32, and we read its
        "five-layer U-Net" as five strided convolutions per encoder and five transposed ones in the decoder (the depth
        convention is not fixed by the paper). The growth after the first level is not fixed by the paper either:
        doubling, capped at 8× the first (pix2pix): (32, 64, 128, 256, 256).
    kernel_size: of the strided and transposed convolutions, padding (k − 1)//2 (not fixed by the paper; pix2pix: 4).
    norm: after every convolution but the first encoder and the last decoder layer (not fixed by the paper; pix2pix
        and DCGAN: "batch"). "instance" normalises each tile by its own statistics (no parameters).
    leaky_slope: negative slope of the encoders' leaky ReLU (the paper names the activation, not the slope; 0.2).
    decoder_activation: after each decoder up-convolution but the last (not fixed by the paper; pix2pix: "relu").
    skip_features: what the skip connections carry, the encoder features after the mask (eq. 3; "masked") or before
        it ("unmasked", the mask then acts on the path to the deeper levels only); not fixed by the paper.
    eta: η of eq. (2), the floor of the mask (paper: 0.5); η = 1 turns the guidance off.
    std_epsilon: std(·) of eq. (1) is √(var + ε), the biased variance over H × W (ε not fixed by the paper: 1e-5).
    output_activation: on the predicted difference (not fixed by the paper; pix2pix: "tanh", which bounds T̂_ij to
        [−1, 1], the range of a difference of two images in [0, 1]).
    """

    source_channels: int = 2
    target_channels: int = 3
    widths: tuple[int, ...] = (32, 64, 128, 256, 256)
    kernel_size: int = 4
    norm: Norm = "batch"
    leaky_slope: float = 0.2
    decoder_activation: DecoderActivation = "relu"
    skip_features: SkipFeatures = "masked"
    eta: float = 0.5
    std_epsilon: float = 1e-5
    output_activation: OutputActivation = "tanh"

    def __post_init__(self) -> None:
        for name in ("source_channels", "target_channels"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if len(self.widths) < 1 or any(not isinstance(w, int) or w < 1 for w in self.widths):
            raise ValueError(f"widths {self.widths} must be one or more positive integers (one per level)")
        if not isinstance(self.kernel_size, int) or self.kernel_size < 2:
            raise ValueError(f"kernel_size must be an integer ≥ 2 (a stride-2 convolution), got {self.kernel_size!r}")
        if not 0 <= self.eta <= 1:
            raise ValueError(f"eta must lie in [0, 1], got {self.eta}")
        if not self.std_epsilon > 0:
            raise ValueError(f"std_epsilon must be positive, got {self.std_epsilon}")
        for name, allowed in (("norm", Norm), ("decoder_activation", DecoderActivation),
                              ("skip_features", SkipFeatures), ("output_activation", OutputActivation)):
            if getattr(self, name) not in get_args(allowed):
                raise ValueError(f"{name} {getattr(self, name)!r} is not one of {get_args(allowed)}")

    @property
    def size_multiple(self) -> int:
        """H and W are padded to a multiple of this (2 per level)."""
        return 2 ** len(self.widths)

    @property
    def padding(self) -> int:
        return (self.kernel_size - 1) // 2

    @property
    def receptive_margin(self) -> int:
        """How far (pixels) an output pixel's dependence on the inputs reaches, through the convolutions alone.

        Tracks, for a feature map with stride j, the input interval [j·o + lo, j·o + hi] its pixel o depends on: a
        stride-2 convolution (kernel k, padding p) reads inputs 2o − p … 2o − p + k − 1; a stride-2 transposed
        convolution writes output 2i − p + t, t = 0 … k − 1, so its output o reads inputs (o + p − k + 1)/2 … (o + p)/2;
        a concatenation takes the union.
        """
        k, p = self.kernel_size, self.padding
        lo, hi, stride, skips = 0, 0, 1, []
        for _ in self.widths:  # encoder
            lo, hi, stride = lo - p * stride, hi + (k - 1 - p) * stride, 2 * stride
            skips.append((lo, hi))
        skips.pop()  # the deepest level feeds the decoder directly
        for level in reversed(range(len(self.widths))):  # decoder
            stride //= 2
            lo, hi = lo + (p - k + 1) * stride, hi + p * stride
            if level > 0:
                skip_lo, skip_hi = skips.pop()
                lo, hi = min(lo, skip_lo), max(hi, skip_hi)
        return max(-lo, hi)


def reflect_pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """(B, C, H, W) → (B, C, H + top + bottom, W + left + right), mirrored at the edges without repeating the edge
    pixel (numpy's "reflect"), for pads of any size: beyond one reflection the image repeats with period 2(n − 1).
    A side of one pixel has nothing to reflect and is repeated."""
    height, width = x.shape[-2:]
    if top < height and bottom < height and left < width and right < width:
        return F.pad(x, (left, right, top, bottom), mode="reflect")

    def indices(n: int, before: int, after: int) -> torch.Tensor:
        i = torch.arange(-before, n + after, device=x.device)
        if n == 1:
            return torch.zeros_like(i)
        i = torch.remainder(i, 2 * (n - 1))
        return torch.where(i >= n, 2 * (n - 1) - i, i)

    return x.index_select(-2, indices(height, top, bottom)).index_select(-1, indices(width, left, right))


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels)
    return nn.Identity()


class EncoderLevel(nn.Module):
    """One level of E_input or E_guidance: strided convolution (H, W halve) ─► norm ─► leaky ReLU (§III-B-3)."""

    def __init__(self, config: TirsitConfig, in_channels: int, out_channels: int, normalised: bool) -> None:
        super().__init__()
        norm = config.norm if normalised else "none"
        self.conv = nn.Conv2d(in_channels, out_channels, config.kernel_size, stride=2, padding=config.padding,
                              bias=norm == "none")  # a following norm removes or replaces the bias
        self.norm = _norm(norm, out_channels)
        self.slope = config.leaky_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.norm(self.conv(x)), self.slope)


class FeatureMask(nn.Module):
    """Eq. (1)-(2): maskⁿ = (1 − η)·σ((fⁿ_guide − mean) / std) + η, statistics per sample and channel over H × W.

    The mean and variance are taken over W, then over H (nested): exported graphs then sum at most max(H, W) terms
    at a time, which keeps float32 reductions in ONNX Runtime accurate. They cover the reflect-padded feature map, so
    for H, W that are not multiples of 2^L the mirrored border counts too.
    """

    def __init__(self, eta: float, epsilon: float) -> None:
        super().__init__()
        self.eta, self.epsilon = eta, epsilon

    def forward(self, guide_features: torch.Tensor) -> torch.Tensor:
        mean = guide_features.mean(-1, keepdim=True).mean(-2, keepdim=True)  # (B, C, 1, 1)
        centred = guide_features - mean
        variance = centred.square().mean(-1, keepdim=True).mean(-2, keepdim=True)  # biased, (B, C, 1, 1)
        standardised = centred * torch.rsqrt(variance + self.epsilon)  # eq. (1)
        return (1 - self.eta) * torch.sigmoid(standardised) + self.eta  # eq. (2), values in [η, 1]


class DecoderLevel(nn.Module):
    """Transposed strided convolution (H, W double) ─► norm ─► activation; the last level has no norm and applies the
    output activation instead."""

    def __init__(self, config: TirsitConfig, in_channels: int, out_channels: int, last: bool) -> None:
        super().__init__()
        norm = "none" if last else config.norm
        k, p = config.kernel_size, config.padding
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, k, stride=2, padding=p,
                                       output_padding=2 + 2 * p - k, bias=norm == "none")
        self.norm = _norm(norm, out_channels)
        self.activation = config.output_activation if last else config.decoder_activation
        self.slope = config.leaky_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x))
        if self.activation == "relu":
            return F.relu(x)
        if self.activation == "leaky_relu":
            return F.leaky_relu(x, self.slope)
        if self.activation == "tanh":
            return torch.tanh(x)
        return x


class TirsitNet(nn.Module):
    """(S_ij, T_j) → T̂_ij: the source-modality difference, guided by the target-modality neighbour, translated into
    the target-modality difference."""

    def __init__(self, config: TirsitConfig) -> None:
        super().__init__()
        self.config = config
        widths = config.widths

        def encoder(in_channels: int) -> nn.ModuleList:
            return nn.ModuleList(EncoderLevel(config, c_in, c_out, normalised=n > 0)
                                 for n, (c_in, c_out) in enumerate(zip((in_channels, *widths), widths)))

        self.input_encoder = encoder(config.source_channels)  # E_input
        self.guidance_encoder = encoder(config.target_channels)  # E_guidance
        self.mask = FeatureMask(config.eta, config.std_epsilon)
        # Decoder level n takes level n's features (the deepest alone, the others concatenated with their skip) to the
        # resolution of level n − 1 (level 0: to the image).
        deepest = len(widths) - 1
        self.decoder = nn.ModuleList(
            DecoderLevel(config, widths[n] if n == deepest else 2 * widths[n],
                         widths[n - 1] if n > 0 else config.target_channels, last=n == 0)
            for n in range(len(widths)))

    @property
    def receptive_margin(self) -> int:
        """Pixels of context each output pixel reads through the convolutions (`TirsitConfig.receptive_margin`)."""
        return self.config.receptive_margin

    def forward(self, source_diff: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        """source_diff (B, Cs, H, W), guide (B, Ct, H, W) → T̂_ij (B, Ct, H, W), for any H, W."""
        config = self.config
        if source_diff.dim() != 4 or source_diff.shape[1] != config.source_channels:
            raise ValueError(f"source_diff must be (B, {config.source_channels}, H, W), got {tuple(source_diff.shape)}")
        if guide.dim() != 4 or guide.shape[1] != config.target_channels:
            raise ValueError(f"guide must be (B, {config.target_channels}, H, W), got {tuple(guide.shape)}")
        if guide.shape[0] != source_diff.shape[0] or guide.shape[-2:] != source_diff.shape[-2:]:
            raise ValueError(f"guide {tuple(guide.shape)} must match source_diff {tuple(source_diff.shape)} in batch, "
                             "height and width")
        height, width = source_diff.shape[-2:]
        m = config.size_multiple
        pad = (0, (m - height % m) % m, 0, (m - width % m) % m)
        f = reflect_pad(source_diff, *pad)  # (B, Cs, H', W'), H', W' multiples of m
        g = reflect_pad(guide, *pad)  # (B, Ct, H', W')

        skips = []
        for input_level, guidance_level in zip(self.input_encoder, self.guidance_encoder):
            f, g = input_level(f), guidance_level(g)  # (B, w_n, H'/2^(n+1), W'/2^(n+1)) each
            masked = self.mask(g) * f  # eq. (3)
            skips.append(masked if config.skip_features == "masked" else f)
            f = masked

        x = f  # the deepest level's masked features
        for level in reversed(range(len(self.decoder))):
            x = self.decoder[level](x)  # (B, w_{n−1}, ·×2, ·×2); level 0: (B, Ct, H', W')
            if level > 0:
                x = torch.cat([x, skips[level - 1]], dim=1)  # (B, 2·w_{n−1}, ·, ·)
        return x[..., :height, :width]


def build(source_channels: int = 2, target_channels: int = 3, **overrides) -> TirsitNet:
    """A freshly initialised TIRSIT network; `overrides` replace `TirsitConfig` fields (lists become tuples)."""
    overrides = dict(source_channels=source_channels, target_channels=target_channels, **overrides)
    return TirsitNet(config_with_overrides(TirsitConfig, "tirsit", overrides))
