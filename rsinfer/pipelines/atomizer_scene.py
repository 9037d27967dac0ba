"""The ``classify`` and ``embed`` pipelines: the Atomizer encoder (`rsinfer.models.atomizer`) slid over any optical
scene.

Input ``s2``: any optical scene of a sensor of `rsinfer.sensors` (option `sensor`, default Sentinel-2). Option `bands`
names the bands the encoder sees, in the sensor's own band names (any registry spelling: "B02" or "B2" for
Sentinel-2, "B4" for Landsat 8), in any order; default: the 12 BigEarthNet v2 bands for Sentinel-2 (B01 … B12 without
B10), every multispectral band for other sensors. Each band enters the tokens with its registry centre and width, so
a Landsat scene runs through the same network with its own wavelengths. The file's bands are found by their
descriptions when it has them, else by position: the sensor's product layout by band count (Sentinel-2: 13 bands
L1C or 12 bands L2A), or exactly the bands named, in that order (`rsinfer.pipelines.bands`).

Per window (`tile` × `tile` pixels of the scene's grid, 120 by default as the encoder was trained):
1. z-scores, as the authors trained (`rsinfer.pipelines.atomizer_preprocessing`): z = (DN' − mean_b)/std_b with the
   published BigEarthNet v2 statistics, rounded through float16. DN' = (DN / dn_scale + reflectance_offset) · 10000
   is the value as Sentinel-2 L2A DN (reflectance × 10000); dn_scale is the sensor's DN of reflectance 1 (10000 for
   Sentinel-2, so DN' = DN) unless the option says otherwise. Sentinel-2 bands take their own statistics. A band of
   another sensor takes those of the BigEarthNet v2 band nearest in centre wavelength (Landsat 8 B2 → B02, B3 → B03,
   B4 → B04, B5 → B8A, ...). CAVEAT: the encoder never saw Landsat or VHR data; this puts the values on the scale it
   knows, nothing more, and DN / dn_scale is reflectance only for surface-reflectance products (Landsat Level-1 DN
   need the MTL's gain and offset: `dn_scale` = 1/gain, `reflectance_offset` = offset). Sentinel-2 L2A of
   processing baseline ≥ 04.00 (from January 2022) stores reflectance × 10000 + 1000: give reflectance_offset −0.1.
2. Resolution factor r = 10 m / GSD (`resolution_factor`), the GSD being the grid's pixel size in metres (option
   `gsd_m` overrides it): r = 1 on a 10 m Sentinel-2 grid, 1/3 on a 30 m Landsat grid. A geographic grid's pixel is
   measured on a sphere of radius 6371008.8 m at the scene's centre latitude; a non-square pixel counts as the
   geometric mean of its sides.
3. Invalid pixels (nodata, outside the scene) are masked tokens: they take no part, so a partly valid window is
   encoded from its valid pixels only (positions stay those of the whole window).

``classify``: sigmoid(Atomizer(window)), the 19 multi-label probabilities, spread over the window's footprint and
blended with the overlapping windows (`rsinfer.tiling.blend`). Default: 120-px windows, overlap 56 (a stride of 64
pixels, so every pixel but an 8-px band per window period is covered by two windows per axis), cosine blending (sin²
ramps across the 56-px overlaps: each window's probabilities fade smoothly into its neighbours'). With blend "crop" or
overlap 0, a pixel that no other window reaches holds exactly its window's probabilities. Output: 19 float32 bands in
[0, 1] named after the BigEarthNet v2 classes (`CLASSES`), on the input's grid; NaN (nodata) where the scene is
invalid.

``embed``: the pooled latent (the D-vector that feeds the classifier head, `Atomizer.embed`) of each window, one output
pixel per window: the output grid is the input's coarsened by the window side (`OutputContract.scale` = 1/tile:
output pixel (i, j) is the window of rows [i·tile, (i+1)·tile) and columns [j·tile, (j+1)·tile)), windows do not
overlap, and windows reaching past the scene's edge are encoded from their valid pixels. Output: D float32 bands
``embedding_000`` …, NaN as nodata; an output pixel is valid when any pixel of its window is.

Weights (`PipelineSpec.weights`): a checkpoint (a plain state dict, the encoder's ``.pth`` or a Lightning ``.ckpt``,
`rsinfer.models.atomizer.checkpoint_state_dict`) with options `config` (the official config's ``Atomiser`` section:
`AtomizerConfig` names; omitted names take the recovered paper-era defaults) and `wavelengths_encoding` (its top-level
anchors, required: a checkpoint does not fix them); or "random:SEED": a seeded untrained network of `RANDOM_CONFIG`
(overridden by `config`) with, unless given, the 16 anchors of the recovered training config (`RANDOM_ANCHORS`,
research/parity_semantics.md §Atomizer 3). The network runs eager in float32 under `torch.inference_mode()`; `backend`
picks the ops backend of its latent attention.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rsinfer import models, ops
from rsinfer.io import Grid, RasterInfo, grid_of, open_raster
from rsinfer.models.atomizer import Atomizer, AtomizerConfig
from rsinfer.ops import Backend
from rsinfer.pipelines.atomizer_preprocessing import BENV2_S2_BANDS, normalise, resolution_factor
from rsinfer.pipelines.bands import BandLayout, BandRule, resolve_bands
from rsinfer.pipelines.contract import InputContract, OutputContract, ScenePipeline, ScenePlan
from rsinfer.pipelines.spec import PipelineSpec, Weights
from rsinfer.scene import Tiles
from rsinfer.sensors import Band, Sensor, sensor as lookup_sensor
from rsinfer.tiling import Tiling

# The BigEarthNet v2 19-class nomenclature in the classifier's output order: configilm's lexicographic order
# (`ben_19_labels_to_multi_hot`, lex_sorted=True), which the authors' h5 conversion of configilm's BENv2DataSet keeps.
CLASSES: tuple[str, ...] = (
    "Agro-forestry areas", "Arable land", "Beaches, dunes, sands", "Broad-leaved forest", "Coastal wetlands",
    "Complex cultivation patterns", "Coniferous forest", "Industrial or commercial units", "Inland waters",
    "Inland wetlands",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Marine waters", "Mixed forest", "Moors, heathland and sclerophyllous vegetation",
    "Natural grassland and sparsely vegetated areas", "Pastures", "Permanent crops", "Transitional woodland, shrub",
    "Urban fabric")
# Seeded untrained networks: small, so smoke runs stay fast (the test configuration).
RANDOM_CONFIG: dict[str, Any] = {
    "depth": 2, "num_latents": 16, "latent_dim": 64, "cross_heads": 2, "latent_heads": 4, "cross_dim_head": 16,
    "latent_dim_head": 16, "num_classes": len(CLASSES), "self_per_cross_attn": 2, "weight_tie_layers": False,
    "wavelength_encoding": "GAUSSIANS", "bandvalue_encoding": "FF", "bandvalue_num_freq_bands": 6,
    "bandvalue_max_freq": 10, "pos_encoding": "FF", "pos_num_freq_bands": 4, "pos_max_freq": 4}
# The 16 Gaussian wavelength anchors (mean nm, std nm) of the recovered training config (parity_semantics.md
# §Atomizer 3).
RANDOM_ANCHORS: dict[str, dict[str, float]] = {
    f"g{k}": {"mean": mean, "std": std} for k, (mean, std) in enumerate(
        [(m, 15.0) for m in (380.0, 424.0, 468.0, 513.0, 557.0, 602.0, 646.0, 691.0, 735.0, 780.0, 850.0, 940.0)]
        + [(1200.0, 80.0), (1400.0, 30.0), (1600.0, 40.0), (2100.0, 120.0)])}
S2_DN_PER_REFLECTANCE = 10000.0  # Sentinel-2 L2A DN = reflectance × 10000, the scale of the BigEarthNet statistics
EARTH_RADIUS_M = 6371008.8  # IUGG mean radius: the pixel size of geographic grids
_S2 = lookup_sensor("sentinel-2")


@dataclass(frozen=True)
class AtomizerSceneOptions:
    """sensor: the scene's sensor (`rsinfer.sensors` name); bands: the band names to encode (None: see the module
    docstring); gsd_m: the grid's ground pixel size in metres (None: from the grid); dn_scale: the DN of reflectance 1
    (None: the sensor's); reflectance_offset: added to DN / dn_scale. config: `AtomizerConfig` names of the network;
    wavelengths_encoding: its anchors {g0: {mean, std}, ...} (required with a checkpoint). backend: ops backend."""

    sensor: str = "sentinel-2"
    bands: tuple[str, ...] | None = None
    gsd_m: float | None = None
    dn_scale: float | None = None
    reflectance_offset: float = 0.0
    config: Mapping[str, Any] | None = None
    wavelengths_encoding: Mapping[str, Mapping[str, float]] | None = None
    backend: Backend = "auto"


@dataclass(frozen=True)
class Normalisation:
    """Scene DN → the encoder's z-scores: DN' = DN·gain + offset as Sentinel-2 L2A DN, then the BigEarthNet v2
    statistics of `statistics` (one Sentinel-2 band per scene band)."""

    statistics: tuple[str, ...]
    gain: float  # 10000 / dn_scale
    offset: float  # reflectance_offset · 10000

    def __call__(self, dn: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) DN → (B, C, h, w) float32 z-scores rounded through float16."""
        return normalise(dn.float() * self.gain + self.offset, self.statistics)

    def describe(self, bands: Sequence[Band]) -> str:
        pairs = ",".join(f"{band.name}->{s2}" for band, s2 in zip(bands, self.statistics))
        return (f"BigEarthNet v2 z-scores of ({pairs}) applied to DN*{self.gain:g}{self.offset:+g}, rounded through "
                "float16")


def _positive(name: str, value: float | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not (math.isfinite(value) and value > 0)):
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def scene_bands(sensor: Sensor, names: Sequence[str] | None) -> tuple[Band, ...]:
    """The registry bands `names` of an optical `sensor` (None: BigEarthNet v2's 12 for Sentinel-2, else every
    multispectral band), each once."""
    if sensor.kind != "optical":
        raise ValueError(f"sensor {sensor.name!r} is {sensor.kind}: its bands have no wavelength for the Atomizer to "
                         "encode; give an optical sensor")
    if isinstance(names, str):
        raise ValueError(f"bands must be a list of band names (e.g. ['B2', 'B3', 'B4']), got the string {names!r}")
    if names is None:
        return _S2.select(BENV2_S2_BANDS) if sensor is _S2 else sensor.bands
    if not names:
        raise ValueError(f"bands is empty: name at least one band of {sensor.name} ({[b.name for b in sensor.bands]})")
    bands = sensor.select(list(names))
    repeated = sorted({b.name for b in bands if bands.count(b) > 1})
    if repeated:
        raise ValueError(f"bands {repeated} are named more than once in {list(names)}")
    return bands


def nearest_s2_band(band: Band) -> str:
    """The BigEarthNet v2 band whose centre wavelength is nearest to `band`'s."""
    return min(BENV2_S2_BANDS, key=lambda name: abs(_S2.band(name).center_nm - band.center_nm))


def normalisation(sensor: Sensor, bands: Sequence[Band], dn_scale: float | None,
                  reflectance_offset: float) -> Normalisation:
    """See the module docstring, step 1."""
    _positive("dn_scale", dn_scale)
    if not math.isfinite(reflectance_offset):
        raise ValueError(f"reflectance_offset must be a finite number, got {reflectance_offset!r}")
    scale = dn_scale if dn_scale is not None else sensor.dn_scale
    if scale is None:
        raise ValueError(f"sensor {sensor.name!r} has no DN scale in the registry: give dn_scale (the DN of "
                         "reflectance 1)")
    statistics = tuple(band.name if sensor is _S2 else nearest_s2_band(band) for band in bands)
    unknown = [name for name in statistics if name not in BENV2_S2_BANDS]
    if unknown:
        raise ValueError(f"no BigEarthNet v2 statistics for Sentinel-2 band(s) {unknown} (the encoder was trained on "
                         f"{', '.join(BENV2_S2_BANDS)}); leave them out of bands")
    return Normalisation(statistics, S2_DN_PER_REFLECTANCE / scale, reflectance_offset * S2_DN_PER_REFLECTANCE)


def band_rule(sensor: Sensor, bands: Sequence[Band]) -> BandRule:
    """`bands` read by description (any registry spelling, "B02 (490 nm)" too), or by position: the sensor's product
    layout chosen by band count (Sentinel-2: L1C with B10 or L2A without), else exactly `bands` in that order."""
    products = [sensor.bands]
    if sensor is _S2:
        products.append(tuple(b for b in sensor.bands if b.name != "B10"))
    layouts = [BandLayout(f"{sensor.name} ({len(p)} bands)", tuple(b.name for b in p)) for p in products]
    layouts.append(BandLayout(f"the {len(bands)} bands asked", tuple(b.name for b in bands)))

    def canonical(description: str | None) -> str | None:
        if not description:
            return None
        for text in (description, re.split(r"[\s(]", description.strip())[0]):
            try:
                return sensor.band(text).name
            except ValueError:
                continue
        return None

    return BandRule(tuple(layouts), tuple(b.name for b in bands), canonical)


def ground_pixel_m(grid: Grid) -> float:
    """The ground size in metres of one pixel of `grid` (module docstring, step 2)."""
    t = grid.transform
    col_side, row_side = math.hypot(t.a, t.d), math.hypot(t.b, t.e)  # CRS units per pixel
    if grid.crs.is_projected:
        return math.sqrt(col_side * row_side) * grid.crs.linear_units_factor[1]
    if grid.crs.is_geographic:
        metres = grid.crs.units_factor[1] * EARTH_RADIUS_M  # per unit of the CRS (radians per unit × R)
        _, bottom, _, top = grid.bounds
        latitude = (bottom + top) / 2 * grid.crs.units_factor[1]  # radians
        return math.sqrt(col_side * math.cos(latitude) * row_side) * metres
    raise ValueError(f"cannot tell the ground pixel size of a grid in {grid.crs.to_string()}: give gsd_m")


def _grid(info: RasterInfo) -> Grid:
    dataset = open_raster(info.path)
    try:
        return grid_of(dataset)
    finally:
        dataset.close()


def network_config(document: Any, source: str = "the config") -> tuple[dict[str, Any], dict | None, list[str]]:
    """(config, wavelengths_encoding, names ignored) of a training config: the official layout (an ``Atomiser``
    section beside the top-level ``wavelengths_encoding``) or a flat mapping of the same names. Only `AtomizerConfig`
    names are kept; the others (training settings) are returned as ignored."""
    if not isinstance(document, Mapping):
        raise ValueError(f"{source} must hold a mapping (the official config, or AtomizerConfig names), got "
                         f"{type(document).__name__}")
    section = document.get("Atomiser", document)
    if not isinstance(section, Mapping):
        raise ValueError(f"{source}: its 'Atomiser' section must be a mapping, got {type(section).__name__}")
    anchors = document.get("wavelengths_encoding", section.get("wavelengths_encoding"))
    names = {f.name for f in dataclasses.fields(AtomizerConfig)} - {"wavelengths_encoding"}
    config = {key: value for key, value in section.items() if key in names}
    ignored = sorted(str(key) for key in section if key not in names and key != "wavelengths_encoding")
    return config, (dict(anchors) if anchors is not None else None), ignored


def build_network(weights: Weights, config: Mapping[str, Any] | None,
                  anchors: Mapping[str, Mapping[str, float]] | None) -> Atomizer:
    """The seeded untrained network of "random:SEED" weights, or the checkpoint loaded strictly."""
    if weights.random:
        with torch.random.fork_rng():
            torch.manual_seed(weights.seed)
            return models.build("atomizer", **{**RANDOM_CONFIG, **dict(config or {})},
                                wavelengths_encoding=anchors or RANDOM_ANCHORS).eval()
    if anchors is None:
        raise ValueError("an Atomizer checkpoint needs its wavelength anchors: give the option wavelengths_encoding "
                         "(the official config's top-level 'wavelengths_encoding', {g0: {mean, std}, ...}); a "
                         "checkpoint does not hold them")
    return models.load("atomizer", weights.file(), **dict(config or {}), wavelengths_encoding=anchors)


class AtomizerScene(ScenePipeline):
    """What `Classify` and `Embed` share: the network, the bands, the normalisation, the resolution factor."""

    model = "Atomizer"
    Options = AtomizerSceneOptions

    def __init__(self, spec: PipelineSpec, net: Atomizer | None = None) -> None:
        super().__init__(spec)
        o = self.options
        _positive("gsd_m", o.gsd_m)
        self.sensor = lookup_sensor(o.sensor)
        self.bands = scene_bands(self.sensor, o.bands)
        self.normalisation = normalisation(self.sensor, self.bands, o.dn_scale, o.reflectance_offset)
        self.net = net if net is not None else build_network(self.weights, o.config, o.wavelengths_encoding)

    def inputs(self) -> tuple[InputContract, ...]:
        names = ", ".join(b.name for b in self.bands)
        return (InputContract("s2", f"an optical scene of {self.sensor.name} with bands {names}, DN",
                              band_rule(self.sensor, self.bands)),)

    def resolution(self, rasters: Mapping[str, RasterInfo]) -> tuple[float, float]:
        """(GSD in metres, resolution factor r) of the scene."""
        gsd = self.options.gsd_m or ground_pixel_m(_grid(rasters["s2"]))
        return gsd, resolution_factor(gsd)

    def encoder(self, head: Callable[..., torch.Tensor], r: float) -> Callable[[Tiles], torch.Tensor]:
        """A tile function: head(z, mask, r, bands) per window → (B, K), spread over each window's output pixels."""
        normalise_tile, bands, backend = self.normalisation, self.bands, self.options.backend

        def encode(tiles: Tiles) -> torch.Tensor:
            dn = tiles.inputs["s2"]  # (B, C, h, w)
            z = normalise_tile(dn)
            mask = tiles.masks["s2"][:, None].expand_as(z)  # (B, C, h, w): a pixel's bands are valid together
            resolution = torch.full((dn.shape[0],), r, dtype=torch.float64)
            with torch.inference_mode(), ops.use_backend(backend):
                out = head(z, mask, resolution, bands)  # (B, K)
            return out[:, :, None, None].expand(-1, -1, *tiles.shape)

        return encode

    def scene_tags(self, gsd: float, r: float) -> dict[str, str]:
        return {"RSINFER_SENSOR": self.sensor.name, "RSINFER_BANDS": ",".join(b.name for b in self.bands),
                "RSINFER_GSD_M": f"{gsd:g}", "RSINFER_RESOLUTION_FACTOR": repr(r),
                "RSINFER_NORMALISATION": self.normalisation.describe(self.bands),
                "RSINFER_WAVELENGTH_ANCHORS": json.dumps([list(a) for a in self.net.config.anchors])}

    def run_tags(self) -> dict[str, str]:
        tags = {"RSINFER_ENGINE": "torch", "RSINFER_PRECISION": "float32"}
        if self.weights.random:
            tags["RSINFER_SEED"] = str(self.weights.seed)
        return tags


class Classify(AtomizerScene):
    name = "classify"
    default_tiling = Tiling(120, 56, "cosine", 4)

    def __init__(self, spec: PipelineSpec, net: Atomizer | None = None) -> None:
        super().__init__(spec, net)
        if self.net.config.num_classes != len(CLASSES):
            raise ValueError(f"classify writes the {len(CLASSES)} BigEarthNet v2 classes; the network has "
                             f"num_classes {self.net.config.num_classes}")

    def probabilities(self, z: torch.Tensor, mask: torch.Tensor, resolution: torch.Tensor,
                      bands: Sequence[Band]) -> torch.Tensor:
        """(B, 19) sigmoid of the logits."""
        return torch.sigmoid(self.net(z, mask, resolution, bands))

    def plan(self, rasters: Mapping[str, RasterInfo], tiling: Tiling) -> ScenePlan:
        (contract,) = self.inputs()
        resolved = resolve_bands(contract.bands, rasters["s2"], "s2")
        gsd, r = self.resolution(rasters)
        return ScenePlan(self.encoder(self.probabilities, r), "s2", {"s2": resolved.indexes},
                         OutputContract(CLASSES, "float32", float("nan")), tags=self.scene_tags(gsd, r))


class Embed(AtomizerScene):
    name = "embed"
    default_tiling = Tiling(120, 0, "constant", 4)

    def plan(self, rasters: Mapping[str, RasterInfo], tiling: Tiling) -> ScenePlan:
        if tiling.tile is None or tiling.overlap != 0:
            raise ValueError(f"embed writes one pixel per window of tile x tile pixels, side by side: give a tile and "
                             f"overlap 0 (got tile {tiling.tile}, overlap {tiling.overlap})")
        (contract,) = self.inputs()
        resolved = resolve_bands(contract.bands, rasters["s2"], "s2")
        gsd, r = self.resolution(rasters)
        width = max(3, len(str(self.net.config.latent_dim - 1)))
        names = tuple(f"embedding_{i:0{width}d}" for i in range(self.net.config.latent_dim))
        return ScenePlan(self.encoder(self.net.embed, r), "s2", {"s2": resolved.indexes},
                         OutputContract(names, "float32", float("nan"), scale=1 / tiling.tile),
                         tags={**self.scene_tags(gsd, r), "RSINFER_WINDOW": str(tiling.tile)})
