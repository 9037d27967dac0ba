"""The Atomizer tokenizer: one token per (pixel, band) value, carrying its wavelength, value and position.

Same tokens, bit for bit in float32, as the official ``transformations_config`` (HugoRdet/Atomizer @57bb634c,
``training/utils/utils_dataset_transformation.py``) for square images, without its random rotation/flip. A token is

    [ wavelength (G) | band value (V) | row position (P) | column position (P) ]

- wavelength, "GAUSSIANS": for G anchors (mean_k, std_k), in the config's key order, element k is the maximum over 50
  wavelengths λ = lo + (hi − lo)·t, t = linspace(0, 1, 50), lo/hi = centre ∓ width/2, of exp(−½((λ − mean_k)/std_k)²).
  One vector per band, shared by all its pixels; recomputed on every call (upstream caches it with the first call's
  image size and breaks on the next size — not reproduced).
- band value: "FF" = `fourier_features(v, bandvalue_max_freq, bandvalue_num_freq_bands)`, V = 2n + 1;
  "NATURAL" = v itself, V = 1.
- position, "FF": the row i of an H-row image sits at linspace(−L/2, L/2, H)[i] with L = H·(20/r)/400, r the
  sample's resolution factor (1 = native) and 20 the base resolution upstream hard-codes for every band (the
  ``transform.s2_res`` buffer). L is computed in float64 and rounded to float32, as upstream does. Columns use the
  same rule with W; upstream assumes H = W (it builds both axes from W), so for square images the two agree.
  P = 2n + 1 of `fourier_features(coordinate, pos_max_freq, pos_num_freq_bands)`.

`fourier_features(x, f, n)` = [sin(x·s·¾π) for s in S, cos(x·s·¾π) for s in S, x] with S = linspace(1, f/2, n), or
linspace(1, f, f) when n = −1; the argument is evaluated as ((x·s)·π)·0.75 in the input dtype, as upstream does.

Tokens are flattened in (row, column, band) order: token (i·W + j)·C + c is band c of pixel (i, j), so the C bands of
a pixel are consecutive. The token mask is the (B, C, H, W) mask flattened the same way.

`AtomizerTokenizer.forward` returns the official token tensor. `AtomizerTokenizer.token_groups` builds the same
tokens for the fast cross-attention: per sample and band, without materialising the token tensor, as `TokenGroups`.

Bands: a sequence whose entries are each a `rsinfer.sensors.Band` (e.g. ``sensor("landsat-8").select(["B2"])``), a
"sensor:band" string ("landsat-8:B4", "sentinel-2:B8A") or a bare band name, which means a Sentinel-2 band ("B02").
``None`` is the 12 Sentinel-2 bands in BigEarthNet v2 order, `BENV2_S2_BANDS`. Only the centre and width of a band
enter the tokens. SAR polarisations have no wavelength and are refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from rsinfer.sensors import SENSOR_NAMES, Band, sensor

WavelengthEncoding = Literal["GAUSSIANS"]
BandValueEncoding = Literal["FF", "NATURAL"]
PositionEncoding = Literal["FF"]
BandSpec = Band | str

BENV2_S2_BANDS: tuple[str, ...] = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11",
                                   "B12")
BASE_RESOLUTION = 20.0  # upstream's per-band base resolution, hard-coded to 20 for all 12 bands
WAVELENGTH_SAMPLES = 50  # wavelengths sampled across a band for the Gaussian maximum
LAYER_NORM_EPS = 1e-5  # of LN_ctx, which normalises the tokens before the cross-attention
MIN_GROUP_TOKENS = 64  # TokenGroups.from_tokens: fewer tokens per group than this are not worth a group


def fourier_features(x: torch.Tensor, max_freq: float, num_bands: int) -> torch.Tensor:
    """x (...) → (..., 2n + 1): [sin(x·s·¾π) ∀s, cos(x·s·¾π) ∀s, x]; see the module docstring for the scales s."""
    x = x.unsqueeze(-1)
    if num_bands == -1:
        scales = torch.linspace(1.0, max_freq, int(max_freq), dtype=x.dtype, device=x.device)
    else:
        scales = torch.linspace(1.0, max_freq / 2, num_bands, dtype=x.dtype, device=x.device)
    angle = x * scales * math.pi * 0.75  # (..., n), evaluated left to right like upstream
    return torch.cat([angle.sin(), angle.cos(), x], dim=-1)


def fourier_width(max_freq: float, num_bands: int) -> int:
    """Width 2n + 1 of `fourier_features`, with n = max_freq when num_bands is −1."""
    return 2 * (int(max_freq) if num_bands == -1 else num_bands) + 1


def resolve_bands(bands: Sequence[BandSpec] | None) -> tuple[Band, ...]:
    """The registry bands named by `bands` (see the module docstring); ValueError for SAR and unknown names."""
    if bands is None:
        return sensor("sentinel-2").select(BENV2_S2_BANDS)
    if isinstance(bands, (str, Band)):
        raise TypeError(f"bands must be a sequence of bands, got the single band {bands!r}")
    resolved = []
    for spec in bands:
        if isinstance(spec, Band):
            band = spec
        elif isinstance(spec, str):
            sensor_name, _, band_name = spec.rpartition(":")
            band = sensor(sensor_name or "sentinel-2").band(band_name)
        else:
            raise TypeError(f"a band is a rsinfer.sensors.Band or a 'sensor:band' string, got {spec!r}")
        if band.center_nm is None or band.width_nm is None:
            raise ValueError(f"band {spec!r} has no wavelength (a SAR polarisation?): the Atomizer encodes optical "
                             f"bands only; optical sensors: {', '.join(_optical_sensor_names())}")
        resolved.append(band)
    if not resolved:
        raise ValueError("bands is empty: name at least one band")
    return tuple(resolved)


def _optical_sensor_names() -> list[str]:
    return [name for name in SENSOR_NAMES if sensor(name).kind == "optical"]


def gaussian_band_encoding(centers_nm: torch.Tensor, widths_nm: torch.Tensor, means: torch.Tensor,
                           stds: torch.Tensor) -> torch.Tensor:
    """(C,) centres and widths, (G,) anchors → (C, G): the maximum Gaussian response over each band (float32)."""
    low = centers_nm - widths_nm / 2
    high = centers_nm + widths_nm / 2
    t = torch.linspace(0, 1, WAVELENGTH_SAMPLES, device=centers_nm.device)
    wavelengths = low[:, None] + (high - low)[:, None] * t[None, :]  # (C, 50)
    response = torch.exp(-0.5 * (((wavelengths[:, :, None] - means) / stds) ** 2))  # (C, 50, G)
    return response.amax(dim=1)


class AtomizerTokenizer(nn.Module):
    """The official tokenizer, registered as ``transform`` (state dict key ``transform.s2_res``).

    `s2_res` is the per-band base resolution buffer upstream saves (twelve 20.0). Only uniform values are supported:
    upstream hard-codes them, and a band subset or another sensor has no per-band entry to pick.
    """

    def __init__(self, anchors: Sequence[tuple[float, float]], bandvalue_encoding: BandValueEncoding,
                 bandvalue_max_freq: float | None, bandvalue_num_freq_bands: int | None, pos_max_freq: float,
                 pos_num_freq_bands: int) -> None:
        super().__init__()
        self.register_buffer("s2_res", torch.full((len(BENV2_S2_BANDS),), BASE_RESOLUTION), persistent=True)
        self.anchors = tuple(anchors)  # kept as numbers: a cast of the module to bf16 must not round them
        self.bandvalue_encoding = bandvalue_encoding
        self.bandvalue_max_freq = bandvalue_max_freq
        self.bandvalue_num_freq_bands = bandvalue_num_freq_bands
        self.pos_max_freq = pos_max_freq
        self.pos_num_freq_bands = pos_num_freq_bands

    @property
    def wavelength_dim(self) -> int:
        return len(self.anchors)

    @property
    def value_dim(self) -> int:
        if self.bandvalue_encoding == "NATURAL":
            return 1
        return fourier_width(self.bandvalue_max_freq, self.bandvalue_num_freq_bands)

    @property
    def position_dim(self) -> int:
        """Width of one axis's encoding; a token carries two (row, then column)."""
        return fourier_width(self.pos_max_freq, self.pos_num_freq_bands)

    @property
    def token_dim(self) -> int:
        return self.wavelength_dim + self.value_dim + 2 * self.position_dim

    def band_encoding(self, bands: Sequence[Band]) -> torch.Tensor:
        """(C, G) wavelength encoding of `bands`."""
        def tensor(values: list[float]) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float32, device=self.s2_res.device)

        return gaussian_band_encoding(tensor([b.center_nm for b in bands]), tensor([b.width_nm for b in bands]),
                                      tensor([m for m, _ in self.anchors]), tensor([s for _, s in self.anchors]))

    def value_features(self, values: torch.Tensor) -> torch.Tensor:
        """Normalised band values (...) → (..., V)."""
        if self.bandvalue_encoding == "NATURAL":
            return values.unsqueeze(-1)
        return fourier_features(values, self.bandvalue_max_freq, self.bandvalue_num_freq_bands)

    def axis_features(self, size: int, resolution: torch.Tensor) -> torch.Tensor:
        """(B,) resolution factors → (B, size, P): the encoded coordinates of one image axis of `size` pixels."""
        base = self.s2_res.double()
        if not bool((base == base[0]).all()):
            raise ValueError(f"transform.s2_res {self.s2_res.tolist()} is not uniform: per-band base resolutions "
                             "are not supported (upstream hard-codes 20 for every band)")
        extent = (size * (base[0] / resolution)) / 400.0  # (B,) float64, as upstream
        extents = extent.float().tolist()  # rounded to float32, as upstream's torch.tensor(list of floats)
        coordinates = torch.stack([torch.linspace(-e / 2.0, e / 2.0, size, device=self.s2_res.device)
                                   for e in extents])  # (B, size) float32
        return fourier_features(coordinates, self.pos_max_freq, self.pos_num_freq_bands)

    def check_inputs(self, image: torch.Tensor, mask: torch.Tensor, resolution: torch.Tensor | Sequence[float],
                     bands: Sequence[Band]) -> torch.Tensor:
        """Validate shapes; return the resolution factors as a (B,) float64 tensor."""
        if image.dim() != 4:
            raise ValueError(f"image must be (B, C, H, W), got shape {tuple(image.shape)}")
        if mask.shape != image.shape:
            raise ValueError(f"mask {tuple(mask.shape)} must have the image's shape {tuple(image.shape)}")
        if image.shape[1] != len(bands):
            raise ValueError(f"image has {image.shape[1]} channels but {len(bands)} bands are named: "
                             f"{[b.name for b in bands]}")
        resolution = torch.as_tensor(resolution, dtype=torch.float64, device=image.device).reshape(-1)
        if resolution.numel() != image.shape[0]:
            raise ValueError(f"resolution needs one factor per sample ({image.shape[0]}), got {resolution.numel()}")
        if not bool((resolution > 0).all()) or not bool(torch.isfinite(resolution).all()):
            raise ValueError(f"resolution factors must be finite and > 0, got {resolution.tolist()}")
        return resolution

    def forward(self, image: torch.Tensor, mask: torch.Tensor, resolution: torch.Tensor | Sequence[float],
                bands: Sequence[BandSpec] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """image, mask (B, C, H, W), resolution (B,) → tokens (B, H·W·C, D), token_mask (B, H·W·C) bool."""
        resolved = resolve_bands(bands)
        resolution = self.check_inputs(image, mask, resolution, resolved)
        batch, channels, height, width = image.shape
        shape = (batch, height, width, channels)
        values = self.value_features(image.permute(0, 2, 3, 1))  # (B, H, W, C, V)
        parts = [
            self.band_encoding(resolved).to(values.dtype).expand(*shape, -1),
            values,
            self.axis_features(height, resolution)[:, :, None, None, :].expand(*shape, -1),
            self.axis_features(width, resolution)[:, None, :, None, :].expand(*shape, -1),
        ]
        tokens = torch.cat(parts, dim=-1).reshape(batch, height * width * channels, self.token_dim)
        return tokens, flatten_mask(mask)

    def token_groups(self, image: torch.Tensor, mask: torch.Tensor, resolution: torch.Tensor | Sequence[float],
                     bands: Sequence[BandSpec] | None = None) -> list[TokenGroups]:
        """Per sample, its valid tokens grouped by band, ready for the attention: the tokenizer fused into it.

        The same tokens as `forward` (without their order), never materialised whole: one band at a time.
        """
        resolved = resolve_bands(bands)
        resolution = self.check_inputs(image, mask, resolution, resolved)
        batch, channels, height, width = image.shape
        image = image.float()
        wavelength = self.band_encoding(resolved)  # (C, G)
        rows, cols = self.axis_features(height, resolution), self.axis_features(width, resolution)  # (B, H|W, P)
        out = []
        for b in range(batch):
            position = torch.cat([rows[b, :, None, :].expand(height, width, -1),
                                  cols[b, None, :, :].expand(height, width, -1)], dim=-1).reshape(height * width, -1)
            individual = []
            for c in range(channels):
                valid = mask[b, c].reshape(-1) != 0  # (H·W,)
                values = self.value_features(image[b, c].reshape(-1)[valid])  # (T_c, V)
                individual.append(torch.cat([values, position[valid]], dim=-1))  # (T_c, V + 2P)
            out.append(TokenGroups.build(wavelength, individual))
        return out


@dataclass(frozen=True)
class TokenGroups:
    """One sample's valid tokens as the folded cross-attention reads them (rsinfer.models.atomizer).

    Every token of group g is t = [s_g | u_t]: a part s_g shared by the group (a band's wavelength encoding) and its
    own part u_t (value and position). Attention sees a token only through its LayerNorm without affine,
    t̂ = (t − μ_t)·ρ_t with ρ_t = 1/√(var_t + 1e-5), so each token is stored as the row

        [ρ_t | ρ_t·u_t | ρ_t·μ_t | 1 | 0 …]          (width `rows.shape[1]`, a multiple of 8)

    with groups contiguous: then q̃·t̂ = ρ(q̃_s·s_g) + q̃_u·(ρu) − (Σq̃)·ρμ is one GEMM row whose first entry,
    q̃_s·s_g, changes per group, and Σ_t e_t·row_t holds all that Σ_t e_t t̂_t needs.
    """

    shared: torch.Tensor  # (groups, S)
    rows: torch.Tensor  # (T, K)
    sizes: tuple[int, ...]  # tokens per group, in row order
    individual_dim: int  # U: columns 1 … U hold ρ_t·u_t, column U + 1 ρ_t·μ_t, column U + 2 the ones

    @classmethod
    def build(cls, shared: torch.Tensor, individual: Sequence[torch.Tensor]) -> TokenGroups:
        """shared (groups, S), individual[g] (T_g, U) → the groups' rows; empty groups are left out."""
        keep = [g for g, part in enumerate(individual) if part.shape[0]]
        u = individual[0].shape[1]
        width = -(-(u + 3) // 8) * 8
        rows = []
        for g in keep:
            tokens = torch.cat([shared[g].expand(individual[g].shape[0], -1), individual[g]], dim=-1)  # (T_g, D)
            var, mean = torch.var_mean(tokens, dim=-1, correction=0)
            rho = torch.rsqrt(var + LAYER_NORM_EPS)
            row = tokens.new_zeros(tokens.shape[0], width)
            row[:, 0] = rho
            row[:, 1:u + 1] = individual[g] * rho[:, None]
            row[:, u + 1] = mean * rho
            row[:, u + 2] = 1.0
            rows.append(row)
        return cls(shared[keep], torch.cat(rows) if rows else shared.new_zeros(0, width),
                   tuple(individual[g].shape[0] for g in keep), u)

    @classmethod
    def from_tokens(cls, tokens: torch.Tensor, shared_dim: int) -> TokenGroups:
        """Given tokens (T, D) → groups of equal first `shared_dim` entries (official tokens: one per band).

        With more than one group per `MIN_GROUP_TOKENS` tokens the split would not pay, and all tokens form one group
        with no shared part.
        """
        if shared_dim == 0 or tokens.shape[0] == 0:
            return cls.build(tokens.new_zeros(1, 0), [tokens])
        shared, inverse = torch.unique(tokens[:, :shared_dim], dim=0, return_inverse=True)
        if shared.shape[0] * MIN_GROUP_TOKENS > tokens.shape[0]:
            return cls.build(tokens.new_zeros(1, 0), [tokens])
        order = torch.argsort(inverse, stable=True)
        sizes = torch.bincount(inverse, minlength=shared.shape[0]).tolist()
        return cls.build(shared, list(tokens[order, shared_dim:].split(sizes)))


def flatten_mask(mask: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) mask, nonzero = valid → (B, H·W·C) bool in token order."""
    return mask.permute(0, 2, 3, 1).reshape(mask.shape[0], -1) != 0


def gaussian_anchors(wavelengths_encoding: Mapping[str, Mapping[str, float]]) -> tuple[tuple[float, float], ...]:
    """The official config's ``wavelengths_encoding`` {g0: {mean, std}, ...} → ((mean, std), ...) in key order."""
    anchors = []
    for key, anchor in wavelengths_encoding.items():
        if not isinstance(anchor, Mapping) or set(anchor) != {"mean", "std"}:
            raise ValueError(f"wavelengths_encoding[{key!r}] must be {{'mean': nm, 'std': nm}}, got {anchor!r}")
        if not anchor["std"] > 0:
            raise ValueError(f"wavelengths_encoding[{key!r}] needs std > 0, got {anchor['std']!r}")
        anchors.append((float(anchor["mean"]), float(anchor["std"])))
    if not anchors:
        raise ValueError("wavelengths_encoding is empty: the GAUSSIANS encoding needs at least one anchor")
    return tuple(anchors)
