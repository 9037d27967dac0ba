"""The ``fill-gap`` pipeline (`rsinfer.pipelines.fill_gap`) on real Sen1Floods11 rasters through the scene engine.

No real time series is bundled, so every neighbour pair here is a spatially shifted crop of the same chip (S1 and S2
at the same shift), written with the source crop's georeference: another place of the same scene stands in for
another date of the same place. The reconstruction is checked against eq. 10-11 evaluated independently in numpy,
tiling against whole-scene runs, and bad inputs against their errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from numpy.lib.stride_tricks import sliding_window_view
from tests.scene.scene_data import S1, S2, crop, gdalinfo, metadata_item

from rsinfer import models
from rsinfer.io import OutputOptions, RasterInputError, raster_info
from rsinfer.pipelines import PipelineSpec, Tiling, run
from rsinfer.pipelines.fill_gap import FillGap

SHIFTS = ((30, 10), (-10, 50))  # (rows, cols) of pair n's crop relative to the source crop
S2_INDEX = {"B2": 2, "B3": 3, "B4": 4, "B11": 12, "B12": 13}  # 1-based bands of the 13-band L1C chip
TASK_BANDS = {"sar2rgb": ("B4", "B3", "B2"), "rgb2swir": ("B11", "B12")}
SMALL = dict(widths=(8, 16, 32))  # 3 levels: receptive margin 21, tiles align to 8 pixels
FLOAT = OutputOptions(dtype="float32")


def zero_network(source_diff: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(guide)


def make_scene(folder: Path, task: str | None = "sar2rgb", size: tuple[int, int] = (72, 80),
               origin: tuple[int, int] = (100, 100), pairs: int = 2) -> dict[str, Path]:
    """Crops of the chip: the source at `origin`, pair n at origin + SHIFTS[n − 1] on the source's georeference."""
    (height, width), (row, col) = size, origin
    source_file = S1 if task == "sar2rgb" else S2
    inputs = {"source": crop(source_file, folder / "source.tif", row, col, height, width)}
    with rasterio.open(inputs["source"]) as ds:
        transform = ds.transform
    for n, (dr, dc) in enumerate(SHIFTS[:pairs], 1):
        inputs[f"source_{n}"] = crop(source_file, folder / f"source_{n}.tif", row + dr, col + dc, height, width,
                                     transform=transform)
        inputs[f"target_{n}"] = crop(S2, folder / f"target_{n}.tif", row + dr, col + dc, height, width,
                                     transform=transform)
    return inputs


def write_bands(source: Path, out: Path, bands: tuple[int, ...]) -> Path:
    """A copy of `source` holding only `bands` (1-based), without band descriptions."""
    with rasterio.open(source) as src:
        profile = src.profile | {"count": len(bands)}
        data = src.read(list(bands))
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
    return out


# --- the reference, written out in numpy ---------------------------------------------------------------------------

def read(path: Path, bands: tuple[int, ...] | None = None) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(list(bands) if bands else None).astype(np.float64)


def unit_source(path: Path, task: str) -> np.ndarray:
    """The preset scaling: S1 dB, VV clipped to [−25, 0] and VH to [−32.5, 0], to [0, 1]; S2 DN / 10000 in [0, 1]."""
    if task == "sar2rgb":
        vv, vh = read(path)
        return np.stack([(np.clip(vv, -25, 0) + 25) / 25, (np.clip(vh, -32.5, 0) + 32.5) / 32.5])
    return np.clip(read(path, tuple(S2_INDEX[b] for b in TASK_BANDS["sar2rgb"])), 0, 10000) / 10000


def target_dn(path: Path, task: str) -> np.ndarray:
    return read(path, tuple(S2_INDEX[b] for b in TASK_BANDS[task]))


def box_mean(image: np.ndarray, window: int) -> np.ndarray:
    """f_s * image over the last two axes, edges mirrored without repeating the edge pixel (numpy "reflect")."""
    half = window // 2
    padded = np.pad(image, ((0, 0), (half, half), (half, half)), mode="reflect")
    return sliding_window_view(padded, (window, window), axis=(1, 2)).mean(axis=(-2, -1))


def eq11_p_1(inputs: dict[str, Path], task: str, window: int, k: float = 10.0) -> np.ndarray:
    """Eq. (11) as printed, |·| after the filter, averaged over the source bands: p_1 = 1 / (1 + e^(−k(d_2 − d_1)))."""
    source = unit_source(inputs["source"], task)
    d_1, d_2 = (np.abs(box_mean(source - unit_source(inputs[f"source_{n}"], task), window)).mean(axis=0)
                for n in (1, 2))
    return 1 / (1 + np.exp(-k * (d_2 - d_1)))


def relative_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def fill_gap(weights: str = "random:0", served=None, **options) -> FillGap:
    """The pipeline from a spec; `served`: a network to serve instead of the spec's weights."""
    return FillGap(PipelineSpec("fill-gap", weights, options), served)


# --- the reconstruction through the scene path ---------------------------------------------------------------------

@pytest.mark.parametrize("task, window, tiling, tiles", [("sar2rgb", 9, Tiling(32, 8, "crop", 2), 3 * 3),
                                                         ("rgb2swir", None, Tiling(32, 10, "crop", 3), 3 * 4)])
def test_zero_network_gives_the_eq11_weighted_sum_of_the_pairs_targets(tmp_path, task, window, tiling, tiles) -> None:
    inputs = make_scene(tmp_path, task)
    options = {"task": task, **({"window": window} if window else {})}
    summary = run(fill_gap(served=zero_network, **options), inputs, tmp_path / "out.tif", tiling=tiling,
                  output_options=FLOAT, progress=False)
    assert summary.tiles_run == tiles  # 72 × 80 in 32-pixel tiles
    p_1 = eq11_p_1(inputs, task, window or {"sar2rgb": 51, "rgb2swir": 11}[task])
    expected = p_1 * target_dn(inputs["target_1"], task) + (1 - p_1) * target_dn(inputs["target_2"], task)
    with rasterio.open(tmp_path / "out.tif") as out, rasterio.open(inputs["source"]) as source:
        assert (out.crs, out.transform, out.shape) == (source.crs, source.transform, source.shape)
        assert out.descriptions == TASK_BANDS[task]
        assert out.tags()["RSINFER_TASK"] == task and out.tags()["RSINFER_WINDOW"] == str(window or 11)
        written = out.read().astype(np.float64)
    assert relative_l2(written, expected) <= 1e-5
    assert 0.05 < p_1.std() and p_1.min() < 0.5 < p_1.max()  # the weights vary, and each pair is trusted somewhere

    run(fill_gap(product="weights", **options), inputs, tmp_path / "p.tif", tiling=tiling, progress=False)
    with rasterio.open(tmp_path / "p.tif") as p:
        assert p.descriptions == ("p_1", "p_2") and p.dtypes == ("float32", "float32")
        assert p.tags()["RSINFER_PRODUCT"] == "weights" and "RSINFER_ENGINE" not in p.tags()
        weights = p.read().astype(np.float64)
    np.testing.assert_allclose(weights, np.stack([p_1, 1 - p_1]), rtol=0, atol=2e-6)


def test_one_pair_gives_that_pairs_estimate_in_the_targets_dtype(tmp_path) -> None:
    inputs = make_scene(tmp_path, pairs=1)
    run(fill_gap(served=zero_network, task="sar2rgb"), inputs, tmp_path / "out.tif", progress=False)
    with rasterio.open(tmp_path / "out.tif") as out, rasterio.open(inputs["target_1"]) as target:
        assert out.dtypes == ("int16",) * 3 and out.nodata == target.nodata == 0
        assert np.array_equal(out.read(), target.read([4, 3, 2]))  # T̂_i = T_1 exactly, DN → [0, 1] → DN
    info = gdalinfo(tmp_path / "out.tif")
    assert [band["description"] for band in info["bands"]] == ["B4", "B3", "B2"]
    assert metadata_item(info, "", "RSINFER_PIPELINE") == "fill-gap"
    assert metadata_item(info, "", "RSINFER_S1_SCALE") == "dB"


def whole_scene(pipe: FillGap, inputs: dict[str, Path]) -> np.ndarray:
    """The reconstruction on the whole crop at once, inputs scaled by the test's own preset scaling, back to DN."""
    tensor = {name: torch.from_numpy(unit_source(path, "sar2rgb") if name.startswith("source") else
                                     np.clip(target_dn(path, "sar2rgb"), 0, 10000) / 10000).float()[None]
              for name, path in inputs.items()}
    result = pipe.reconstruction(2, 3).translate(tensor["source"], [(tensor[f"source_{n}"], tensor[f"target_{n}"])
                                                                    for n in (1, 2)])
    return (result.target.clamp(0, 1) * 10000)[0].double().numpy()


TILED = Tiling(120, 56, "crop", 2)  # 248² in 3 × 3 tiles starting at 0, 64, 128 (multiples of 8), context 28


def test_tiles_reproduce_the_whole_scene_for_a_local_network(tmp_path) -> None:
    """η = 1 turns the feature masks off: the network is a plain U-Net, local within its margin (21), and the overlap
    gives max(s // 2 = 25, 21) pixels of context, so tiles must give the whole-scene result."""
    inputs = make_scene(tmp_path, size=(248, 248), origin=(120, 120))
    pipe = fill_gap("random:1", task="sar2rgb", network={**SMALL, "eta": 1.0})
    summary = run(pipe, inputs, tmp_path / "tiled.tif", tiling=TILED, output_options=FLOAT, progress=False)
    assert summary.tiles_run == 9 and pipe.reconstruction(2, 3).required_overlap == 25
    assert relative_l2(read(tmp_path / "tiled.tif"), whole_scene(pipe, inputs)) <= 1e-5


def test_tirsit_network_differs_from_the_whole_scene_by_its_tile_statistics(tmp_path) -> None:
    """With η = 0.5, eq. 1 standardises the guide features over each tile, so tiles differ from the whole scene.
    Measured: 1.27e-2 relative L2 (random weights, seed 1; the module docstring states it)."""
    inputs = make_scene(tmp_path, size=(248, 248), origin=(120, 120))
    pipe = fill_gap("random:1", task="sar2rgb", network=SMALL)
    run(pipe, inputs, tmp_path / "tiled.tif", tiling=TILED, output_options=FLOAT, progress=False)
    difference = relative_l2(read(tmp_path / "tiled.tif"), whole_scene(pipe, inputs))
    assert 5e-3 < difference < 3e-2, difference


def test_a_scene_within_one_tile_runs_whole_and_equals_the_whole_scene(tmp_path) -> None:
    inputs = make_scene(tmp_path, size=(70, 90))
    pipe = fill_gap("random:1", task="sar2rgb", network=SMALL)
    summary = run(pipe, inputs, tmp_path / "out.tif", output_options=FLOAT, progress=False)  # default tile 512
    assert summary.tiles_run == 1
    assert relative_l2(read(tmp_path / "out.tif"), whole_scene(pipe, inputs)) <= 1e-6


def test_weights_file_loads_strictly_and_matches_the_network(tmp_path) -> None:
    inputs = make_scene(tmp_path, size=(40, 48))
    net = models.build("tirsit", source_channels=2, target_channels=3, **SMALL).eval()
    torch.save(net.state_dict(), tmp_path / "tirsit.pt")
    for name, pipe in (("file.tif", fill_gap(str(tmp_path / "tirsit.pt"), task="sar2rgb", network=SMALL)),
                       ("net.tif", fill_gap(served=net, task="sar2rgb"))):
        run(pipe, inputs, tmp_path / name, output_options=FLOAT, progress=False)
    assert np.array_equal(read(tmp_path / "file.tif"), read(tmp_path / "net.tif"))


# --- bad inputs ----------------------------------------------------------------------------------------------------

def test_no_pair_is_refused(tmp_path) -> None:
    inputs = make_scene(tmp_path, pairs=1)
    with pytest.raises(ValueError, match=r"needs input\(s\) \['source_1', 'target_1'\]"):
        run(fill_gap(task="sar2rgb"), {"source": inputs["source"]}, tmp_path / "out.tif", progress=False)
    with pytest.raises(ValueError, match="at least one pair"):
        fill_gap(task="sar2rgb").plan({"source": raster_info(inputs["source"])}, Tiling())


def test_pairs_whose_targets_have_different_band_counts_are_refused(tmp_path) -> None:
    inputs = make_scene(tmp_path, task=None)
    inputs["target_2"] = write_bands(inputs["target_2"], tmp_path / "two_bands.tif", (12, 13))
    with pytest.raises(ValueError, match=r"different band counts \{'target_1': 13, 'target_2': 2\}"):
        run(fill_gap(served=zero_network), inputs, tmp_path / "out.tif", progress=False)


def test_a_pair_that_does_not_overlap_the_source_is_refused(tmp_path) -> None:
    inputs = make_scene(tmp_path, size=(64, 64), origin=(0, 0), pairs=1)
    inputs["source_2"] = crop(S1, tmp_path / "far_s1.tif", 400, 400, 64, 64)  # its true place: 400 px away
    inputs["target_2"] = crop(S2, tmp_path / "far_s2.tif", 400, 400, 64, 64)
    with pytest.raises(RasterInputError, match=r"far_s1\.tif: does not overlap the output grid"):
        run(fill_gap(served=zero_network, task="sar2rgb"), inputs, tmp_path / "out.tif", progress=False)
    assert not (tmp_path / "out.tif").exists()


def test_a_source_band_count_that_does_not_fit_the_weights_is_refused(tmp_path) -> None:
    net = models.build("tirsit", source_channels=2, target_channels=3, **SMALL)
    torch.save(net.state_dict(), tmp_path / "tirsit.pt")
    inputs = make_scene(tmp_path, task="rgb2swir", pairs=1)
    rgb = {name: write_bands(path, tmp_path / f"rgb_{name}.tif", (4, 3, 2)) for name, path in inputs.items()}
    with pytest.raises(ValueError, match=r"take\(s\) 2 source band\(s\); the inputs have 3 source band\(s\)"):
        run(fill_gap(str(tmp_path / "tirsit.pt"), network=SMALL), rgb, tmp_path / "out.tif", progress=False)
    with pytest.raises(ValueError, match=r"take\(s\) 2 source band\(s\); task 'rgb2swir' reads 3 source band\(s\)"):
        run(fill_gap(str(tmp_path / "tirsit.pt"), task="rgb2swir", network=SMALL), inputs, tmp_path / "out.tif",
            progress=False)


def test_a_pair_source_with_other_bands_than_the_source_is_refused(tmp_path) -> None:
    inputs = make_scene(tmp_path, task=None, pairs=1)
    inputs["source_1"] = write_bands(inputs["source_1"], tmp_path / "three.tif", (4, 3, 2))
    with pytest.raises(ValueError, match="'source_1' has 3 band.s. and 'source' 13"):
        run(fill_gap(served=zero_network), inputs, tmp_path / "out.tif", progress=False)


@pytest.mark.parametrize("tiling, context", [(Tiling(120, 32, "crop"), 16), (Tiling(120, 56, "cosine"), 0)])
def test_too_little_tile_context_is_refused_with_a_tiling_that_works(tmp_path, tiling, context) -> None:
    inputs = make_scene(tmp_path, size=(248, 248), origin=(120, 120), pairs=1)
    with pytest.raises(ValueError, match=f"25 pixels of context .* gives {context}. Use blend 'crop' with an overlap "
                                         "of at least 50 and a tile larger than 100"):
        run(fill_gap(task="sar2rgb", network=SMALL), inputs, tmp_path / "out.tif", tiling=tiling, progress=False)


def test_bad_pairs_and_options_are_refused(tmp_path) -> None:
    inputs = make_scene(tmp_path, pairs=2)
    infos = {name: raster_info(path) for name, path in inputs.items()}
    pipe = fill_gap(served=zero_network, task="sar2rgb")
    with pytest.raises(ValueError, match="pair 2 is incomplete: source_2 is given without target_2"):
        pipe.plan({k: v for k, v in infos.items() if k != "target_2"}, Tiling())
    with pytest.raises(ValueError, match=r"numbered 1 … n without gaps; got pairs \[1, 3\]"):
        pipe.plan({**{k: v for k, v in infos.items() if not k.endswith("_2")}, "source_3": infos["source_2"],
                   "target_3": infos["target_2"]}, Tiling())
    with pytest.raises(ValueError, match=r"at most 4 pairs\), not \['source_5', 'target_5'\]"):
        pipe.plan({**infos, "source_5": infos["source_2"], "target_5": infos["target_2"]}, Tiling())
    with pytest.raises(ValueError, match="odd positive integer, got 8"):
        fill_gap(task="sar2rgb", window=8)
    with pytest.raises(ValueError, match=r"option 'task' .* is 'sar2swir'; choose one of \('sar2rgb', 'rgb2swir'\)"):
        fill_gap(task="sar2swir")
    with pytest.raises(ValueError, match=r"overrides \['source_channels'\] are set by the task"):
        fill_gap(task="sar2rgb", network={"source_channels": 4})
