"""The ``pansharpen`` pipeline: CrossDiff pansharpening of a scene, a PAN band plus a 4× coarser multispectral image.

Inputs:
- ``pan``: exactly one band; it defines the output grid;
- ``ms``: N bands (any names) at 1/4 of the PAN resolution, read at its own scale (`InputContract(scale=0.25)`), so a
  256² PAN tile arrives with its 64² MS footprint and `CrossDiff.sharpen` upsamples it itself (bicubic ×4 on DN).
Checked before any pixel is read, each a ValueError naming the files and values:
- the PAN has one band, the MS the band count of the weights;
- the two share a CRS and the MS pixel is exactly 4 PAN pixels on both axes (CrossDiff's only ratio);
- their footprints overlap;
- the PAN's rows and cols, the tile and the overlap are multiples of 4, so every tile starts on an MS pixel edge and
  holds whole MS pixels (a tile starting inside an MS pixel would read a resampled, shifted MS).
An MS grid whose origin lies off the PAN's 4-pixel lattice is read resampled (bilinear) onto it, with a warning.

Per tile: `CrossDiff.sharpen(pan, ms, windows=tiles.windows)`, whose feature noise is drawn under each tile's window of
the PAN grid (`rsinfer.tiling.noise`), so overlapping tiles see the same noise as the whole scene; the output is the
clamped `sr` × dn_scale.

Output: on the PAN grid, with the MS band count and band names, in the MS's DN (sr in [0, 1] × dn_scale, so values
lie in [0, dn_scale]). The data type is the MS input's: a fused product stands in for the MS in whatever reads it
next, and rounding to whole DN costs at most 0.5 DN, the MS's own quantisation (0.024 % of an 11-bit scale); float32
when the MS type cannot hold [0, dn_scale] (e.g. uint8 data with the 2047 scale); `--dtype float32` keeps the
unrounded values. Nodata: the MS's nodata value, else the PAN's, else none (NaN for float outputs); pixels invalid in
either input are nodata (the scene engine masks them).

DN scale (`sensor` or `dn_scale`; not both): DN / dn_scale is what the networks see. The default is the official
hard-coded 2047 (11-bit: QuickBird, WorldView-2/3/4, GeoEye-1, IKONOS), or the ``dn_scale`` in the model card of a
single-file checkpoint (the demo weights: 16383 for Landsat 8 L1 DN, train/pansharpen.py says why); a sensor of
`rsinfer.sensors` gives its own (GF-2 1023, Pléiades 4095, Landsat 8/9 65535), and a scale other than the card's is
logged as a warning. DN above the scale come out clipped (sr is clamped to [0, 1]): `plan` estimates the fraction of
MS and PAN values above it on an overview of at most 512 × 512 pixels per band and logs a warning with it.

Weights (`PipelineSpec.weights`):
- a directory laid out as the official training code writes it (`experiments/`, one folder per run, named after the
  run's config `name` and a timestamp): the P2M U-Net is ``PAN2MS*/checkpoint/I*_E*_gen.pth``, the M2P U-Net
  ``MS2PAN*/checkpoint/I*_E*_gen.pth``, and the fusion head ``*/checkpoint/I*_E*_gen.pth`` of the one other run
  (`model/model.py` and `model/fusionModel.py` save every network as ``I{iter}_E{epoch}_gen.pth``; the fusion config
  names its two U-Net checkpoints by path). A part with no match is an error; a part with several matches (several
  runs, or several saved iterations of one run) is an error listing them: name the file with the part form below;
- parts {"p2m": file, "m2p": file, "fusion": file} (`--weights p2m=FILE ...`), alone or over a directory (the parts
  given replace the directory's);
- one file holding all three networks under the key prefixes ``p2m.``, ``m2p.`` and ``fusion.`` (the format of
  train/pansharpen.py), whose safetensors metadata (the model card) may state ``dn_scale``; the demo weights
  (``demo``, i.e. ``demo:crossdiff-demo``: weights/crossdiff-demo.safetensors, CrossDiff at the `crossdiff-demo`
  preset trained here on Landsat 8 B2/B3/B4 with a synthetic PAN; weights/README.md) are such a file;
- "random:SEED": seeded untrained networks of the official size, or of the `network` overrides (keys: channels,
  inner_channel, embed_dim, inter_dim), with the MS band count of the scene.
The network sizes (bands, channels, inner width) are read from the checkpoints' tensor shapes, and the files used are
what RSINFER_WEIGHTS records (part=sha256:..., one sha256 for a single file, demo:crossdiff-demo for the demo).

Engines: the P2M and M2P encoders and the fusion head each run through `rsinfer.engines` under a `GraphSignature`
(an encoder graph returns its four features flattened into one tensor, as an engine serves one output; the head's
graph takes h2 … h4 only, as it never reads h1); `CrossDiff.sharpen` does everything around them, unchanged. All
four engines take them: the ONNX export writes the U-Nets' GroupNorms (4 and 32 groups) as nested per-axis means, and
the head's 'area' ×2 upsampling is the nearest-neighbour ×2 it equals, a Resize (tests/pipelines/
test_pansharpen_engines.py: onnxruntime and compile against eager; TensorRT is written to its API, unverified here).

Tiling: 256² tiles (the official training and test size), 32 pixels of overlap, cosine blend. The fusion head's cSE
gates pool over the whole tile, so a tile's output depends on everything in it and tiles never equal the whole image
exactly; the convolutions' zero padding adds an error near each tile edge. bench/pansharpen_tiling.py measures both
on a 512² Landsat Wald pair with official-size random networks (bench/RESULTS.md): without overlap the residual
sr − MS_up changes by 1.9e-2 of its norm and the seams stand out (seam ratio 61); with a cosine overlap of 8 / 16 /
32 / 64 pixels the change is 1.1e-3 / 3.7e-4 / 1.5e-4 / 1.1e-4 (tile-vs-whole PSNR 109 dB at 32) and the seam ratio
1.00; crop stitching reaches the 1.1e-4 floor (the gates' share) from 16 pixels on, gaussian and constant blends
need more. 32 with cosine gets within 1.4x of that floor for 1.31x the tiles of a tiling without overlap, and spreads
whatever tile-to-tile difference remains (larger with trained gates, possibly) over a 32-pixel ramp instead of the
step crop stitching leaves.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rsinfer import models
from rsinfer.engines import (Engine, EngineKind, GraphSignature, MemoryFormat, Precision, TensorSpec, ThreadWait,
                             create_engine)
from rsinfer.io import Grid, RasterInfo, grid_of, open_raster, read_decimated
from rsinfer.models.checkpoint import load_state_dict, strict_load
from rsinfer.models.crossdiff import WRAPPER_PREFIX, CrossDiffUNet, checkpoint_state_dict
from rsinfer.models.crossdiff_fusion import CrossDiffFusion
from rsinfer.ops import Backend
from rsinfer.pipelines.bands import BandRule, resolve_bands
from rsinfer.pipelines.contract import EngineOptions, InputContract, OutputContract, ScenePipeline, ScenePlan
from rsinfer.pipelines.crossdiff import DEFAULT_DN_SCALE, RATIO, CrossDiff
from rsinfer.pipelines.demo_weights import model_card
from rsinfer.pipelines.spec import PipelineSpec, Weights
from rsinfer.scene import Tiles
from rsinfer.sensors import sensor as lookup_sensor
from rsinfer.tiling import Tiling, Window

_log = logging.getLogger("rsinfer.pipelines")

PARTS = ("p2m", "m2p", "fusion")
CHECKPOINT = "checkpoint/I*_E*_gen.pth"  # inside a run folder of the official experiments/ directory
RUN_PREFIXES = {"p2m": "PAN2MS", "m2p": "MS2PAN"}  # the official stage-1 run names; the fusion run is the other one
NETWORK_KEYS = ("channels", "inner_channel", "embed_dim", "inter_dim")
OVERVIEW_SIDE = 512  # pixels per side of the overview the DN-scale check reads
ALIGNMENT_TOLERANCE = 1e-3  # of an MS pixel: an MS origin closer than this to the PAN's 4-pixel lattice is on it


@dataclass(frozen=True)
class PansharpenOptions(EngineOptions):
    """sensor: a name of `rsinfer.sensors` whose DN scale applies; dn_scale: the DN that maps to 1 (give one of the
    two; neither: the official 2047). seed: the feature noise and random weights. The `EngineOptions`: how the three
    networks run. network: sizes of random networks (channels, inner_channel, embed_dim, inter_dim); checkpoints
    carry their own."""

    sensor: str | None = None
    dn_scale: float | None = None
    seed: int = 0
    network: Mapping[str, Any] | None = None


def resolve_dn_scale(sensor: str | None, dn_scale: float | None, default: float = DEFAULT_DN_SCALE) -> float:
    """The DN that maps to 1: `dn_scale`, else the sensor's, else `default` (the official 2047, or the scale the
    weights' model card states)."""
    if sensor is not None and dn_scale is not None:
        raise ValueError(f"give a sensor ({sensor!r}) or a DN scale ({dn_scale!r}), not both: the sensor's scale is "
                         f"{lookup_sensor(sensor).dn_scale}")
    if dn_scale is not None:
        if isinstance(dn_scale, bool) or not isinstance(dn_scale, (int, float)) or not (
                math.isfinite(dn_scale) and dn_scale > 0):
            raise ValueError(f"dn_scale must be a positive number (e.g. 2047 for 11-bit data), got {dn_scale!r}")
        return float(dn_scale)
    if sensor is None:
        return default
    found = lookup_sensor(sensor)
    if found.dn_scale is None or found.pan is None:
        raise ValueError(f"sensor {found.name!r} has no PAN band and DN scale to pansharpen with; give dn_scale")
    return found.dn_scale


# ---- weights ------------------------------------------------------------------------------------------------------

def checkpoint_files(weights: Weights) -> dict[str, Path]:
    """The three checkpoint files `weights` names: parts given directly, the rest found in a directory (see the module
    docstring)."""
    given = dict(weights.files)
    unknown = sorted(set(given) - {"", *PARTS})
    if unknown:
        raise ValueError(f"CrossDiff weights have the parts {list(PARTS)} (or a directory), not {unknown}")
    files = {part: Path(given[part]) for part in PARTS if part in given}
    if "" in given:
        root = Path(given[""])
        if not root.is_dir():
            raise ValueError(f"CrossDiff weights {str(root)!r} must be a directory of the official training runs "
                             f"(PAN2MS*/, MS2PAN*/ and the fusion run, each with {CHECKPOINT}), or one file holding "
                             f"the three networks under the key prefixes {', '.join(p + '.' for p in PARTS)} (the "
                             f"demo format), or give the parts p2m=FILE m2p=FILE fusion=FILE")
        for part in PARTS:
            if part not in files:
                files[part] = _find_checkpoint(root, part)
    missing = [part for part in PARTS if part not in files]
    if missing:
        raise ValueError(f"CrossDiff needs three checkpoints ({', '.join(PARTS)}); missing {missing}: give a "
                         f"directory of the official runs or every part")
    for part, path in files.items():
        if not path.is_file():
            raise FileNotFoundError(f"{part} checkpoint {str(path)!r} does not exist")
    return files


def _find_checkpoint(root: Path, part: str) -> Path:
    runs = RUN_PREFIXES.values()
    if part in RUN_PREFIXES:
        matches = sorted(root.glob(f"{RUN_PREFIXES[part]}*/{CHECKPOINT}"))
        pattern = f"{RUN_PREFIXES[part]}*/{CHECKPOINT}"
    else:
        matches = sorted(p for p in root.glob(f"*/{CHECKPOINT}") if not p.parts[-3].startswith(tuple(runs)))
        pattern = f"*/{CHECKPOINT} outside {'*, '.join(runs)}*"
    if not matches:
        raise ValueError(f"no {part} checkpoint in {str(root)!r}: expected {pattern} (the official experiments/ "
                         f"layout); or give it as {part}=FILE")
    if len(matches) > 1:
        listing = ", ".join(str(p.relative_to(root)) for p in matches)
        raise ValueError(f"several {part} checkpoints in {str(root)!r}: {listing}; choose one with {part}=FILE "
                         f"(--weights {part}=FILE)")
    return matches[0]


def single_file_parts(weights: Weights) -> dict[str, dict[str, torch.Tensor]] | None:
    """The three networks' state dicts of `weights` when it is one file whose keys all carry the prefixes ``p2m.``,
    ``m2p.`` and ``fusion.`` (each present); None for anything else (a directory, parts, an official checkpoint)."""
    given = dict(weights.files)
    if set(given) != {""} or not Path(given[""]).is_file():
        return None
    state = load_state_dict(given[""])
    parts = {part: {k[len(part) + 1:]: v for k, v in state.items() if k.startswith(part + ".")} for part in PARTS}
    if not all(parts.values()) or sum(map(len, parts.values())) != len(state):
        return None
    return parts


def card_dn_scale(weights: Weights) -> float | None:
    """The ``dn_scale`` in the safetensors metadata (the model card) of a single weights file; None without one."""
    given = dict(weights.files)
    path = Path(given.get("", ""))
    if set(given) != {""} or path.suffix != ".safetensors" or not path.is_file():
        return None
    stated = model_card(path).get("dn_scale")
    if stated is None:
        return None
    try:
        return resolve_dn_scale(None, float(stated))
    except ValueError as err:
        raise ValueError(f"the model card of {str(path)!r} states dn_scale {stated!r}: {err}") from None


def unet_sizes(state: Mapping[str, torch.Tensor], source: str) -> dict[str, Any]:
    """spectrun_num, channels, embed_dim and inter_dim of a U-Net checkpoint (official wrapper or bare form), read
    from its tensor shapes."""
    prefix = WRAPPER_PREFIX if any(k.startswith(WRAPPER_PREFIX) for k in state) else ""
    keys = ["conv1.weight", "res3.conv20.weight", "down1.conv20.weight", "down2.conv20.weight", "embed.0.weight"]
    missing = [prefix + k for k in keys if prefix + k not in state]
    if missing:
        raise ValueError(f"{source} is not a CrossDiff U-Net checkpoint: it lacks {missing}")
    conv1, *downs, embed = (state[prefix + k] for k in keys)
    return {"spectrun_num": conv1.shape[1] - 1, "channels": [conv1.shape[0], *(d.shape[0] for d in downs)],
            "embed_dim": embed.shape[0], "inter_dim": embed.shape[1]}


def fusion_sizes(state: Mapping[str, torch.Tensor], source: str) -> dict[str, Any]:
    """spectral_num, channel_multiplier and inner_channel of a fusion head checkpoint, read from its tensor shapes."""
    keys = ["final2.weight", "final.weight", *(f"decoder.{i}.block.0.weight" for i in (6, 4, 2, 0))]
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueError(f"{source} is not a CrossDiff fusion head checkpoint: it lacks {missing}")
    final2, final, *blocks = (state[k] for k in keys)
    return {"spectral_num": final2.shape[0], "inner_channel": final.shape[0],
            "channel_multiplier": [block.shape[0] // 2 for block in blocks]}


def load_networks(files: Mapping[str, Path]) -> tuple[CrossDiffUNet, CrossDiffUNet, CrossDiffFusion]:
    """The three networks of `checkpoint_files`, sized from their checkpoints and loaded strictly."""
    return networks_from_states({part: load_state_dict(files[part]) for part in PARTS},
                                {part: f"{part} checkpoint {str(files[part])!r}" for part in PARTS})


def networks_from_states(states: Mapping[str, Mapping[str, torch.Tensor]], sources: Mapping[str, str]) -> (
        tuple[CrossDiffUNet, CrossDiffUNet, CrossDiffFusion]):
    """P2M, M2P and fusion head sized from the tensor shapes of their state dicts (official forms accepted) and
    loaded strictly; `sources` names each part in errors."""
    unets = []
    for part in ("p2m", "m2p"):
        unet = models.build("crossdiff-unet", direction=part, **unet_sizes(states[part], sources[part]))
        strict_load(unet, checkpoint_state_dict(dict(states[part]), unet), source=sources[part])
        unets.append(unet.eval())
    fusion = models.build("crossdiff-fusion", **fusion_sizes(states["fusion"], sources["fusion"]))
    strict_load(fusion, dict(states["fusion"]), source=sources["fusion"])
    return unets[0], unets[1], fusion.eval()


def random_networks(seed: int, bands: int, network: Mapping[str, Any] | None) -> (
        tuple[CrossDiffUNet, CrossDiffUNet, CrossDiffFusion]):
    """Seeded untrained P2M, M2P and fusion head (built in that order) for `bands` MS bands, official size unless
    `network` overrides channels, inner_channel, embed_dim or inter_dim."""
    network = dict(network or {})
    unknown = sorted(set(network) - set(NETWORK_KEYS))
    if unknown:
        raise ValueError(f"unknown CrossDiff network option(s) {unknown}; allowed: {list(NETWORK_KEYS)}")
    unet = {k: network[k] for k in ("channels", "embed_dim", "inter_dim") if k in network}
    head = {"channel_multiplier": network["channels"]} if "channels" in network else {}
    if "inner_channel" in network:
        head["inner_channel"] = network["inner_channel"]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return (models.build("crossdiff-unet", direction="p2m", spectrun_num=bands, **unet).eval(),
                models.build("crossdiff-unet", direction="m2p", spectrun_num=bands, **unet).eval(),
                models.build("crossdiff-fusion", spectral_num=bands, **head).eval())


# ---- the three networks behind engines ----------------------------------------------------------------------------

class EncoderGraph(nn.Module):
    """A U-Net's encoder as one engine graph: (x_t, cond, t) → its features [h1, h2, h3, h4], each flattened per
    sample and concatenated, (B, Σ_k c_k·(H/2^k)·(W/2^k)): an engine serves one output tensor."""

    def __init__(self, unet: CrossDiffUNet) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, x_t: torch.Tensor, cond: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.cat([h.flatten(1) for h in self.unet.encode(x_t, cond, t)], dim=1)


class FusionGraph(nn.Module):
    """The fusion head as one engine graph: (ms_up, p2m h2 … h4, m2p h2 … h4) → sr_raw. The head never reads h1 (the
    official forward discards that level), so the graph does not take it: an exported graph would drop the unused
    input anyway. The head's shape check gets a broadcast view in its place, which costs no memory."""

    def __init__(self, fusion: CrossDiffFusion) -> None:
        super().__init__()
        self.fusion = fusion
        self.h1_channels = fusion.config.widths[-1]

    def forward(self, ms_up: torch.Tensor, *features: torch.Tensor) -> torch.Tensor:
        h1 = ms_up[:, :1].expand(-1, self.h1_channels, -1, -1)  # (B, c0, H, W), never read
        levels = len(features) // 2
        return self.fusion(ms_up, [h1, *features[:levels]], [h1, *features[levels:]])


def unpack_features(packed: torch.Tensor, channels: Sequence[int], height: int, width: int) -> list[torch.Tensor]:
    """`EncoderGraph`'s (B, N) output → [h1, h2, h3, h4], h_k (B, c_k, H/2^k, W/2^k) (views)."""
    shapes = [(c, height >> k, width >> k) for k, c in enumerate(channels)]
    parts = packed.split([math.prod(shape) for shape in shapes], dim=1)
    return [part.view(packed.shape[0], *shape) for part, shape in zip(parts, shapes)]


def encoder_signature(unet: CrossDiffUNet) -> GraphSignature:
    cfg = unet.config
    return GraphSignature(
        inputs=(TensorSpec("x_t", ("batch", cfg.out_channels, "height", "width")),
                TensorSpec("cond", ("batch", cfg.cond_channels, "height", "width")), TensorSpec("t", ("batch",))),
        output=TensorSpec("features", ("batch", "features")))


def fusion_signature(fusion: CrossDiffFusion) -> GraphSignature:
    levels = tuple(reversed(fusion.config.widths))  # widths of h1 … h4
    features = tuple(TensorSpec(f"{net}_h{k + 1}", ("batch", levels[k], f"height_{2 ** k}", f"width_{2 ** k}"))
                     for net in ("p2m", "m2p") for k in range(1, len(levels)))  # h2 … h4: the head reads no h1
    bands = fusion.config.spectral_num
    return GraphSignature(inputs=(TensorSpec("ms_up", ("batch", bands, "height", "width")), *features),
                          output=TensorSpec("sr_raw", ("batch", bands, "height", "width")))


class ServedEncoder:
    """`CrossDiffUNet.encode` through an engine serving `EncoderGraph`."""

    def __init__(self, unet: CrossDiffUNet, engine: Engine) -> None:
        self.config, self.engine = unet.config, engine

    def encode(self, x_t: torch.Tensor, cond: torch.Tensor, t: torch.Tensor) -> list[torch.Tensor]:
        packed = self.engine(x_t, cond, t.float())  # t as float32: exported graphs take float inputs
        return unpack_features(packed, self.config.channels, *x_t.shape[-2:])


class ServedFusion:
    """`CrossDiffFusion.forward` through an engine."""

    def __init__(self, fusion: CrossDiffFusion, engine: Engine) -> None:
        self.config, self.engine = fusion.config, engine

    def __call__(self, ms_up: torch.Tensor, p2m: Sequence[torch.Tensor], m2p: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.engine(ms_up, *p2m[1:], *m2p[1:])  # h1 is never read


class ServedCrossDiff(CrossDiff):
    """`CrossDiff` whose three networks run through `rsinfer.engines`; `sharpen` and everything around the networks
    are CrossDiff's own.

    engine, precision, memory_format, backend, cache_dir, threads, thread_wait: `rsinfer.engines.create_engine`.
    tile, batch_size: the tile side and batch the engines are prepared for (the ONNX export example, TensorRT
    profiles).
    """

    def __init__(self, p2m: CrossDiffUNet, m2p: CrossDiffUNet, fusion: CrossDiffFusion, dn_scale: float, seed: int,
                 *, engine: EngineKind = "torch", precision: Precision = "float32",
                 memory_format: MemoryFormat | None = None, backend: Backend = "auto", cache_dir: str | None = None,
                 threads: int | None = None, thread_wait: ThreadWait = "spin", tile: int = 256,
                 batch_size: int = 4) -> None:
        super().__init__(p2m, m2p, fusion, dn_scale, seed)
        self.engine_kind, self.precision = engine, precision

        def serve(net: nn.Module, signature: GraphSignature, example: tuple[torch.Tensor, ...]) -> Engine:
            return create_engine(engine, net, signature, example, precision=precision, memory_format=memory_format,
                                 backend=backend, cache_dir=cache_dir, threads=threads, thread_wait=thread_wait,
                                 tile_sizes=((tile, tile),), max_batch=batch_size)

        t = torch.full((1,), float(self.feature_step))
        pan, ms = torch.rand(1, 1, tile, tile), torch.rand(1, self.bands, tile, tile)
        self.p2m = ServedEncoder(p2m, serve(EncoderGraph(p2m), encoder_signature(p2m), (ms, pan, t)))
        self.m2p = ServedEncoder(m2p, serve(EncoderGraph(m2p), encoder_signature(m2p), (pan, ms, t)))
        features = [torch.zeros(1, c, tile >> k, tile >> k) for k, c in enumerate(p2m.config.channels)][1:]
        head = (ms, *features, *features)
        self.fusion = ServedFusion(fusion, serve(FusionGraph(fusion), fusion_signature(fusion), head))


# ---- scene checks -------------------------------------------------------------------------------------------------

def _grid(path: str) -> Grid:
    dataset = open_raster(path)
    try:
        return grid_of(dataset)
    finally:
        dataset.close()


def check_pair(pan: RasterInfo, ms: RasterInfo, tiling: Tiling) -> None:
    """The PAN/MS geometry the pipeline needs (see the module docstring); warns when the MS is off the PAN lattice."""
    pan_grid, ms_grid = _grid(pan.path), _grid(ms.path)
    where = f"PAN {pan.path} and MS {ms.path}"
    if pan_grid.crs != ms_grid.crs:
        raise ValueError(f"{where} must share a CRS (PAN {pan_grid.crs.to_string()}, MS {ms_grid.crs.to_string()}): "
                         f"reproject the MS onto the PAN's CRS at {RATIO}x its pixel size")
    for name, grid in (("PAN", pan_grid), ("MS", ms_grid)):
        if grid.transform.b or grid.transform.d:
            raise ValueError(f"the {name} grid is rotated ({grid.transform}); north-up grids only")
    ratios = (ms_grid.transform.a / pan_grid.transform.a, ms_grid.transform.e / pan_grid.transform.e)
    if not all(math.isclose(r, RATIO, rel_tol=1e-6) for r in ratios):
        raise ValueError(f"{where}: the MS pixel is {ratios[0]:g} x {ratios[1]:g} PAN pixels "
                         f"({abs(ms_grid.transform.a):g} x {abs(ms_grid.transform.e):g} against "
                         f"{abs(pan_grid.transform.a):g} x {abs(pan_grid.transform.e):g} CRS units); CrossDiff "
                         f"sharpens by a ratio of exactly {RATIO}")
    left, bottom, right, top = pan_grid.bounds
    m_left, m_bottom, m_right, m_top = ms_grid.bounds
    if not (m_left < right and m_right > left and m_bottom < top and m_top > bottom):
        raise ValueError(f"{where} do not overlap: PAN footprint {pan_grid.bounds}, MS footprint {ms_grid.bounds} "
                         f"({pan_grid.crs.to_string()})")
    height, width = pan.shape
    if height % RATIO or width % RATIO:
        raise ValueError(f"the PAN is {height} x {width} pixels; pansharpening by {RATIO} needs rows and cols that "
                         f"are multiples of {RATIO} so that every tile holds whole MS pixels: crop it to "
                         f"{height - height % RATIO} x {width - width % RATIO} (gdal_translate -srcwin 0 0 "
                         f"{width - width % RATIO} {height - height % RATIO})")
    if tiling.tile is not None and (tiling.tile % RATIO or tiling.overlap % RATIO or tiling.tile < 2 * RATIO):
        raise ValueError(f"tile {tiling.tile} and overlap {tiling.overlap} must be multiples of {RATIO} (whole MS "
                         f"pixels per tile), the tile at least {2 * RATIO}")
    offsets = tuple(round(o, 6) + 0.0 for o in (  # in MS pixels (+ 0.0: no "-0.000")
        (ms_grid.transform.c - pan_grid.transform.c) / ms_grid.transform.a,
        (ms_grid.transform.f - pan_grid.transform.f) / ms_grid.transform.e))
    if any(abs(o - round(o)) > ALIGNMENT_TOLERANCE for o in offsets):
        _log.warning("the MS grid is offset by (%.3f, %.3f) MS pixels (cols, rows) from the PAN's %d-pixel lattice: "
                     "it is resampled (bilinear) onto it", offsets[0], offsets[1], RATIO)


def over_scale_fraction(info: RasterInfo, indexes: Sequence[int], dn_scale: float) -> float:
    """The fraction of valid values above `dn_scale`, over overviews (≤ 512² pixels) of the bands `indexes`."""
    above = total = 0
    for band in indexes:
        values = read_decimated(info.path, band, OVERVIEW_SIDE)
        values = values[np.isfinite(values)]
        above, total = above + int((values > dn_scale).sum()), total + values.size
    return above / total if total else 0.0


def warn_over_scale(rasters: Mapping[str, RasterInfo], bands: Mapping[str, Sequence[int]], dn_scale: float) -> None:
    fractions = {name: over_scale_fraction(rasters[name], bands[name], dn_scale) for name in ("ms", "pan")}
    if any(fractions.values()):
        _log.warning("DN above the scale %g: %.3g %% of the MS values and %.3g %% of the PAN values (estimated on "
                     "overviews of at most %d x %d pixels); the sharpened values are clamped to [0, %g], so these "
                     "come out clipped. Give the data's own scale (sensor or dn_scale) if it is not %g",
                     dn_scale, 100 * fractions["ms"], 100 * fractions["pan"], OVERVIEW_SIDE, OVERVIEW_SIDE, dn_scale,
                     dn_scale)


def output_dtype(ms_dtype: str, dn_scale: float) -> str:
    """The MS input's type when it holds [0, dn_scale], else float32."""
    kind = np.dtype(ms_dtype).kind
    if kind == "f" or (kind in "iu" and np.iinfo(ms_dtype).max >= dn_scale):
        return ms_dtype
    return "float32"


# ---- the pipeline -------------------------------------------------------------------------------------------------

class Pansharpen(ScenePipeline):
    name = "pansharpen"
    model = "CrossDiff"
    Options = PansharpenOptions
    default_tiling = Tiling(tile=256, overlap=32, blend="cosine", batch_size=4)
    demo_weights = "crossdiff-demo"

    def __init__(self, spec: PipelineSpec) -> None:
        super().__init__(spec)
        o = self.options
        trained_scale = card_dn_scale(self.weights)
        self.dn_scale = resolve_dn_scale(o.sensor, o.dn_scale, trained_scale or DEFAULT_DN_SCALE)
        if trained_scale is not None and self.dn_scale != trained_scale:
            _log.warning("the weights were trained on DN / %g (their model card's dn_scale); this run divides by "
                         "%g: expect degraded results unless the data were rescaled to match", trained_scale,
                         self.dn_scale)
        self._served: dict[int, ServedCrossDiff] = {}
        self.bands: int | None = None  # the weights' band count (None: random weights, any count)
        if not self.weights.random:
            if o.network:
                raise ValueError(f"network overrides {dict(o.network)} apply to random weights; checkpoint sizes "
                                 f"are read from the files")
            states = single_file_parts(self.weights)
            if states is not None:  # one file, three prefixed networks (the demo format): recorded as that file
                networks = networks_from_states(states, {p: f"{p}.* of {str(self.weights.file())!r}" for p in PARTS})
            else:
                files = checkpoint_files(self.weights)
                self.weights = Weights(files=tuple(sorted((part, str(path)) for part, path in files.items())))
                networks = load_networks(files)
            crossdiff = self._serve(*networks)
            self.bands = crossdiff.bands
            self._served[crossdiff.bands] = crossdiff

    def _serve(self, p2m: CrossDiffUNet, m2p: CrossDiffUNet, fusion: CrossDiffFusion) -> ServedCrossDiff:
        o = self.options
        return ServedCrossDiff(p2m, m2p, fusion, self.dn_scale, o.seed, engine=o.engine, **o.engine_kwargs(),
                               tile=self.default_tiling.tile,
                               batch_size=self.default_tiling.batch_size)

    def crossdiff(self, bands: int) -> ServedCrossDiff:
        """The networks for an MS of `bands` bands: the checkpoints' (which must have that count), or seeded random
        networks built for it."""
        if bands not in self._served:
            if self.bands is not None:
                raise ValueError(f"the MS has {bands} band(s) but the CrossDiff weights are for {self.bands}")
            self._served[bands] = self._serve(*random_networks(self.weights.seed, bands, self.options.network))
        return self._served[bands]

    def sharpen_dn(self, pan_dn: torch.Tensor, ms_dn: torch.Tensor,
                   windows: Sequence[Window] | None = None) -> torch.Tensor:
        """pan_dn (B, 1, H, W) and ms_dn (B, S, H/4, W/4) in DN → the sharpened MS (B, S, H, W) in DN, in
        [0, dn_scale]. `windows`: each sample's place on the PAN grid (H × W each), which seeds its feature noise
        (None: each tensor is a whole grid)."""
        return self.crossdiff(ms_dn.shape[1]).sharpen(pan_dn, ms_dn, windows=windows).sr * self.dn_scale

    def inputs(self) -> tuple[InputContract, ...]:
        bands = "any number of bands" if self.bands is None else f"{self.bands} bands"
        return (InputContract("pan", "the panchromatic band (1 band, DN); defines the output grid",
                              BandRule.count_only(1)),
                InputContract("ms", f"the multispectral image at 1/{RATIO} of the PAN resolution ({bands}, DN)",
                              BandRule.count_only(), scale=1 / RATIO))

    def plan(self, rasters: Mapping[str, RasterInfo], tiling: Tiling) -> ScenePlan:
        pan, ms = (resolve_bands(c.bands, rasters[c.name], c.name) for c in self.inputs())
        if self.bands is not None and len(ms.indexes) != self.bands:
            raise ValueError(f"the MS {rasters['ms'].path} has {len(ms.indexes)} band(s) but the CrossDiff weights "
                             f"are for {self.bands} ({', '.join(f'{p}={f}' for p, f in self.weights.files)})")
        check_pair(rasters["pan"], rasters["ms"], tiling)
        bands = {"pan": pan.indexes, "ms": ms.indexes}
        warn_over_scale(rasters, bands, self.dn_scale)
        self.crossdiff(len(ms.indexes))  # networks and engines ready before the first tile

        def sharpen_tiles(tiles: Tiles) -> torch.Tensor:
            # A scene smaller than the tile comes padded to the tile: its noise continues the field (the windows
            # take the tile's size).
            windows = [Window(w.row, w.col, *tiles.shape) for w in tiles.windows]
            return self.sharpen_dn(tiles.inputs["pan"], tiles.inputs["ms"], windows)

        ms_info = rasters["ms"]
        return ScenePlan(sharpen_tiles, "pan", bands,
                         OutputContract(ms.names, output_dtype(ms_info.dtypes[0], self.dn_scale), ms_info.nodata),
                         tags={"RSINFER_DN_SCALE": f"{self.dn_scale:g}",
                               "RSINFER_VALUES": f"DN of the MS, sharpened values clamped to [0, {self.dn_scale:g}]"})

    def run_tags(self) -> dict[str, str]:
        o = self.options
        tags = {"RSINFER_SEED": str(o.seed), "RSINFER_ENGINE": o.engine, "RSINFER_PRECISION": o.precision}
        if o.sensor is not None:
            tags["RSINFER_SENSOR"] = lookup_sensor(o.sensor).name
        return tags

