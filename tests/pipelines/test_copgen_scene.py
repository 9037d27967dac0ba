"""Scene-scale COP-GEN-Beta: MultiDiffusion per-step fusion, the per-tile mode, and a real-raster run."""

from __future__ import annotations

import tarfile

import pytest
import rasterio
import torch
from tests.pipelines.copgen_standin import StandInCopGen, StandInVAE

from rsinfer.pipelines.copgen import CopGenBeta
from rsinfer.pipelines import run
from rsinfer.pipelines.copgen_scene import (LATENT_TILING, LatentTiling, render_input, translate_images,
                                            translate_latents)
from rsinfer.pipelines.translate import Translate
from rsinfer.samplers.dpm_solver_2m import dpm_solver_2m_step
from rsinfer.samplers.vp_schedule import time_grid
from rsinfer.tiling import Tiling, blend_tiles, plan_windows, tile_weights


def _condition(height: int, width: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(1, 4, height, width, generator=g) for name in ("s1_rtc", "dem")}


def test_per_step_fusion_is_multidiffusion() -> None:
    """Blending eps at every call equals MultiDiffusion: every tile steps its own crop (with its own solver history)
    and the tiles' new states are blended into the canvas after every step."""
    height, width, tiling = 27, 38, Tiling(16, 5, "cosine", 3)
    pipe = CopGenBeta(StandInCopGen(), ignored="official-noise-t0")  # every modality given: no random draws inside
    condition = {**_condition(height, width), "s2_l1c": _condition(height, width, 1)["dem"]}
    fused = translate_latents(pipe, condition, "s2_l2a", 4, "dpm-solver++2m", tiling, torch.Generator().manual_seed(3))

    windows = plan_windows(height, width, tiling.tile, tiling.overlap)
    weights = [tile_weights(w, height, width, tiling.overlap, "cosine") for w in windows]
    x = pipe.initial_noise(["s2_l2a"], (1, 4, height, width), None, torch.Generator().manual_seed(3))
    grid = time_grid(pipe.schedule, 4, "logSNR")
    histories = [() for _ in windows]
    for i in range(4):
        tiles = []
        for k, w in enumerate(windows):
            crop = (..., slice(w.row, w.bottom), slice(w.col, w.right))
            eps = pipe.eps_model({n: z[crop] for n, z in condition.items()}, ["s2_l2a"], None)
            tile, histories[k] = dpm_solver_2m_step(eps, x[crop], pipe.schedule, grid[i], grid[i + 1], histories[k],
                                                    order=1 if i == 3 else 2)
            tiles.append(tile[0, 0])
        x = blend_tiles(torch.stack(tiles), windows, height, width, weights)[None, None]
    torch.testing.assert_close(fused, x[:, 0], rtol=1e-5, atol=1e-5)


def test_one_tile_equals_plain_sampling() -> None:
    pipe = CopGenBeta(StandInCopGen())
    condition = _condition(20, 20)
    tiled = translate_latents(pipe, condition, "s2_l2a", 5, "unipc", Tiling(20, 0),
                              torch.Generator().manual_seed(4))
    plain = pipe.sample_latents(condition, ["s2_l2a"], 5, "unipc", generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(tiled, plain["s2_l2a"], rtol=1e-6, atol=1e-6)


def test_per_tile_mode_samples_tiles_independently() -> None:
    """Without overlap, per-tile output is each tile sampled alone from its crop of the same initial noise."""
    pipe = CopGenBeta(StandInCopGen(), ignored="official-noise-t0")
    condition = {**_condition(16, 24), "s2_l1c": _condition(16, 24, 2)["dem"]}
    out = translate_latents(pipe, condition, "s2_l2a", 3, "dpm-solver++3s", Tiling(8, 0),
                            torch.Generator().manual_seed(5), fusion="per-tile")
    noise = pipe.initial_noise(["s2_l2a"], (1, 4, 16, 24), None, torch.Generator().manual_seed(5))
    for w in plan_windows(16, 24, 8, 0):
        crop = (..., slice(w.row, w.bottom), slice(w.col, w.right))
        alone = pipe.sample_latents({n: z[crop] for n, z in condition.items()}, ["s2_l2a"], 3, "dpm-solver++3s",
                                    initial_noise={"s2_l2a": noise[:, 0][crop]})
        torch.testing.assert_close(out[crop], alone["s2_l2a"], rtol=1e-6, atol=1e-6)


def test_batching_of_latent_tiles_changes_nothing() -> None:
    """The ignored-modality noise is drawn on the whole canvas: any number of tiles per network call, the same latent
    (up to the last bits the network's GEMMs round differently at other batch sizes; a batch-dependent draw would
    change it by O(1))."""
    pipe = CopGenBeta(StandInCopGen())  # dem and s2_l1c are ignored: noise at every call
    condition = _condition(40, 52)
    results = [translate_latents(pipe, condition, "s2_l2a", 3, "unipc", Tiling(32, 12, "cosine", batch),
                                 torch.Generator().manual_seed(6)) for batch in (1, 2, 16)]
    for other in results[1:]:
        torch.testing.assert_close(other, results[0], rtol=1e-5, atol=1e-5)


def test_bad_tiling_raises(monkeypatch) -> None:
    from rsinfer.engines import base

    monkeypatch.setattr(base, "_warned", set())
    with pytest.raises(ValueError, match="unknown fusion 'seams'"):
        translate_latents(CopGenBeta(StandInCopGen()), _condition(40, 40), "s2_l2a", 2, "unipc", fusion="seams")
    with pytest.raises(ValueError, match="overlap"):
        LatentTiling(tile=32, overlap=16)
    with pytest.warns(DeprecationWarning, match="LatentTiling"):  # the old value object still works, once warned
        old = translate_latents(CopGenBeta(StandInCopGen()), _condition(32, 32), "s2_l2a", 2, "unipc",
                                LatentTiling(tile=32, overlap=0), torch.Generator().manual_seed(1))
    new = translate_latents(CopGenBeta(StandInCopGen()), _condition(32, 32), "s2_l2a", 2, "unipc", Tiling(32, 0),
                            torch.Generator().manual_seed(1))
    assert torch.equal(old, new)
    with pytest.raises(ValueError, match="H, W ≥ 32"):
        translate_latents(CopGenBeta(StandInCopGen()), _condition(20, 40), "s2_l2a", 2, "unipc")


def test_scene_on_real_s1_raster(data_dir, tmp_path) -> None:
    """The Sen1Floods11 S1 chip (512², VV/VH dB) → an S2 L2A rendering on exactly the input grid."""
    s1 = data_dir / "sen1floods11" / "Spain_7370579_S1Hand.tif"
    pipe = CopGenBeta(StandInCopGen(), StandInVAE())
    out, preview = tmp_path / "s2.tif", tmp_path / "s2.png"
    run(Translate.around(pipe, target="s2_l2a", steps=3, sampler="unipc", seed=7), {"s1_rtc": s1}, out,
        preview=preview, progress=False)
    with rasterio.open(s1) as src, rasterio.open(out) as dst:
        assert (dst.crs, dst.transform, dst.shape) == (src.crs, src.transform, src.shape)
        assert dst.count == 3 and dst.dtypes[0] == "uint8" and dst.nodata == 0
        assert dst.tags()["RSINFER_PIPELINE"] == "translate" and dst.tags()["RSINFER_TARGET"] == "s2_l2a"
        assert dst.descriptions[0].startswith("S2 L2A true-colour thumbnail rendering")
        written = torch.from_numpy(dst.read())
        vv_vh = torch.from_numpy(src.read())
    # The written bands are the pipeline's own image, quantised, recomputed here from the same inputs and seed.
    rendering = render_input("s1_rtc", vv_vh, torch.ones(512, 512, dtype=torch.bool))
    image = translate_images(pipe, {"s1_rtc": rendering}, "s2_l2a", 3, "unipc", LATENT_TILING,
                             torch.Generator().manual_seed(7))
    expected = torch.round(image * 255).clamp(1, 255).to(torch.uint8)
    assert torch.equal(written, expected)
    assert written.float().std() > 1  # not a constant image
    png = preview.read_bytes()
    assert png.startswith(b"\x89PNG") and b"tEXtRSINFER_PIPELINE\x00translate" in png


def _bigearthnet_s1_patch(data_dir, patch: str = "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48") -> torch.Tensor:
    """VV, VH (dB) of one BigEarthNet-S1 example patch, (2, 120, 120), read from the bundled archive."""
    with tarfile.open(data_dir / "bigearthnet" / "BigEarthNet-S1-Example.tar.bz2") as archive:
        bands = []
        for polarisation in ("VV", "VH"):
            data = archive.extractfile(f"BigEarthNet-S1-Example/{patch}/{patch}_{polarisation}.tif").read()
            with rasterio.MemoryFile(data) as memory, memory.open() as src:
                bands.append(torch.from_numpy(src.read(1)))
    return torch.stack(bands)


def test_scene_with_too_small_latent_is_padded(data_dir) -> None:
    """A BigEarthNet-S1 patch (120 × 120 at 10 m), cut to 120 × 100, is padded to the network's 256 pixels and
    cropped back."""
    pipe = CopGenBeta(StandInCopGen(), StandInVAE())
    vv_vh = _bigearthnet_s1_patch(data_dir)[:, :, :100]
    rendering = render_input("s1_rtc", vv_vh, torch.isfinite(vv_vh).all(dim=0))
    image = translate_images(pipe, {"s1_rtc": rendering}, "dem", 2, "unipc", generator=torch.Generator().manual_seed(0))
    assert image.shape == (3, 120, 100) and torch.isfinite(image).all()
    assert 0 <= float(image.min()) and float(image.max()) <= 1 and float(image.std()) > 0.01
