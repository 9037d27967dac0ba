"""K stochastic draws per scene (`rsinfer.pipelines.uncertainty`): the output is their per-pixel mean, the uncertainty
map their per-band standard deviation, both equal to K separate runs (seeds seed … seed + K − 1) combined with numpy;
K = 1 is the plain run; a deterministic sampler is refused; the two rasters appear together or not at all."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pytest
import rasterio
import torch
from rasterio.windows import Window as RioWindow

from rsinfer.errors import InputDataError, OutputExistsError, UsageError
from rsinfer.models.dbcr import build
from rsinfer.pipelines import OutputOptions, PipelineSpec, Tiling, run
from rsinfer.pipelines import build as build_pipeline
from rsinfer.pipelines.bands import BandRule, resolve_bands
from rsinfer.pipelines.contract import InputContract, OutputContract, ScenePipeline, ScenePlan
from rsinfer.pipelines.copgen import CopGenBeta
from rsinfer.pipelines.dbcr import DbCr, SamplingPlan
from rsinfer.pipelines.decloud import Decloud
from rsinfer.pipelines.translate import Translate
from rsinfer.pipelines.uncertainty import stack_draws
from rsinfer.tiling import Window, grid_noise, plan_windows
from tests.pipelines.copgen_standin import StandInCopGen, StandInVAE

MICRO = dict(widths=(4, 8, 16, 32), encoder_blocks=(1, 1, 1, 1), decoder_blocks=(1, 1, 1, 1), time_dim=8,
             time_pe_dim=8)
S2_NAME, S1_NAME = "Spain_7370579_S2Hand.tif", "Spain_7370579_S1Hand.tif"
FLOAT = OutputOptions(dtype="float32")


def _crop(source, target, window: RioWindow, bands=None, nodata_corner: int = 0):
    """`window` of `source` (its `bands`, 1-based) as a GeoTIFF; the top-left `nodata_corner` pixels set to nodata."""
    with rasterio.open(source) as src:
        values = src.read(bands, window=window)
        if nodata_corner:
            values[:, :nodata_corner, :nodata_corner] = src.nodata
        profile = {**src.profile, "count": values.shape[0], "height": window.height, "width": window.width,
                   "transform": src.window_transform(window)}
        with rasterio.open(target, "w", **profile) as dst:
            dst.write(values)
            dst.descriptions = tuple(src.descriptions[b - 1] for b in (bands or range(1, src.count + 1)))
    return target


@pytest.fixture
def chip(data_dir, tmp_path):
    """A crop of 90 rows × 100 columns of the Sen1Floods11 chip (S2 with a 6 × 6 nodata corner, S1): sizes that are
    not multiples of the tiles."""
    window = RioWindow(200, 300, 100, 90)  # col_off, row_off, width, height
    folder = tmp_path / "inputs"
    folder.mkdir()
    return {"s2": _crop(data_dir / "sen1floods11" / S2_NAME, folder / "s2.tif", window, nodata_corner=6),
            "s1": _crop(data_dir / "sen1floods11" / S1_NAME, folder / "s1.tif", window)}


def _read(path) -> tuple[np.ndarray, dict[str, str], tuple]:
    with rasterio.open(path) as src:
        return src.read(masked=True).astype(np.float64).filled(np.nan), src.tags(), (src.crs, src.transform,
                                                                                      src.shape, src.descriptions)


# --- a network-free stochastic pipeline: the statistics against a hand computation --------------------------------

@dataclass(frozen=True)
class NoisyCopyOptions:
    samples: int = 1
    seed: int = 0
    sigma: float = 40.0
    broken_draw: int | None = None  # this draw returns NaN everywhere (a broken network)
    broken_preview: bool = False  # the preview fails after both rasters are written


class NoisyCopy(ScenePipeline):
    """Draw k = the input + σ·(grid-anchored noise of seed + k): the same at a pixel whatever tile computes it."""

    name = "noisy-copy"
    model = "test"
    Options = NoisyCopyOptions
    has_networks = False

    def inputs(self) -> tuple[InputContract, ...]:
        return (InputContract("image", "three bands", BandRule.count_only(3)),)

    def plan(self, rasters, tiling: Tiling) -> ScenePlan:
        o = self.options
        image = resolve_bands(self.inputs()[0].bands, rasters["image"], "image")

        def tile_fn(tiles) -> torch.Tensor:
            x = tiles.inputs["image"]

            def draw(k: int) -> torch.Tensor:
                noise = torch.stack([grid_noise(o.seed + k, "noisy-copy", 0, Window(w.row, w.col, *tiles.shape), 3)
                                     for w in tiles.windows])
                out = x + o.sigma * noise
                return torch.full_like(out, float("nan")) if k == o.broken_draw else out

            return stack_draws(draw, o.samples)

        return ScenePlan(tile_fn, "image", {"image": image.indexes}, OutputContract(("red", "green", "blue"), "int16"),
                         samples=o.samples)

    def preview(self, output: str, plan: ScenePlan) -> torch.Tensor:
        if self.options.broken_preview:
            raise OSError("the preview broke")
        return torch.zeros(3, 4, 4, dtype=torch.uint8)


def _noisy_copy(**options) -> NoisyCopy:
    return NoisyCopy(PipelineSpec("noisy-copy", "none", options))


def test_mean_and_std_match_a_hand_computation_for_any_tiling(chip, tmp_path) -> None:
    """Draw k of every pixel is known in closed form here, so mean and std (ddof=1) are computed independently with
    numpy over the whole grid; tiles with overlap and different batch sizes must give exactly that."""
    rgb = _crop(chip["s2"], tmp_path / "rgb.tif", RioWindow(0, 0, 100, 90), bands=[4, 3, 2], nodata_corner=6)
    seed, samples, sigma = 11, 4, 40.0
    with rasterio.open(rgb) as src:
        x = src.read().astype(np.float64)
        invalid = (src.read() == src.nodata).all(axis=0)
    draws = np.stack([x + sigma * grid_noise(seed + k, "noisy-copy", 0, Window(0, 0, 90, 100), 3).double().numpy()
                      for k in range(samples)])
    mean, std = draws.mean(axis=0), draws.std(axis=0, ddof=1)
    mean[:, invalid] = np.nan
    std[:, invalid] = np.nan

    outputs = []
    for name, tiling in (("a", Tiling(32, 8, "cosine", 1)), ("b", Tiling(32, 8, "cosine", 5)),
                         ("c", Tiling(64, 0, "constant", 2))):
        summary = run(_noisy_copy(samples=samples, seed=seed, sigma=sigma), {"image": rgb}, tmp_path / f"{name}.tif",
                      tiling=tiling, output_options=FLOAT, uncertainty=tmp_path / f"{name}_std.tif", progress=False)
        assert summary.shape == (3, 90, 100) and summary.path == tmp_path / f"{name}.tif"
        got_mean, mean_tags, mean_grid = _read(tmp_path / f"{name}.tif")
        got_std, std_tags, std_grid = _read(tmp_path / f"{name}_std.tif")
        np.testing.assert_allclose(got_mean, mean, rtol=1e-6, atol=1e-3)
        np.testing.assert_allclose(got_std, std, rtol=1e-5, atol=1e-3)
        assert mean_grid == std_grid and mean_grid[3] == ("red", "green", "blue")
        assert mean_tags["RSINFER_SAMPLES"] == std_tags["RSINFER_SAMPLES"] == str(samples)
        assert mean_tags["RSINFER_STATISTIC"].startswith("mean") and "ddof=1" in std_tags["RSINFER_STATISTIC"]
        assert mean_tags["RSINFER_UNCERTAINTY"] == f"{name}_std.tif" and std_tags["RSINFER_MEAN"] == f"{name}.tif"
        assert mean_tags["RSINFER_PIPELINE"] == std_tags["RSINFER_PIPELINE"] == "noisy-copy"
        outputs.append(got_mean)
    np.testing.assert_array_equal(outputs[0], outputs[1])  # the batch size changes nothing, bit for bit
    assert sorted(os.listdir(tmp_path)) == sorted(["inputs", "rgb.tif"] + [f"{n}{s}.tif" for n in "abc"
                                                                           for s in ("", "_std")])

    # The default output dtype (the plan's int16) rounds the mean; the uncertainty map stays float32.
    run(_noisy_copy(samples=samples, seed=seed, sigma=sigma), {"image": rgb}, tmp_path / "int.tif",
        uncertainty=tmp_path / "int_std.tif", progress=False)
    with rasterio.open(tmp_path / "int.tif") as src, rasterio.open(tmp_path / "int_std.tif") as unc:
        assert src.dtypes == ("int16",) * 3 and unc.dtypes == ("float32",) * 3 and np.isnan(unc.nodata)
        written = src.read(masked=True)
    np.testing.assert_array_equal(written.mask[0], invalid)
    assert np.abs(written.filled(0)[:, ~invalid] - mean[:, ~invalid]).max() <= 0.5 + 1e-3


def test_both_rasters_or_neither(chip, tmp_path) -> None:
    rgb = _crop(chip["s2"], tmp_path / "rgb.tif", RioWindow(0, 0, 100, 90), bands=[4, 3, 2])
    before = sorted(os.listdir(tmp_path))
    mean, std, png = tmp_path / "mean.tif", tmp_path / "std.tif", tmp_path / "mean.png"
    with pytest.raises(InputDataError, match="NaN or Inf"):  # the third draw breaks while tiles run
        run(_noisy_copy(samples=3, broken_draw=2), {"image": rgb}, mean, uncertainty=std, preview=png,
            tiling=Tiling(32, 8), progress=False)
    assert sorted(os.listdir(tmp_path)) == before  # no output, no temporary file
    with pytest.raises(OSError, match="the preview broke"):  # after both rasters were written
        run(_noisy_copy(samples=3, broken_preview=True), {"image": rgb}, mean, uncertainty=std, preview=png,
            progress=False)
    assert sorted(os.listdir(tmp_path)) == before

    run(_noisy_copy(samples=3), {"image": rgb}, mean, uncertainty=std, progress=False)
    first = std.read_bytes()
    with pytest.raises(OutputExistsError):  # an existing uncertainty map is refused before any work
        run(_noisy_copy(samples=3, seed=1), {"image": rgb}, tmp_path / "other.tif", uncertainty=std, progress=False)
    assert std.read_bytes() == first and not (tmp_path / "other.tif").exists()
    with pytest.raises(UsageError, match="uncertainty"):
        run(_noisy_copy(samples=3), {"image": rgb}, mean, uncertainty=mean, output_options=OutputOptions(
            overwrite=True), progress=False)
    with pytest.raises(UsageError, match="'ndwi' draws no samples, so it has no uncertainty map"):
        run(build_pipeline(PipelineSpec("ndwi")), {"s2": chip["s2"]}, tmp_path / "ndwi.tif",
            uncertainty=tmp_path / "ndwi_std.tif", progress=False)
    with pytest.raises(UsageError, match="samples=1"):  # one draw has no standard deviation
        run(_noisy_copy(), {"image": rgb}, tmp_path / "one.tif", uncertainty=tmp_path / "one_std.tif", progress=False)
    assert not any((tmp_path / name).exists() for name in ("one.tif", "one_std.tif", "ndwi.tif", "ndwi_std.tif"))


# --- decloud: K draws of DB-CR ---------------------------------------------------------------------------------------

def _decloud(sampler: str = "i2sb", seed: int = 0, samples: int = 1, eta: float = 0.0) -> Decloud:
    with torch.random.fork_rng():
        torch.manual_seed(3)
        net = build(**MICRO).eval()
    with torch.no_grad():  # a head that is not zero, so the network changes the bridge state
        net.head.bias.add_(0.01)
    return Decloud.around(DbCr(net, SamplingPlan(sampler, 2, eta, seed), tile=64, batch_size=3), samples=samples)


def test_decloud_draws_equal_separate_runs_combined_with_numpy(chip, tmp_path) -> None:
    tiling = Tiling(64, 16, "cosine", 3)
    separate = np.stack([_read(run(_decloud(seed=5 + k), chip, tmp_path / f"seed{5 + k}.tif", tiling=tiling,
                                   output_options=FLOAT, progress=False).path)[0] for k in range(3)])
    summary = run(_decloud(seed=5, samples=3), chip, tmp_path / "mean.tif", tiling=tiling, output_options=FLOAT,
                  uncertainty=tmp_path / "std.tif", progress=False)
    assert summary.shape == (13, 90, 100) and summary.tiles_run == len(plan_windows(90, 100, 64, 16))
    mean, tags, _ = _read(tmp_path / "mean.tif")
    std, _, _ = _read(tmp_path / "std.tif")
    np.testing.assert_allclose(mean, separate.mean(axis=0), rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(std, separate.std(axis=0, ddof=1), rtol=1e-5, atol=1e-3)
    valid = np.isfinite(mean[0])
    assert 0.99 < valid.mean() < 1 and (std[:, valid] > 1).mean() > 0.5  # the draws differ: i2sb is stochastic
    assert tags["RSINFER_SAMPLES"] == "3" and tags["RSINFER_SEED"] == "5" and tags["RSINFER_SAMPLER"] == "i2sb"


def test_one_draw_is_the_plain_run(chip, tmp_path) -> None:
    options = {"sampler": "i2sb", "steps": 2, "seed": 4, "network": MICRO}
    paths = []
    for name, spec in (("plain", PipelineSpec("decloud", "random:1", options)),
                       ("one", PipelineSpec("decloud", "random:1", {**options, "samples": 1}))):
        paths.append(run(build_pipeline(spec), chip, tmp_path / f"{name}.tif", tiling=Tiling(64, 16),
                         progress=False).path)
    (plain, tags, _), (one, one_tags, _) = _read(paths[0]), _read(paths[1])
    np.testing.assert_array_equal(plain, one)
    assert "RSINFER_SAMPLES" not in tags and "RSINFER_SAMPLES" not in one_tags


@pytest.mark.parametrize("sampler", ["alpha-ratio", "i2sb-ode"])
def test_several_draws_need_a_stochastic_sampler(sampler: str) -> None:
    def spec(**options) -> PipelineSpec:
        return PipelineSpec("decloud", "random:0", {"steps": 3, "network": MICRO, **options})

    with pytest.raises(UsageError, match=f"samples=4 draws need a stochastic sampler.*sampler='{sampler}' is "
                                         "deterministic"):
        build_pipeline(spec(sampler=sampler, samples=4))
    build_pipeline(spec(sampler=sampler, samples=1))
    for stochastic in ("i2sb", "dbim"):  # dbim draws noise at its booting step, and at every step with eta > 0
        with pytest.raises(UsageError, match=f"samples=2 draws need at least 2 sampler steps: with steps=1 the "
                                             f"{stochastic} sampler"):
            build_pipeline(spec(sampler=stochastic, steps=1, samples=2))
        build_pipeline(spec(sampler=stochastic, samples=2))
    build_pipeline(spec(sampler="dbim", eta=0.5, samples=2))


@pytest.mark.parametrize("samples", [0, -2, 65, 2.0, True, "3"])
def test_the_number_of_draws_is_checked(samples) -> None:
    with pytest.raises(UsageError, match=r"samples=.*integer in 1\.\.64"):
        build_pipeline(PipelineSpec("decloud", "random:0", {"sampler": "i2sb", "samples": samples,
                                                            "network": MICRO}))


# --- translate: K seeds of COP-GEN-Beta -------------------------------------------------------------------------------

def test_translate_draws_equal_separate_seeds(data_dir, tmp_path) -> None:
    s1 = _crop(data_dir / "sen1floods11" / S1_NAME, tmp_path / "s1.tif", RioWindow(64, 128, 96, 64))
    copgen = CopGenBeta(StandInCopGen(), StandInVAE())

    def translate(seed: int, samples: int = 1) -> Translate:
        return Translate.around(copgen, target="s2_l2a", steps=2, sampler="unipc", seed=seed, samples=samples)

    separate = np.stack([_read(run(translate(seed), {"s1_rtc": s1}, tmp_path / f"seed{seed}.tif",
                                   progress=False).path)[0] for seed in (7, 8, 9)])
    run(translate(7, samples=3), {"s1_rtc": s1}, tmp_path / "mean.tif", output_options=FLOAT,
        uncertainty=tmp_path / "std.tif", progress=False)
    mean, tags, grid = _read(tmp_path / "mean.tif")
    std, _, _ = _read(tmp_path / "std.tif")
    np.testing.assert_allclose(mean, separate.mean(axis=0), rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(std, separate.std(axis=0, ddof=1), rtol=1e-6, atol=1e-4)
    assert (std > 0).mean() > 0.5  # different seeds give different renderings
    assert grid[2] == (64, 96) and tags["RSINFER_SAMPLES"] == "3" and tags["RSINFER_TARGET"] == "s2_l2a"
