"""Finding 7, the tiling and pixel points: a tile larger than the scene shrinks to it; negative tiling flags are named
as such; no valid pixel is written as the nodata value; an all-nodata result says so; `--help` loads nothing heavy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import rasterio

from rsinfer import pipelines
from rsinfer.io import InputSpec
from rsinfer.io.writer import cast
from rsinfer.scene import run_scene
from rsinfer.scene.engine import fit_tiling
from rsinfer.tiling import Tiling

from .conftest import write_raster
from .test_outputs import _small_decloud


def test_fit_tiling_shrinks_a_tile_larger_than_the_scene_to_a_multiple() -> None:
    assert fit_tiling(Tiling(4096, 32), (100, 130)) == Tiling(130, 32)
    assert fit_tiling(Tiling(4096, 32), (100, 130), multiple=8) == Tiling(136, 32)  # 130 rounded up to 8
    assert fit_tiling(Tiling(512, 96), (50, 60), multiple=4) == Tiling(60, 28)  # overlap < 60 / 2, a multiple of 4
    assert fit_tiling(Tiling(128, 16), (100, 130)) == Tiling(128, 16)  # not larger than the scene: as asked
    assert fit_tiling(Tiling(None, 0), (100, 130)) == Tiling(None, 0)


def test_the_engine_runs_a_scene_smaller_than_the_tile_as_one_scene_sized_tile(crops, tmp_path) -> None:
    """Before: a 65536 tile over a 100 x 130 scene computed (and allocated) 65536² pixels of padding."""
    seen = []

    def half(batch):
        seen.append({name: tuple(x.shape[2:]) for name, x in batch.items()})
        return batch["s1"][:, :1] / 2

    half.input_specs = {"coarse": InputSpec(scale=0.5)}
    half.tile_multiple = 8
    summary = run_scene(half, {"s1": crops["s1"], "coarse": crops["s1"]}, tmp_path / "o.tif", tile=65536,
                        overlap=32, progress=False)
    assert seen == [{"s1": (136, 136), "coarse": (68, 68)}] and summary.tiles_run == 1
    with rasterio.open(crops["s1"]) as src, rasterio.open(tmp_path / "o.tif") as out:
        np.testing.assert_allclose(out.read(1), src.read(1) / 2, rtol=1e-6)


@pytest.mark.parametrize("flags,message", [
    (["--tile", "-5"], "--tile must not be negative, got -5"),
    (["--overlap", "-1"], "--overlap must not be negative, got -1"),
    (["--batch-size", "-2"], "--batch-size must not be negative, got -2"),
    (["--tile", "0"], "--tile must be at least 1, got 0"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--tile", "64", "--overlap", "32"], "--tile 64 --overlap 32: tile must be larger than 2 x overlap, got tile 64 "
                                          "and overlap 32 (largest overlap for this tile: 31)"),
    (["--overlap", "200"], "--overlap 200: tile must be larger than 2 x overlap, got tile 256 and overlap 200 "
                           "(largest overlap for this tile: 127)"),
])
def test_bad_tiling_flags_are_named_as_flags(crops, tmp_path, cli, flags, message) -> None:
    outcome = cli("scene", "--product", "ndwi", "--input", f"s2={crops['s2']}", "--out", tmp_path / "o.tif", *flags)
    assert outcome.status == 2 and outcome.line == f"rsinfer scene: error: {message}"


def test_a_valid_value_is_never_written_as_the_nodata_value() -> None:
    """`cast`: NaN becomes nodata; a valid value that would land on nodata moves one step away from it."""
    values = np.array([[0.2, -0.3, 0.0, np.nan, 7.6, 65535.4]], dtype=np.float32)
    assert cast(values, "uint16", 0).tolist() == [[1, 1, 1, 0, 8, 65535]]  # nodata at the bottom: upwards
    assert cast(values, "int16", 0).tolist() == [[1, -1, 1, 0, 8, 32767]]  # towards the side it came from
    assert cast(values, "uint16", 65535).tolist() == [[0, 0, 0, 65535, 8, 65534]]  # at the top: downwards
    assert cast(values, "uint8", None).tolist() == [[0, 0, 0, 0, 8, 255]]  # no nodata: nothing moves
    floats = cast(np.array([[-9999.0, 1.5, np.nan]], dtype=np.float32), "float32", -9999.0)
    assert floats[0, 0] == np.nextafter(np.float32(-9999), np.float32(np.inf)) and floats[0, 2] == -9999.0


def test_no_valid_decloud_pixel_reads_back_as_nodata(crops, tmp_path) -> None:
    """The issue's case: DN outputs clipped at 0 under the S2 nodata 0. Before, most valid pixels of a random-weight
    run had a band at 0 and read back as holes; now every pixel valid in the inputs is valid in the output."""
    out = tmp_path / "clear.tif"
    pipelines.run(_small_decloud(), {"s2": crops["s2"], "s1": crops["s1"]}, out, tiling=pipelines.Tiling(64, 16),
                  progress=False)
    with rasterio.open(crops["s2"]) as s2, rasterio.open(crops["s1"]) as s1, rasterio.open(out) as ds:
        valid = (s2.read() != s2.nodata).all(axis=0) & np.isfinite(s1.read()).all(axis=0)
        values, nodata = ds.read(), ds.nodata
    assert nodata == 0 and valid.sum() > 0.9 * valid.size
    assert not (values[:, valid] == nodata).any()
    assert (values[:, ~valid] == nodata).all()
    assert (values[:, valid] == 1).any()  # clipped values that were moved off nodata: the case exists here


def test_an_all_nodata_result_comes_with_a_warning(tmp_path, cli, caplog) -> None:
    """(The command line prints the rsinfer.scene logger's warnings on stderr; pytest captures the records.)"""
    scene = write_raster(tmp_path / "empty.tif", np.zeros((2, 40, 50), dtype=np.uint16), ("B3", "B8"), nodata=0)
    outcome = cli("scene", "--product", "ndwi", "--input", f"s2={scene}", "--out", tmp_path / "o.tif", "--quiet")
    assert outcome.status == 0
    warnings = [(r.name, r.getMessage()) for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [("rsinfer.scene", f"{tmp_path / 'o.tif'}: every tile is nodata (no pixel is valid in every "
                                          "input), so the output is entirely nodata")]
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert np.isnan(ds.read()).all()


def test_help_imports_neither_torch_nor_gdal() -> None:
    """`rsinfer --help` and `rsinfer COMMAND --help` stay under a second: nothing heavy is imported at start-up."""
    probe = ("import sys\nfrom rsinfer.cli import _COMMANDS, build_parser\nparser = build_parser()\n"
             "for argv in [['--help']] + [[c, '--help'] for c in _COMMANDS]:\n"
             "    try:\n        parser.parse_args(argv)\n    except SystemExit:\n        pass\n"
             "print(sorted(m for m in ('torch', 'rasterio', 'numpy', 'onnxruntime') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.splitlines()[-1] == "[]"
