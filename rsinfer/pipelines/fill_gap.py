"""The ``fill-gap`` pipeline: a missing acquisition T_i filled with TIRSIT from the same date in another modality (S_i)
and neighbouring dates where both modalities exist (pairs S_n, T_n), over whole scenes.

Per tile, `rsinfer.pipelines.tirsit.Tirsit.translate` runs the paper's reconstruction (eq. 8-12): the network
translates each source difference S_i − S_n, guided by T_n, into the target difference; T̂_i^{n→i} = T̂_in + T_n; the
estimates are fused with p_n = softmax_n(−k·mean_c |f_s * (S_i − S_n)_c|), s × s box filter f_s.

Inputs (fixed names): ``source`` (S_i, its grid is the output grid), ``source_1``, ``target_1`` (the first pair,
required) and ``source_n``, ``target_n`` for n = 2 … `MAX_PAIRS` (optional, numbered without gaps, each pair whole).
Every input is resampled (bilinear) onto the source grid. Each pair's source has the source's bands; all targets have
the same bands. The output has the targets' bands and names, the first target's data type and nodata (none set: NaN
for float types, 0 for integers).

Tasks (`task`, the paper's §IV band choices and filter sizes; k = 10 in both):

| task | source | target | s |
|---|---|---|---|
| ``sar2rgb`` | Sentinel-1 VV, VH | Sentinel-2 B4, B3, B2 | 51 |
| ``rgb2swir`` | Sentinel-2 B4, B3, B2 | Sentinel-2 B11, B12 | 11 |

Bands are found by name, or by position in a Sentinel-2 L1C/L2A file, a 2-band VV, VH file, a 3-band B4, B3, B2
file or a 2-band B11, B12 file. The paper does not state its data scaling; the presets put every modality in [0, 1],
the range that the network's tanh output (a difference in [−1, 1]) presumes:
- Sentinel-1 σ0 in dB, VV clipped to [−25, 0] and VH to [−32.5, 0], each mapped linearly to [0, 1] (linear power is
  converted to dB first; `s1_scale="auto"` decides from the source's VV and applies to every SAR input);
- Sentinel-2 DN (reflectance × 10000): clip(DN, 0, 10000) / 10000;
- on output the estimate is mapped back: DN = 10000 · clip(T̂_i, 0, 1).
Without a task, every band of every input is read, values enter the network as the files hold them and leave it
unchanged; the band counts set the network's channels (random weights) or must match the weights' channels.

Products (`product`): ``target``, T̂_i; ``weights``, the fusion weights p_1 … p_n as float32 bands (which date was
trusted where). The scene engine writes one raster per run, so the weights are a second run of the same pipeline. It
needs no network: eq. 11 reads only the sources (and, for validity, the targets).

Validity. The scene engine writes nodata wherever any input is invalid, so the output is valid where the source and
every pair are. Around such holes the box filter averages each neighbour's valid pixels only (`Tirsit.translate`'s
masks, S_i, S_n and T_n valid).

Tiling. A kept output pixel must lie `Tirsit.required_overlap` = max(s // 2, the network's receptive margin) pixels
from every tile edge inside the scene (93 for the default network and either s). The engine's ``crop`` blend keeps the
pixels at least overlap // 2 from such edges, and the other blends let pixels up to the edge in; so a scene larger
than one tile needs ``blend="crop"`` and overlap ≥ 2·required_overlap, and anything less is refused with the values
that work (never raised silently). The default, tile 512, overlap 192, crop, starts tiles every 320 pixels, a
multiple of the default network's 2^5, except the last tile of each row and column, which the engine shifts inward to
end at the border. A scene within one tile runs as one whole-scene tile (no padding). TIRSIT's own network is not
exactly tile-invariant (eq. 1 standardises over the whole tile), so its tiled output differs from a whole-scene run.
Measured with seeded random weights on Sen1Floods11 crops (sar2rgb, s = 51): the default network on 448² in 416-pixel
tiles (overlap 192, crop), 3.4e-3 relative L2, mean 2.2 DN, at most 37 DN; a 3-level network (margin 21) on 248² in
120-pixel tiles (overlap 56), 1.3e-2 (tests/pipelines/test_fill_gap.py). With η = 1, where the network is an ordinary
local U-Net, tiles are exact.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch

from rsinfer import models
from rsinfer.engines import create_engine
from rsinfer.io import RasterInfo, read_decimated
from rsinfer.models.checkpoint import load_state_dict, strict_load
from rsinfer.models.tirsit import TirsitNet
from rsinfer.pipelines.bands import BandLayout, BandRule, ResolvedBands, resolve_bands
from rsinfer.pipelines.contract import EngineOptions, InputContract, OutputContract, ScenePipeline, ScenePlan
from rsinfer.pipelines.preview import rgb_preview
from rsinfer.pipelines.vocabulary import FILL_GAP_TASKS, FillGapTask
from rsinfer.pipelines.sentinel import (S2_LAYOUTS, S2_SCALE, canonical_band, detect_s1_scale, normalise_s1,
                                        s1_bands)
from rsinfer.pipelines.spec import PipelineSpec
from rsinfer.pipelines.tirsit import Network, Tirsit, tirsit_signature
from rsinfer.pipelines.vocabulary import S1Scale
from rsinfer.scene import Tiles
from rsinfer.tiling import Tiling

TASKS: tuple[str, ...] = FILL_GAP_TASKS
Product = Literal["target", "weights"]
MAX_PAIRS = 4
DEFAULT_WINDOW = 51  # s without a task: the paper's SAR → visible value
VISIBLE = ("B4", "B3", "B2")
SWIR = ("B11", "B12")


def _s2_bands(wanted: tuple[str, ...], subset: str) -> BandRule:
    """Sentinel-2 bands `wanted`, by name or by position in L1C, L2A or a file holding exactly those bands."""
    return BandRule((*S2_LAYOUTS, BandLayout(f"Sentinel-2 {subset} {', '.join(wanted)}", wanted)), wanted,
                    canonical_band)


@dataclass(frozen=True)
class TaskPreset:
    """The bands a task reads, its box-filter size s (§IV), whether its source is SAR, and texts for the input
    descriptions and the RSINFER_SCALING tag."""

    source: BandRule
    target: BandRule
    window: int
    sar_source: bool
    source_text: str
    target_text: str
    scaling_text: str


_DN_SCALING = "clip(DN, 0, 10000) / 10000; output DN = 10000 * clip(estimate, 0, 1)"
PRESETS: dict[FillGapTask, TaskPreset] = {
    "sar2rgb": TaskPreset(s1_bands(), _s2_bands(VISIBLE, "visible"), 51, True, "Sentinel-1 VV, VH (dB or linear)",
                          "Sentinel-2 B4, B3, B2 (DN)", "source: S1 dB, VV clip [-25, 0], VH clip [-32.5, 0], each "
                          f"to [0, 1]; target: {_DN_SCALING}"),
    "rgb2swir": TaskPreset(_s2_bands(VISIBLE, "visible"), _s2_bands(SWIR, "SWIR"), 11, False,
                           "Sentinel-2 B4, B3, B2 (DN)", "Sentinel-2 B11, B12 (DN)",
                           f"source and target: {_DN_SCALING}"),
}


def reflectance(dn: torch.Tensor) -> torch.Tensor:
    """Sentinel-2 DN → reflectance in [0, 1]."""
    return dn.clamp(0, S2_SCALE) / S2_SCALE


def reflectance_dn(unit: torch.Tensor) -> torch.Tensor:
    """Reflectance → DN, clipped to [0, 10000] (NaN stays NaN: no estimate)."""
    return unit.clamp(0, 1) * S2_SCALE


def _unchanged(values: torch.Tensor) -> torch.Tensor:
    return values


@dataclass(frozen=True)
class Scaling:
    """File values → network values (source, target) and network values → file values (output)."""

    source: Callable[[torch.Tensor], torch.Tensor]
    target: Callable[[torch.Tensor], torch.Tensor]
    output: Callable[[torch.Tensor], torch.Tensor]


def _zero_difference(source_diff: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """A stand-in network for the weights product: eq. 11 never reads the network's output."""
    return torch.zeros_like(guide)


def checkpoint_channels(state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike) -> tuple[int, int]:
    """(source, target) channels of a TIRSIT checkpoint: the input widths of both encoders' first convolutions."""
    shapes = []
    for key in ("input_encoder.0.conv.weight", "guidance_encoder.0.conv.weight"):
        if key not in state_dict or state_dict[key].dim() != 4:
            raise ValueError(f"checkpoint {os.fspath(path)!r} holds no TIRSIT weights: {key} (4-D) is missing")
        shapes.append(int(state_dict[key].shape[1]))
    return shapes[0], shapes[1]


def pair_numbers(names: list[str]) -> list[int]:
    """The pair numbers 1 … n among input names, every pair whole and none missing in between."""
    numbered: dict[int, set[str]] = {}
    for name in names:
        role, _, number = name.partition("_")
        if role in ("source", "target") and number.isdigit():
            numbered.setdefault(int(number), set()).add(role)
    for number, roles in sorted(numbered.items()):
        if len(roles) == 1:
            (given,) = roles
            missing = "target" if given == "source" else "source"
            raise ValueError(f"pair {number} is incomplete: {given}_{number} is given without {missing}_{number}")
    if not numbered:
        raise ValueError("fill-gap needs at least one pair (source_1, target_1): a neighbouring date where both the "
                         "source and the target modality were acquired; got none")
    numbers = sorted(numbered)
    if numbers != list(range(1, len(numbers) + 1)):
        raise ValueError(f"pairs are numbered 1 … n without gaps; got pairs {numbers}")
    return numbers


def scene_tiling(tiling: Tiling, required: int, shape: tuple[int, int]) -> Tiling | None:
    """The tiling the plan forces: whole-scene for a scene within one tile, None (the caller's) when every kept pixel
    gets `required` pixels of context; else a ValueError naming an overlap and blend that work."""
    if tiling.tile is None or (shape[0] <= tiling.tile and shape[1] <= tiling.tile):
        return Tiling(tile=None, overlap=0, batch_size=1)
    context = tiling.overlap // 2 if tiling.blend == "crop" else 0
    if context < required:
        raise ValueError(f"fill-gap tiles must give each kept pixel {required} pixels of context (required_overlap: "
                         f"the box filter's s // 2 and the network's receptive margin); tiling {tiling.tile}/"
                         f"{tiling.overlap}/{tiling.blend!r} gives {context}. Use blend 'crop' with an overlap of at "
                         f"least {2 * required} and a tile larger than {4 * required}, or a tile covering the scene "
                         f"({shape[0]}x{shape[1]})")
    return None


@dataclass(frozen=True)
class FillGapOptions(EngineOptions):
    """task: a preset ("sar2rgb" | "rgb2swir", see the module docstring) or None (bands as the files hold them).
    product: "target" (T̂_i) or "weights" (p_1 … p_n). window, k: s and k of eq. 11 (window None: the task's s, 51
    without a task). s1_scale: SAR values of sar2rgb ("auto": detected from the source). engine, precision, backend,
    threads, thread_wait, cache_dir: how the network runs (`rsinfer.engines`). network: `TirsitConfig` overrides
    other than the channels (a smaller network for random weights, or a checkpoint's widths)."""

    task: FillGapTask | None = None
    product: Product = "target"
    window: int | None = None
    k: float = 10.0
    s1_scale: S1Scale = "auto"
    network: Mapping[str, Any] | None = None


class FillGap(ScenePipeline):
    name = "fill-gap"
    model = "TIRSIT"
    Options = FillGapOptions
    default_tiling = Tiling(tile=512, overlap=192, blend="crop", batch_size=2)

    def __init__(self, spec: PipelineSpec, network: Network | None = None) -> None:
        """network: serve this instead of the spec's weights (a `TirsitNet` or any callable alike; the spec's weights
        are then only recorded)."""
        super().__init__(spec)
        o = self.options
        self.preset = PRESETS[o.task] if o.task is not None else None
        self.window = o.window if o.window is not None else (self.preset.window if self.preset else DEFAULT_WINDOW)
        fixed = sorted({"source_channels", "target_channels"} & set(o.network or {}))
        if fixed:
            raise ValueError(f"network overrides {fixed} are set by the task or the inputs' bands; leave them out")
        self._weights_only = Tirsit(_zero_difference, self.window, o.k)  # also checks window and k
        self._given = network
        self._checkpoint = None
        if network is None and not self.weights.random and o.product == "target":
            self._checkpoint = load_state_dict(self.weights.file())
        self._reconstructions: dict[tuple[int, int], Tirsit] = {}

    def inputs(self) -> tuple[InputContract, ...]:
        preset = self.preset
        source_rule = preset.source if preset else BandRule.count_only()
        target_rule = preset.target if preset else BandRule.count_only()
        source_text = preset.source_text if preset else "any bands"
        target_text = preset.target_text if preset else "any bands, the same in every pair"
        contracts = [InputContract("source", f"S_i, the date to fill, in the source modality: {source_text}",
                                   source_rule)]
        for n in range(1, MAX_PAIRS + 1):
            contracts += [InputContract(f"source_{n}", f"S_{n}, pair {n}'s date in the source modality (the "
                                        "source's bands)", source_rule, required=n == 1),
                          InputContract(f"target_{n}", f"T_{n}, pair {n}'s date in the target modality: {target_text}",
                                        target_rule, required=n == 1)]
        return tuple(contracts)

    def reconstruction(self, source_channels: int, target_channels: int, tile: int = 256,
                       batch_size: int = 1) -> Tirsit:
        """The reconstruction with the network for these channel counts, served by the engine (built once)."""
        key = (source_channels, target_channels)
        if key not in self._reconstructions:
            o = self.options
            if self._given is not None:
                network, margin = self._given, getattr(self._given, "receptive_margin", 0)
                if isinstance(network, TirsitNet):
                    self._check_channels((network.config.source_channels, network.config.target_channels),
                                         key, "the network")
            else:
                net = self._network(*key)
                size = net.config.size_multiple
                example = (torch.rand(1, source_channels, size, size), torch.rand(1, target_channels, size, size))
                network = create_engine(o.engine, net, tirsit_signature(*key), example, **o.engine_kwargs(),
                                        tile_sizes=((tile, tile),), max_batch=MAX_PAIRS * batch_size)
                margin = net.receptive_margin
            self._reconstructions[key] = Tirsit(network, self.window, o.k, receptive_margin=margin)
        return self._reconstructions[key]

    def _network(self, source_channels: int, target_channels: int) -> TirsitNet:
        overrides = dict(self.options.network or {})
        if self.weights.random:
            with torch.random.fork_rng():
                torch.manual_seed(self.weights.seed)
                return models.build("tirsit", source_channels=source_channels, target_channels=target_channels,
                                    **overrides).eval()
        path = self.weights.file()
        self._check_channels(checkpoint_channels(self._checkpoint, path), (source_channels, target_channels),
                             f"the weights {os.fspath(path)!r}")
        net = models.build("tirsit", source_channels=source_channels, target_channels=target_channels, **overrides)
        strict_load(net, self._checkpoint, source=os.fspath(path))
        return net.eval()

    def _check_channels(self, takes: tuple[int, int], given: tuple[int, int], what: str) -> None:
        for role, taken, count in zip(("source", "target"), takes, given):
            if taken != count:
                reads = f"task {self.options.task!r} reads" if self.preset else "the inputs have"
                raise ValueError(f"{what} take(s) {taken} {role} band(s); {reads} {count} {role} band(s)")

    def plan(self, rasters: Mapping[str, RasterInfo], tiling: Tiling) -> ScenePlan:
        o = self.options
        contracts = {c.name: c for c in self.inputs()}
        unknown = sorted(set(rasters) - set(contracts))
        if unknown:
            raise ValueError(f"fill-gap takes inputs {list(contracts)} (at most {MAX_PAIRS} pairs), not {unknown}")
        if "source" not in rasters:
            raise ValueError("fill-gap needs input 'source' (S_i, the date to fill, in the source modality)")
        pairs = pair_numbers(list(rasters))
        bands = {name: resolve_bands(contracts[name].bands, info, name) for name, info in rasters.items()}
        source_count, target_count = self._band_counts(bands, pairs)
        s1_scale = self._s1_scale(rasters["source"], bands["source"])
        scaling = self._scaling(s1_scale)
        if o.product == "target":
            tirsit = self.reconstruction(source_count, target_count, tiling.tile or 256, tiling.batch_size)
        else:
            tirsit = self._weights_only
        forced = scene_tiling(tiling, tirsit.required_overlap, rasters["source"].shape)

        def fill(tiles: Tiles) -> torch.Tensor:
            source = scaling.source(tiles.inputs["source"])  # (B, Cs, h, w)
            neighbours = [(scaling.source(tiles.inputs[f"source_{n}"]), scaling.target(tiles.inputs[f"target_{n}"]))
                          for n in pairs]  # [(S_n (B, Cs, h, w), T_n (B, Ct, h, w)), …]
            valid = [(tiles.masks["source"] & tiles.masks[f"source_{n}"] & tiles.masks[f"target_{n}"])[:, None]
                     for n in pairs]  # each (B, 1, h, w)
            result = tirsit.translate(source, neighbours, valid=valid)
            if o.product == "weights":
                return torch.cat(result.weights, dim=1)  # (B, n, h, w)
            return scaling.output(result.target)  # (B, Ct, h, w)

        target = rasters["target_1"]
        scaling_text = self.preset.scaling_text if self.preset else "none: file values in, network values out"
        tags = {"RSINFER_TASK": o.task or "none", "RSINFER_PRODUCT": o.product, "RSINFER_PAIRS": str(len(pairs)),
                "RSINFER_WINDOW": str(self.window), "RSINFER_K": f"{o.k:g}", "RSINFER_SCALING": scaling_text,
                "RSINFER_REQUIRED_OVERLAP": str(tirsit.required_overlap)}
        if s1_scale is not None:
            tags["RSINFER_S1_SCALE"] = s1_scale
        if o.product == "weights":
            output = OutputContract(tuple(f"p_{n}" for n in pairs), "float32", float("nan"))
        else:
            dtype = target.dtypes[bands["target_1"].indexes[0] - 1]
            nodata = target.nodata if target.nodata is not None else (float("nan") if "float" in dtype else 0.0)
            output = OutputContract(bands["target_1"].names, dtype, nodata)
        return ScenePlan(fill, "source", {name: resolved.indexes for name, resolved in bands.items()}, output,
                         tiling=forced, tags=tags)

    def _band_counts(self, bands: Mapping[str, ResolvedBands], pairs: list[int]) -> tuple[int, int]:
        source_count = len(bands["source"].indexes)
        for n in pairs:
            count = len(bands[f"source_{n}"].indexes)
            if count != source_count:
                raise ValueError(f"input 'source_{n}' has {count} band(s) and 'source' {source_count}: the source of "
                                 "every pair must have the source's bands")
        target_counts = {f"target_{n}": len(bands[f"target_{n}"].indexes) for n in pairs}
        if len(set(target_counts.values())) > 1:
            raise ValueError(f"the pairs' targets have different band counts {target_counts}; every target must have "
                             "the same bands")
        return source_count, target_counts["target_1"]

    def _s1_scale(self, source: RasterInfo, bands: ResolvedBands) -> S1Scale | None:
        """The SAR values' scale (None: no SAR source); "auto" is decided from the source's VV."""
        if self.preset is None or not self.preset.sar_source:
            return None
        if self.options.s1_scale != "auto":
            return self.options.s1_scale
        return detect_s1_scale(torch.from_numpy(read_decimated(source.path, bands.indexes[0])))

    def _scaling(self, s1_scale: S1Scale | None) -> Scaling:
        if self.preset is None:
            return Scaling(_unchanged, _unchanged, _unchanged)
        if s1_scale is not None:
            return Scaling(lambda sar: normalise_s1(sar, s1_scale), reflectance, reflectance_dn)
        return Scaling(reflectance, reflectance, reflectance_dn)

    def run_tags(self) -> dict[str, str]:
        if self.options.product == "weights":
            return {}
        return {"RSINFER_ENGINE": self.options.engine, "RSINFER_PRECISION": self.options.precision}

    def preview(self, output: str, plan: ScenePlan) -> torch.Tensor | None:
        """True colour of a visible (B4, B3, B2) target; None for other products and bands."""
        if self.options.product != "target" or not set(VISIBLE) <= set(plan.output.bands):
            return None
        return rgb_preview(output, plan.output.bands)
