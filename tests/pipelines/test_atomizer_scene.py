"""The ``classify`` and ``embed`` pipelines (`rsinfer.pipelines.atomizer_scene`) on real scenes: BigEarthNet S2
example patches (the 12 bands stacked at 10 m, as the authors' nearest-neighbour preprocessing does) and a crop of the
Landsat 8 scene (B2, B3, B4 stacked). References are computed independently: the patch through
`atomizer_preprocessing.benv2_image` from the native per-band files, Landsat z-scores in numpy from the published
statistics, and the network called directly on each window."""

from __future__ import annotations

import json
import math
import tarfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window as RioWindow
from tests.scene.scene_data import DATA, LANDSAT, S2, crop, gdalinfo, metadata_item

from rsinfer import models
from rsinfer.errors import InputDataError
from rsinfer.io import grid_of, open_raster
from rsinfer.pipelines import PipelineSpec, Tiling, build, run
from rsinfer.pipelines.atomizer_preprocessing import BENV2_S2_BANDS, BENV2_S2_MEAN, BENV2_S2_STD, benv2_image
from rsinfer.pipelines.atomizer_scene import (CLASSES, RANDOM_ANCHORS, RANDOM_CONFIG, ground_pixel_m,
                                              network_config)
from rsinfer.pipelines.provenance import weights_tag
from rsinfer.pipelines.spec import Weights
from rsinfer.tiling import plan_windows, tile_weights

# The BigEarthNet 19-class nomenclature in the paper's order (Sumbul et al., BigEarthNet v2 / configilm
# NEW_LABELS_ORIGINAL_ORDER); the classifier's outputs follow their lexicographic order.
PAPER_ORDER = (
    "Urban fabric", "Industrial or commercial units", "Arable land", "Permanent crops", "Pastures",
    "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation", "Agro-forestry areas",
    "Broad-leaved forest", "Coniferous forest", "Mixed forest", "Natural grassland and sparsely vegetated areas",
    "Moors, heathland and sclerophyllous vegetation", "Transitional woodland, shrub", "Beaches, dunes, sands",
    "Inland wetlands", "Coastal wetlands", "Inland waters", "Marine waters")
LANDSAT_STATISTICS = {"B2": 1, "B3": 2, "B4": 3}  # index into BENV2_S2_BANDS of B02, B03, B04: nearest centres
EXPECTED_TAGS = ("RSINFER_PIPELINE", "RSINFER_MODEL", "RSINFER_WEIGHTS", "RSINFER_SPEC", "RSINFER_TILING",
                 "RSINFER_INPUTS", "RSINFER_SEED", "RSINFER_ENGINE", "RSINFER_SENSOR", "RSINFER_BANDS",
                 "RSINFER_RESOLUTION_FACTOR", "RSINFER_NORMALISATION", "RSINFER_WAVELENGTH_ANCHORS")


def extract_bigearthnet(data_dir: Path, target: Path) -> list[Path]:
    """The 6 BigEarthNet S2 example patch folders, extracted under `target`."""
    with tarfile.open(data_dir / "bigearthnet" / "BigEarthNet-S2-Example.tar.bz2") as archive:
        archive.extractall(target, filter="data")
    return sorted((target / "BigEarthNet-S2-Example").iterdir())


def native_bands(folder: Path) -> dict[str, np.ndarray]:
    """A patch's 12 bands, each from its own file at its native resolution."""
    bands = {}
    for name in BENV2_S2_BANDS:
        with rasterio.open(folder / f"{folder.name}_{name}.tif") as src:
            bands[name] = src.read(1)
    return bands


def stack_patch(folder: Path, out: Path, described: bool = True) -> Path:
    """The 12 bands of a patch at 10 m (20 m and 60 m pixels repeated 2× / 6×) in one uint16 GeoTIFF on the 10 m
    bands' grid, in BigEarthNet v2 order, with band descriptions (or without)."""
    bands = native_bands(folder)
    with rasterio.open(folder / f"{folder.name}_B02.tif") as ref:
        profile = ref.profile | {"count": 12, "tiled": False, "compress": None}
    profile.pop("blockxsize", None), profile.pop("blockysize", None)
    with rasterio.open(out, "w", **profile) as dst:
        for i, name in enumerate(BENV2_S2_BANDS, 1):
            factor = 120 // bands[name].shape[0]
            dst.write(np.repeat(np.repeat(bands[name], factor, axis=0), factor, axis=1), i)
            if described:
                dst.set_band_description(i, name)
    return out


def stack_landsat(out: Path, row: int, col: int, height: int, width: int, described: bool = True) -> Path:
    """B2, B3, B4 of the Landsat 8 scene, rows/cols of a crop, in one uint16 GeoTIFF (descriptions B2, B3, B4)."""
    window = RioWindow(col, row, width, height)
    with rasterio.open(LANDSAT["B2"]) as ref:
        profile = ref.profile | {"count": 3, "height": height, "width": width, "tiled": False, "compress": None,
                                 "transform": ref.window_transform(window)}
    profile.pop("blockxsize", None), profile.pop("blockysize", None)
    with rasterio.open(out, "w", **profile) as dst:
        for i, band in enumerate(("B2", "B3", "B4"), 1):
            with rasterio.open(LANDSAT[band]) as src:
                dst.write(src.read(1, window=window), i)
            if described:
                dst.set_band_description(i, band)
    return out


def landsat_z(dn: np.ndarray) -> np.ndarray:
    """(3, h, w) Landsat 8 DN of B2, B3, B4 → z-scores: DN/65535 as reflectance, × 10000 as Sentinel-2 DN, the
    statistics of B02, B03, B04, rounded through float16 (float32 arithmetic throughout)."""
    s2_dn = dn.astype(np.float32) * np.float32(10000 / 65535)
    index = list(LANDSAT_STATISTICS.values())
    mean = np.array([BENV2_S2_MEAN[i] for i in index], dtype=np.float32)[:, None, None]
    std = np.array([BENV2_S2_STD[i] for i in index], dtype=np.float32)[:, None, None]
    return ((s2_dn - mean) / std).astype(np.float16).astype(np.float32)


@pytest.fixture(scope="module")
def patches(tmp_path_factory) -> list[Path]:
    return extract_bigearthnet(DATA, tmp_path_factory.mktemp("bigearthnet"))


@pytest.fixture(scope="module")
def landsat(tmp_path_factory) -> Path:
    """A 150 × 170 crop (sizes not multiples of any window) of the Landsat 8 scene, 3 bands."""
    return stack_landsat(tmp_path_factory.mktemp("landsat") / "landsat.tif", 700, 900, 150, 170)


LANDSAT_OPTIONS = {"sensor": "landsat-8", "bands": ["B2", "B3", "B4"]}
LANDSAT_BANDS = ["landsat-8:B2", "landsat-8:B3", "landsat-8:B4"]  # the model's own spelling of the same bands


def _read(path: Path) -> tuple[np.ndarray, dict, tuple, dict]:
    with rasterio.open(path) as ds:
        return ds.read(), ds.profile, ds.descriptions, ds.tags()


def _probabilities(net, z: np.ndarray, mask: np.ndarray, r: float, bands=None) -> np.ndarray:
    """sigmoid(net(window)) for one (C, h, w) window."""
    with torch.inference_mode():
        image = torch.from_numpy(z)[None]
        return torch.sigmoid(net(image, torch.from_numpy(mask)[None].expand_as(image), [r], bands))[0].numpy()


def test_classes_are_the_19_bigearthnet_classes_in_lexicographic_order():
    assert CLASSES == tuple(sorted(PAPER_ORDER)) and len(set(CLASSES)) == 19


def test_random_weights_are_a_seeded_build_of_the_documented_config():
    pipe = build(PipelineSpec("classify", "random:5"))
    torch.manual_seed(5)
    expected = models.build("atomizer", **RANDOM_CONFIG, wavelengths_encoding=RANDOM_ANCHORS)
    assert pipe.net.state_dict().keys() == expected.state_dict().keys()
    assert all(torch.equal(v, expected.state_dict()[k]) for k, v in pipe.net.state_dict().items())
    # the 16 anchors of parity_semantics.md §Atomizer 3, in key order
    means = [380, 424, 468, 513, 557, 602, 646, 691, 735, 780, 850, 940, 1200, 1400, 1600, 2100]
    stds = [15] * 12 + [80, 30, 40, 120]
    assert [(a["mean"], a["std"]) for a in RANDOM_ANCHORS.values()] == list(zip(means, stds))
    assert list(RANDOM_ANCHORS) == [f"g{k}" for k in range(16)]


def test_classify_a_bigearthnet_patch_is_the_network_on_the_patch(patches, tmp_path):
    """One 120² patch = one window (default tiling): the map is sigmoid(net(patch)) everywhere, the patch
    preprocessed from its native per-band files by `benv2_image`; 19 classes named, georeferenced, tagged."""
    folder = patches[0]
    scene = stack_patch(folder, tmp_path / "patch.tif")
    pipe = build(PipelineSpec("classify", "random:2"))
    out = tmp_path / "probs.tif"
    summary = run(pipe, {"s2": scene}, out, progress=False, command=["rsinfer", "classify"])
    image = benv2_image({n: torch.from_numpy(b.astype(np.int32)) for n, b in native_bands(folder).items()})
    expected = _probabilities(pipe.net, image.numpy(), np.ones((12, 120, 120), dtype=bool), 1.0)
    values, profile, descriptions, tags = _read(out)
    assert summary.shape == (19, 120, 120) and summary.tiles_run == 1
    np.testing.assert_array_equal(values, np.broadcast_to(expected[:, None, None], values.shape))
    assert 0 < values.min() and values.max() < 1 and profile["dtype"] == "float32" and math.isnan(profile["nodata"])
    assert descriptions == CLASSES
    assert set(EXPECTED_TAGS) <= set(tags)
    assert tags["RSINFER_WEIGHTS"] == weights_tag(Weights(seed=2)) and tags["RSINFER_SEED"] == "2"
    assert tags["RSINFER_RESOLUTION_FACTOR"] == "1.0" and tags["RSINFER_GSD_M"] == "10"
    assert tags["RSINFER_BANDS"] == ",".join(BENV2_S2_BANDS) and tags["RSINFER_SENSOR"] == "sentinel-2"
    assert json.loads(tags["RSINFER_WAVELENGTH_ANCHORS"])[12] == [1200.0, 80.0]
    with rasterio.open(folder / f"{folder.name}_B02.tif") as ref:
        assert profile["crs"] == ref.crs and profile["transform"] == ref.transform
    info = gdalinfo(out)
    assert [b["description"] for b in info["bands"]] == list(CLASSES)
    assert metadata_item(info, "", "RSINFER_PIPELINE") == "classify"


def test_band_identity_by_description_by_position_and_subsets(patches, tmp_path):
    """The same patch without band descriptions (12 bands: the L2A layout by count) gives the same map; a subset
    read by name from the described file is the network on those bands only."""
    described = stack_patch(patches[1], tmp_path / "described.tif")
    bare = stack_patch(patches[1], tmp_path / "bare.tif", described=False)
    pipe = build(PipelineSpec("classify", "random:0"))
    run(pipe, {"s2": described}, tmp_path / "a.tif", progress=False)
    run(pipe, {"s2": bare}, tmp_path / "b.tif", progress=False)
    np.testing.assert_array_equal(_read(tmp_path / "a.tif")[0], _read(tmp_path / "b.tif")[0])

    subset = build(PipelineSpec("classify", "random:0", {"bands": ["B4", "b03", "B02"]}))  # any registry spelling
    run(subset, {"s2": described}, tmp_path / "rgb.tif", progress=False)
    dn = torch.from_numpy(_read(described)[0].astype(np.float32))
    index = [3, 2, 1]  # B04, B03, B02 in BENV2 order
    mean = torch.tensor([BENV2_S2_MEAN[i] for i in index])[:, None, None]
    std = torch.tensor([BENV2_S2_STD[i] for i in index])[:, None, None]
    z = ((dn[index] - mean) / std).half().float().numpy()
    expected = _probabilities(subset.net, z, np.ones(z.shape, dtype=bool), 1.0, ["B04", "B03", "B02"])
    np.testing.assert_array_equal(_read(tmp_path / "rgb.tif")[0][:, 60, 60], expected)
    assert _read(tmp_path / "rgb.tif")[3]["RSINFER_BANDS"] == "B04,B03,B02"


@pytest.mark.parametrize("tiling,centres", [(Tiling(64, 0, "constant", 3), 3), (Tiling(64, 16, "crop", 2), 6)])
def test_classify_windows_hold_their_own_probabilities_where_no_other_window_reaches(landsat, tmp_path, tiling,
                                                                                       centres):
    """Landsat 8 (r = 10/30), 64-px windows without overlap or crop-stitched: wherever one window alone gives weight
    to a pixel, the map is that window's sigmoid(net(window)), computed with numpy z-scores and the model's own band
    names."""
    pipe = build(PipelineSpec("classify", "random:3", LANDSAT_OPTIONS))
    out = tmp_path / "probs.tif"
    run(pipe, {"s2": landsat}, out, tiling=tiling, progress=False)
    values, profile, descriptions, tags = _read(out)
    dn = _read(landsat)[0]
    windows = plan_windows(150, 170, 64, tiling.overlap)
    # where each window's blend weight is positive (crop: all but a margin of overlap/2 towards its neighbours)
    weighted = [tile_weights(w, 150, 170, tiling.overlap, tiling.blend).numpy() > 0 for w in windows]
    cover = np.zeros((150, 170), dtype=int)
    for w, own in zip(windows, weighted):
        cover[w.slices()] += own
    checked = 0
    for w, own in zip(windows, weighted):
        z = landsat_z(dn[:, w.row:w.bottom, w.col:w.right])
        expected = _probabilities(pipe.net, z, np.ones(z.shape, dtype=bool), 10 / 30, LANDSAT_BANDS)
        alone = own & (cover[w.slices()] == 1)
        if alone[32, 32]:  # its centre
            checked += 1
        np.testing.assert_allclose(values[:, w.row:w.bottom, w.col:w.right][:, alone],
                                   np.broadcast_to(expected[:, None], (19, int(alone.sum()))), rtol=1e-6, atol=1e-7)
    assert checked == centres and (cover > 1).any()
    assert tags["RSINFER_RESOLUTION_FACTOR"] == repr(1 / 3) and tags["RSINFER_GSD_M"] == "30"
    assert tags["RSINFER_NORMALISATION"].startswith("BigEarthNet v2 z-scores of (B2->B02,B3->B03,B4->B04)")
    assert descriptions == CLASSES and 0 <= values.min() and values.max() <= 1
    gdalinfo(out)


def test_the_default_tiling_blends_neighbouring_windows_smoothly(landsat, tmp_path):
    """120-px windows every 64 px (overlap 56, cosine): each pixel is a convex combination of the windows covering it,
    the corner covered by one window only holds its probabilities, and the map varies between window values."""
    pipe = build(PipelineSpec("classify", "random:4", LANDSAT_OPTIONS))
    out = tmp_path / "probs.tif"
    run(pipe, {"s2": landsat}, out, progress=False)
    values = _read(out)[0]
    dn = _read(landsat)[0]
    windows = plan_windows(150, 170, 120, 56)
    assert [(w.row, w.col) for w in windows] == [(0, 0), (0, 50), (30, 0), (30, 50)]
    low, high = np.full(values.shape, np.inf), np.full(values.shape, -np.inf)
    probabilities = []
    for w in windows:
        z = landsat_z(dn[:, w.row:w.bottom, w.col:w.right])
        p = _probabilities(pipe.net, z, np.ones(z.shape, dtype=bool), 10 / 30, LANDSAT_BANDS)
        probabilities.append(p)
        low[:, w.row:w.bottom, w.col:w.right] = np.minimum(low[:, w.row:w.bottom, w.col:w.right], p[:, None, None])
        high[:, w.row:w.bottom, w.col:w.right] = np.maximum(high[:, w.row:w.bottom, w.col:w.right], p[:, None, None])
    assert (values >= low - 1e-6).all() and (values <= high + 1e-6).all()
    np.testing.assert_allclose(values[:, :30, :50], np.broadcast_to(probabilities[0][:, None, None], (19, 30, 50)),
                               rtol=1e-6)
    row = values[0, 75]  # across the seam between the columns of windows: a ramp, not a step
    assert np.abs(np.diff(row)).max() < 0.2 * abs(probabilities[1][0] - probabilities[0][0]) + 1e-6


def test_embed_is_net_embed_of_each_window_on_the_coarse_grid(patches, tmp_path):
    """48-px windows over a 120² patch: a 3 × 3 grid of 480 m pixels; each pixel is exactly `net.embed` of its
    window, the windows of the last row and column reaching past the patch encoded from their valid pixels."""
    scene = stack_patch(patches[2], tmp_path / "patch.tif")
    pipe = build(PipelineSpec("embed", "random:6"))
    out = tmp_path / "emb.tif"
    summary = run(pipe, {"s2": scene}, out, tiling=Tiling(48, 0, "constant", 1), progress=False)
    values, profile, descriptions, tags = _read(out)
    dim = RANDOM_CONFIG["latent_dim"]
    assert summary.shape == (dim, 3, 3) and summary.tiles_run == 9
    assert descriptions == tuple(f"embedding_{i:03d}" for i in range(dim)) and tags["RSINFER_WINDOW"] == "48"
    with rasterio.open(scene) as src:
        a, b, c, d, e, f = src.transform[:6]
        assert profile["transform"][:6] == (48 * a, b, c, d, 48 * e, f) and profile["crs"] == src.crs
        dn = src.read().astype(np.float32)
    z = ((torch.from_numpy(dn) - torch.tensor(BENV2_S2_MEAN)[:, None, None])
         / torch.tensor(BENV2_S2_STD)[:, None, None]).half().float()
    for i in range(3):
        for j in range(3):
            window = torch.zeros(12, 48, 48)
            mask = torch.zeros(12, 48, 48)
            part = z[:, 48 * i:48 * i + 48, 48 * j:48 * j + 48]
            window[:, :part.shape[1], :part.shape[2]] = part
            mask[:, :part.shape[1], :part.shape[2]] = 1
            with torch.inference_mode():
                expected = pipe.net.embed(window[None], mask[None], [1.0])[0]
            assert torch.equal(torch.from_numpy(values[:, i, j]), expected), (i, j)
    gdalinfo(out)


def test_embed_a_landsat_crop_with_the_default_window(landsat, tmp_path):
    """120-px windows over 150 × 170 pixels: 2 × 2 embeddings of 3.6 km pixels; the partial windows equal the network
    on their valid part (batched: within float32 rounding)."""
    pipe = build(PipelineSpec("embed", "random:7", LANDSAT_OPTIONS))
    out = tmp_path / "emb.tif"
    run(pipe, {"s2": landsat}, out, progress=False)
    values, profile, _, tags = _read(out)
    assert values.shape == (64, 2, 2) and profile["transform"].a == 3600 and tags["RSINFER_PIPELINE"] == "embed"
    z = landsat_z(_read(landsat)[0])
    window = np.zeros((3, 120, 120), dtype=np.float32)
    window[:, :30, :50] = z[:, 120:, 120:]
    mask = np.zeros((3, 120, 120), dtype=np.float32)
    mask[:, :30, :50] = 1
    with torch.inference_mode():
        expected = pipe.net.embed(torch.from_numpy(window)[None], torch.from_numpy(mask)[None], [10 / 30],
                                  LANDSAT_BANDS)[0].numpy()
    np.testing.assert_allclose(values[:, 1, 1], expected, rtol=1e-5, atol=1e-6)
    gdalinfo(out)


def _seeded_lightning_checkpoint(path: Path, config: dict, seed: int) -> dict[str, torch.Tensor]:
    """A Lightning checkpoint in the official layout: encoder keys under "encoder.", plus the epoch counter."""
    torch.manual_seed(seed)
    net = models.build("atomizer", **config, wavelengths_encoding=RANDOM_ANCHORS)
    state = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() and k != "transform.s2_res" else v
             for k, v in net.state_dict().items()}
    torch.save({"state_dict": {f"encoder.{k}": v for k, v in state.items()}, "epoch": 3}, path)
    return state


def test_a_lightning_checkpoint_with_its_config(patches, tmp_path):
    config = {**RANDOM_CONFIG, "latent_dim": 32, "num_latents": 8, "depth": 1}
    ckpt = tmp_path / "atomizer.ckpt"
    state = _seeded_lightning_checkpoint(ckpt, config, 11)
    scene = stack_patch(patches[3], tmp_path / "patch.tif")
    options = {"config": config, "wavelengths_encoding": RANDOM_ANCHORS, "bands": ["B02", "B03", "B04", "B08"]}
    pipe = build(PipelineSpec("classify", str(ckpt), options))
    assert all(torch.equal(pipe.net.state_dict()[k], v) for k, v in state.items())
    out = tmp_path / "probs.tif"
    run(pipe, {"s2": scene}, out, progress=False)
    values, _, _, tags = _read(out)
    assert tags["RSINFER_WEIGHTS"].startswith("sha256:") and "RSINFER_SEED" not in tags
    expected_net = models.build("atomizer", **config, wavelengths_encoding=RANDOM_ANCHORS)
    expected_net.load_state_dict(state)
    image = benv2_image({n: torch.from_numpy(b.astype(np.int32)) for n, b in native_bands(patches[3]).items()})
    z = image[[1, 2, 3, 7]].numpy()
    expected = _probabilities(expected_net.eval(), z, np.ones(z.shape, dtype=bool), 1.0, ["B02", "B03", "B04", "B08"])
    np.testing.assert_array_equal(values[:, 0, 0], expected)
    with pytest.raises(ValueError, match="needs its wavelength anchors: give the option wavelengths_encoding"):
        build(PipelineSpec("classify", str(ckpt), {"config": config}))


def test_official_config_documents_are_split_into_network_and_anchors():
    document = {"Atomiser": {"depth": 2, "latent_dim": 64, "attn_dropout": 0.1}, "wavelengths_encoding": RANDOM_ANCHORS,
                "trainer": {"epochs": 10}}
    assert network_config(document) == ({"depth": 2, "latent_dim": 64}, RANDOM_ANCHORS, ["attn_dropout"])
    flat = {"depth": 3, "wavelengths_encoding": RANDOM_ANCHORS}
    assert network_config(flat) == ({"depth": 3}, RANDOM_ANCHORS, [])
    with pytest.raises(ValueError, match="must hold a mapping"):
        network_config([1, 2])


def test_ground_pixel_size_of_a_geographic_grid(tmp_path):
    """Sen1Floods11 S2 is on EPSG:4326 (8.98e-5° pixels): its ground pixel, measured by projecting a pixel's corners
    to UTM and taking the geometric mean of its sides, agrees with the spherical estimate to 0.5 %."""
    path = crop(S2, tmp_path / "s2.tif", 180, 200, 90, 120)
    dataset = open_raster(path)
    grid = grid_of(dataset)
    dataset.close()
    t = grid.transform
    centre = (t * (60, 45))
    zone = int((centre[0] + 180) // 6) + 1
    utm = f"EPSG:{32600 + zone if centre[1] >= 0 else 32700 + zone}"
    xs, ys = warp_transform(grid.crs, utm, *zip(t * (60, 45), t * (61, 45), t * (60, 46)))
    width, height = math.hypot(xs[1] - xs[0], ys[1] - ys[0]), math.hypot(xs[2] - xs[0], ys[2] - ys[0])
    assert ground_pixel_m(grid) == pytest.approx(math.sqrt(width * height), rel=5e-3)
    pipe = build(PipelineSpec("classify", "random:1"))
    run(pipe, {"s2": path}, tmp_path / "probs.tif", progress=False)
    factor = float(_read(tmp_path / "probs.tif")[3]["RSINFER_RESOLUTION_FACTOR"])
    assert factor == pytest.approx(10 / math.sqrt(width * height), rel=5e-3)


@pytest.mark.parametrize("name,options,error,message", [
    ("classify", {"sensor": "sentinel-1"}, ValueError, "sentinel-1' is sar: its bands have no wavelength"),
    ("classify", {"sensor": "landsat-8", "bands": ["B2", "B13"]}, ValueError, "landsat-8 has no band 'B13'; known"),
    ("classify", {"bands": ["B10", "B02"]}, ValueError, r"no BigEarthNet v2 statistics for Sentinel-2 band\(s\) "
                                                        r"\['B10'\]"),
    ("classify", {"bands": ["B02", "B2"]}, ValueError, r"bands \['B02'\] are named more than once"),
    ("classify", {"bands": "B02,B03"}, ValueError, "must be a list of band names"),
    ("classify", {"gsd_m": -10}, ValueError, "gsd_m must be a positive number, got -10"),
    ("classify", {"config": {"num_classes": 5}}, ValueError, "the network has num_classes 5"),
    ("classify", {"sensor": "qb", "bands": ["blue"], "dn_scale": 0}, ValueError, "dn_scale must be a positive"),
])
def test_bad_options_are_refused_with_what_is_allowed(name, options, error, message):
    with pytest.raises(error, match=message):
        build(PipelineSpec(name, "random:0", options))


def test_bad_scenes_and_tilings_are_refused(landsat, tmp_path):
    pipe = build(PipelineSpec("classify", "random:0", {"sensor": "landsat-8", "bands": ["B2", "B5"]}))
    with pytest.raises(InputDataError, match=r"bands \['B5'\] are missing; needed \['B2', 'B5'\], found \['B2', "
                                             r"'B3', 'B4'\]"):
        run(pipe, {"s2": landsat}, tmp_path / "o.tif", progress=False)
    embed = build(PipelineSpec("embed", "random:0", LANDSAT_OPTIONS))
    with pytest.raises(ValueError, match="give a tile and overlap 0 \\(got tile 120, overlap 8\\)"):
        run(embed, {"s2": landsat}, tmp_path / "o.tif", tiling=Tiling(120, 8, "constant", 4), progress=False)
    assert not (tmp_path / "o.tif").exists()
