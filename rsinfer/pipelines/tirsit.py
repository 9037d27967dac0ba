"""TIRSIT reconstruction (§III-C, eq. 8-12): fill the missing target-modality image T_i of date i from its source
image S_i and neighbouring dates j, k, … where both modalities exist.

For each neighbour j the network translates the source difference S_ij = S_i − S_j, guided by T_j, into the target
difference T̂_ij, and the neighbour's estimate is

    T̂_i^{j→i} = T̂_ij + T_j                                                           (8), (9)

The estimates are fused with local weights that trust the neighbour whose source image changed less around each pixel:

    T̂_i = Σ_j p_j · T̂_i^{j→i}                                                       (10)
    p_j = softmax_j(−k · d_j),   d_j = mean over source bands c of |f_s * S_ij,c|      (11), (12)

f_s is the s × s averaging filter, and the absolute value is taken after the filter, as in eq. (11). For two
neighbours the softmax is eq. (11) exactly: p_j = 1 / (1 + exp(−k·(d_k − d_j))) and p_k = 1 − p_j (12). The paper
notes the scheme extends to more neighbours; the softmax is that extension. One neighbour: p = 1 and T̂_i = T̂_i^{j→i}.
Paper values: s = 51, k = 10.

The box filter mirrors the image at its edges without repeating the edge pixel ("reflect"). It is nodata-aware: given
a mask of valid pixels it averages the valid pixels of each window only, and is NaN where a window holds none. In
`Tirsit.translate`, each neighbour may come with such a mask (the pixels where S_i, S_j and T_j are all valid): d_j is
averaged over the valid pixels of the window, and the neighbour gets weight 0 at its own invalid pixels and wherever
its window holds no valid pixel. Where no neighbour is usable the weights and the fused target are NaN (no estimate:
the scene layer writes nodata). Inputs must be finite: fill nodata pixels with any finite value and flag them in the
mask, since the network spreads a NaN over its whole receptive field.

Tiling: the fused target at a pixel combines the weights there, which read S_i and S_j up to s//2 pixels away
(eq. 11 filters the source difference itself, not the network's output), with the estimates there, which read up to
the network's `receptive_margin`. The two reaches do not add up: a tile whose kept pixels all lie at least
`Tirsit.required_overlap` = max(s//2, margin) pixels from the tile's edges reproduces the whole-image result there,
for any network local within its margin, and one pixel less does not. TIRSIT's own network is not such a network
(eq. 1 standardises over the whole tile; see `rsinfer.models.tirsit`), and its convolutions repeat every 2^L pixels, so
its tiles should also start on multiples of `config.size_multiple`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rsinfer.engines import GraphSignature, TensorSpec
from rsinfer.models.tirsit import TirsitNet, reflect_pad

Network = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def tirsit_signature(source_channels: int, target_channels: int) -> GraphSignature:
    """The network's named inputs and output, for serving it through `rsinfer.engines.create_engine`."""
    return GraphSignature(
        inputs=(TensorSpec("source_diff", ("batch", source_channels, "height", "width")),
                TensorSpec("guide", ("batch", target_channels, "height", "width"))),
        output=TensorSpec("target_diff", ("batch", target_channels, "height", "width")),
    )


def box_filter(image: torch.Tensor, window: int, valid: torch.Tensor | None = None) -> torch.Tensor:
    """f_s * image: the mean over the window × window neighbourhood of each pixel, edges mirrored ("reflect").

    image (B, C, H, W); valid (B, 1, H, W) bool or None (all valid). With `valid`, each window averages its valid
    pixels only (the sum of image·valid over the sum of valid), and is NaN where it holds none. Separable: a vertical
    then a horizontal mean of `window` taps; every pixel sums the same taps in the same order wherever a tile starts,
    so a tile with s//2 pixels of context reproduces the whole image's values bit for bit.
    """
    _check_window(window)
    half = window // 2

    def mean(x: torch.Tensor) -> torch.Tensor:
        x = reflect_pad(x, half, half, half, half)  # (B, C, H + 2·half, W + 2·half)
        x = F.avg_pool2d(x, (window, 1), stride=1)  # (B, C, H, W + 2·half)
        return F.avg_pool2d(x, (1, window), stride=1)  # (B, C, H, W)

    if valid is None:
        return mean(image)
    if valid.dtype != torch.bool or valid.dim() != 4 or valid.shape[1] != 1 or valid.shape[0] != image.shape[0] \
            or valid.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"valid must be a bool mask (B, 1, H, W) matching image {tuple(image.shape)}, got "
                         f"{valid.dtype} {tuple(valid.shape)}")
    weight = valid.to(image.dtype)
    covered = mean(weight)  # (B, 1, H, W): the valid fraction of each window
    filtered = mean(torch.where(valid, image, torch.zeros((), dtype=image.dtype))) / covered
    return torch.where(covered > 0, filtered, torch.full((), float("nan"), dtype=image.dtype))


def local_dissimilarity(source_diff: torch.Tensor, window: int, valid: torch.Tensor | None = None) -> torch.Tensor:
    """d_j = mean over source bands of |f_s * S_ij| (eq. 11: the absolute value after the filter): (B, Cs, H, W) →
    (B, 1, H, W); NaN where the window holds no valid pixel."""
    return box_filter(source_diff, window, valid).abs().mean(dim=1, keepdim=True)


def local_weights(dissimilarities: Sequence[torch.Tensor], k: float) -> list[torch.Tensor]:
    """p_j = softmax_j(−k·d_j) over the neighbours (eq. 11-12 for two), each (B, 1, H, W), summing to 1.

    A NaN dissimilarity (no valid pixel in the window) gives that neighbour weight 0; where every neighbour's is NaN,
    all weights are NaN.
    """
    logits = -k * torch.stack(list(dissimilarities))  # (n, B, 1, H, W)
    logits = torch.where(torch.isnan(logits), torch.full((), -torch.inf, dtype=logits.dtype), logits)
    return list(torch.softmax(logits, dim=0).unbind(0))


def fuse(estimates: Sequence[torch.Tensor], weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """T̂_i = Σ_j p_j · T̂_i^{j→i} (eq. 10): estimates (B, Ct, H, W), weights (B, 1, H, W) → (B, Ct, H, W)."""
    return sum(p * estimate for p, estimate in zip(weights, estimates))


def _check_window(window: int) -> None:
    if not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise ValueError(f"window (the box filter size s) must be an odd positive integer, got {window!r}")


@dataclass(frozen=True)
class TirsitResult:
    """target: T̂_i (B, Ct, H, W), eq. (10); per_neighbour: [T̂_i^{j→i}, …] in the neighbours' order, eq. (8)-(9);
    weights: [p_j, …], each (B, 1, H, W), summing to 1 at every pixel, eq. (11)-(12)."""

    target: torch.Tensor
    per_neighbour: list[torch.Tensor]
    weights: list[torch.Tensor]


class Tirsit:
    """Modality translation in a time series: T_i from S_i and neighbour pairs (S_j, T_j), with a translation network
    `network(source_diff, guide) -> target_diff` (a `TirsitNet`, an engine serving one, or any callable alike)."""

    def __init__(self, network: Network, window: int = 51, k: float = 10.0,
                 receptive_margin: int | None = None) -> None:
        """window, k: s and k of eq. (11) (paper: 51, 10). receptive_margin: how far the network's output reads its
        inputs (pixels); None takes the network's `receptive_margin` attribute, or 0 (a pointwise network)."""
        _check_window(window)
        if not k > 0 or k == float("inf"):
            raise ValueError(f"k (the sigmoid slope of eq. 11) must be a positive finite number, got {k!r}")
        margin = getattr(network, "receptive_margin", 0) if receptive_margin is None else receptive_margin
        if not isinstance(margin, int) or margin < 0:
            raise ValueError(f"receptive_margin must be a non-negative integer, got {margin!r}")
        self.network, self.window, self.k, self.receptive_margin = network, window, float(k), margin

    @property
    def required_overlap(self) -> int:
        """Pixels of context a tile needs on each side for its kept pixels to equal the whole-image result: the
        larger of the box filter's reach s//2 and the network's receptive margin (see the module docstring)."""
        return max(self.window // 2, self.receptive_margin)

    def translate(self, source: torch.Tensor, neighbours: Sequence[tuple[torch.Tensor, torch.Tensor]], *,
                  valid: Sequence[torch.Tensor] | None = None) -> TirsitResult:
        """source S_i (B, Cs, H, W); neighbours [(S_j (B, Cs, H, W), T_j (B, Ct, H, W)), …], one or more; valid:
        None (all valid), or per neighbour a bool mask (B, 1, H, W) of the pixels where S_i, S_j and T_j are valid."""
        self._check_inputs(source, neighbours, valid)
        differences = [source - source_j for source_j, _ in neighbours]  # S_ij, each (B, Cs, H, W)
        guides = [target_j for _, target_j in neighbours]  # T_j, each (B, Ct, H, W)
        with torch.no_grad():
            target_diffs = self.network(torch.cat(differences), torch.cat(guides))  # (n·B, Ct, H, W): T̂_ij
        expected = (len(neighbours) * source.shape[0], *guides[0].shape[1:])
        if tuple(target_diffs.shape) != expected:
            raise ValueError(f"the network returned {tuple(target_diffs.shape)} for {len(neighbours)} neighbour(s); "
                             f"expected {expected} (one target difference per neighbour and sample)")
        estimates = [t_hat + target_j for t_hat, target_j in
                     zip(target_diffs.chunk(len(neighbours)), guides)]  # eq. (8)-(9)
        dissimilarities = [local_dissimilarity(d, self.window) for d in differences] if valid is None else [
            torch.where(mask, local_dissimilarity(d, self.window, mask), torch.full((), float("nan")))
            for d, mask in zip(differences, valid)]  # NaN (weight 0) at the neighbour's invalid pixels
        weights = local_weights(dissimilarities, self.k)
        return TirsitResult(target=fuse(estimates, weights), per_neighbour=estimates, weights=weights)

    def _check_inputs(self, source: torch.Tensor, neighbours: Sequence[tuple[torch.Tensor, torch.Tensor]],
                      valid: Sequence[torch.Tensor] | None) -> None:
        if source.dim() != 4:
            raise ValueError(f"source must be (B, Cs, H, W), got shape {tuple(source.shape)}")
        if len(neighbours) == 0:
            raise ValueError("translate needs at least one neighbour (source_j, target_j); got none")
        if isinstance(self.network, TirsitNet) and source.shape[1] != self.network.config.source_channels:
            raise ValueError(f"source has {source.shape[1]} band(s); the network takes "
                             f"{self.network.config.source_channels} source band(s)")
        for index, pair in enumerate(neighbours):
            if len(pair) != 2:
                raise ValueError(f"neighbour {index} must be a pair (source_j, target_j), got {len(pair)} item(s)")
            source_j, target_j = pair
            if source_j.shape != source.shape:
                raise ValueError(f"source of neighbour {index} has shape {tuple(source_j.shape)}; it must match the "
                                 f"source {tuple(source.shape)}")
            if target_j.dim() != 4 or target_j.shape[0] != source.shape[0] or target_j.shape[-2:] != source.shape[-2:]:
                raise ValueError(f"target of neighbour {index} has shape {tuple(target_j.shape)}; it must be "
                                 f"(B, Ct, H, W) with B, H, W of the source {tuple(source.shape)}")
        bands = [target_j.shape[1] for _, target_j in neighbours]
        if len(set(bands)) > 1:
            raise ValueError(f"the neighbours' targets have different band counts {bands}; all must have the same")
        if isinstance(self.network, TirsitNet) and bands[0] != self.network.config.target_channels:
            raise ValueError(f"the neighbours' targets have {bands[0]} band(s); the network takes "
                             f"{self.network.config.target_channels} target band(s)")
        if valid is not None and len(valid) != len(neighbours):
            raise ValueError(f"valid must hold one mask per neighbour ({len(neighbours)}), got {len(valid)}")
