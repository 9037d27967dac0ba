"""`rsinfer fill-gap` on real Sen1Floods11 rasters with --random-weights.

As in tests/pipelines/test_fill_gap.py, each neighbour pair is a spatially shifted crop of the same chip (S1 and S2
at the same shift) written on the source crop's georeference: no real time series is bundled, so another place of the
scene stands in for another date.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from tests.pipelines.test_fill_gap import eq11_p_1, make_scene, write_bands
from tests.scene.scene_data import S1, S2, crop, gdalinfo, metadata_item

from rsinfer import models
from rsinfer.cli import fill_gap as fill_gap_cli
from rsinfer.cli import main
from rsinfer.pipelines import entry
from rsinfer.pipelines import fill_gap as fill_gap_pipeline


def pair_args(inputs: dict[str, Path]) -> list[str]:
    args = ["--source", str(inputs["source"])]
    n = 1
    while f"source_{n}" in inputs:
        args += ["--pair", str(inputs[f"source_{n}"]), str(inputs[f"target_{n}"])]
        n += 1
    return args


def test_sar2rgb_writes_the_target_on_the_source_grid_and_the_weights(tmp_path, capsys) -> None:
    inputs = make_scene(tmp_path, size=(96, 96))
    out, weights, preview = tmp_path / "T_i.tif", tmp_path / "p.tif", tmp_path / "T_i.png"
    assert main(["fill-gap", "--model", "tirsit", "--random-weights", *pair_args(inputs), "--out", str(out),
                 "--task", "sar2rgb", "--weights-out", str(weights), "--preview", str(preview)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} (fill-gap: 3 bands, 96x96" in printed and f"wrote {weights} (fill-gap: 2 bands" in printed

    info, source = gdalinfo(out), gdalinfo(inputs["source"])
    assert info["size"] == source["size"] == [96, 96] and info["geoTransform"] == source["geoTransform"]
    assert info["coordinateSystem"]["wkt"] == source["coordinateSystem"]["wkt"]
    assert [(b["type"], b["description"]) for b in info["bands"]] == [("Int16", "B4"), ("Int16", "B3"),
                                                                       ("Int16", "B2")]
    for key, value in (("RSINFER_PIPELINE", "fill-gap"), ("RSINFER_MODEL", "TIRSIT"), ("RSINFER_TASK", "sar2rgb"),
                       ("RSINFER_WEIGHTS", "random:seed=0"), ("RSINFER_WINDOW", "51"), ("RSINFER_PAIRS", "2")):
        assert metadata_item(info, "", key) == value
    with rasterio.open(out) as ds:
        values = ds.read()
    assert values.std() > 0 and (values >= 0).all() and (values <= 10000).all()  # DN = 10000 · clip(T̂_i, 0, 1)

    p_info = gdalinfo(weights)
    assert p_info["geoTransform"] == source["geoTransform"]
    assert [(b["type"], b["description"]) for b in p_info["bands"]] == [("Float32", "p_1"), ("Float32", "p_2")]
    with rasterio.open(weights) as ds:
        p = ds.read().astype(np.float64)
    p_1 = eq11_p_1(inputs, "sar2rgb", 51)  # eq. 11 with the task's s = 51, evaluated in numpy
    np.testing.assert_allclose(p, np.stack([p_1, 1 - p_1]), rtol=0, atol=2e-6)
    assert preview.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_a_task_the_band_counts_set_the_network(tmp_path) -> None:
    inputs = make_scene(tmp_path, task=None, size=(64, 72), pairs=1)  # S2 (13 bands) → its SWIR bands
    inputs["target_1"] = write_bands(inputs["target_1"], tmp_path / "swir.tif", (12, 13))
    out = tmp_path / "out.tif"
    assert main(["fill-gap", "--random-weights", "--seed", "3", *pair_args(inputs), "--out", str(out),
                 "--quiet"]) == 0
    with rasterio.open(out) as ds, rasterio.open(inputs["source"]) as source:
        assert (ds.count, ds.dtypes, ds.transform, ds.crs) == (2, ("int16", "int16"), source.transform, source.crs)
        assert ds.tags()["RSINFER_TASK"] == "none" and ds.tags()["RSINFER_WEIGHTS"] == "random:seed=3"


def bad_runs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    """Command lines that must fail, each with a piece of its error message."""
    inputs = make_scene(tmp_path, task=None, size=(64, 64), origin=(0, 0))
    (tmp_path / "sar").mkdir()
    sar = make_scene(tmp_path / "sar", size=(64, 64), origin=(0, 0), pairs=1)
    far = [crop(S1, tmp_path / "far_s1.tif", 400, 400, 64, 64), crop(S2, tmp_path / "far_s2.tif", 400, 400, 64, 64)]
    net = models.build("tirsit", source_channels=2, target_channels=3, widths=(8, 16))
    torch.save(net.state_dict(), tmp_path / "tirsit.pt")
    two_bands = write_bands(inputs["target_2"], tmp_path / "two.tif", (12, 13))
    out = ["--out", str(tmp_path / "out.tif")]
    source = ["--source", str(inputs["source"])]
    pair = ["--pair", str(inputs["source_1"]), str(inputs["target_1"])]
    return {
        "no pair": (["--random-weights", *source, *out], "give at least one --pair"),
        "target band counts differ": (["--random-weights", *source, *pair, "--pair", str(inputs["source_2"]),
                                       str(two_bands), *out], "different band counts"),
        "no overlap": (["--random-weights", *pair_args(sar), "--pair", *map(str, far), "--task", "sar2rgb", *out],
                       "far_s1.tif: does not overlap the output grid"),
        "weights do not fit": (["--weights", str(tmp_path / "tirsit.pt"), *source, *pair, *out],
                               "take(s) 2 source band(s); the inputs have 13 source band(s)"),
        "too many pairs": (["--random-weights", *source, *pair * 5, *out], "at most 4 --pair"),
        "weights-out is out": (["--random-weights", *source, *pair, *out, "--weights-out", out[1]],
                               "is the --out file"),
        "preview without visible target": (["--random-weights", *source, *pair, *out, "--preview",
                                            str(tmp_path / "p.png")], "needs --task sar2rgb"),
        "too little overlap": (["--random-weights", *pair_args(sar), "--task", "sar2rgb", "--tile", "32",
                                "--overlap", "8", *out], "93 pixels of context"),
        "no weights": ([*source, *pair, *out], "TIRSIT has no published weights"),
    }


BAD = ("no pair", "target band counts differ", "no overlap", "weights do not fit", "too many pairs",
       "weights-out is out", "preview without visible target", "too little overlap", "no weights")


@pytest.mark.parametrize("case", BAD)
def test_bad_input_fails_with_a_message(tmp_path, capsys, case) -> None:
    args, message = bad_runs(tmp_path)[case]
    assert main(["fill-gap", *args]) == (3 if case == "no overlap" else 2)
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.tif").exists()


def test_the_command_line_agrees_with_the_pipeline_without_importing_torch() -> None:
    assert fill_gap_cli.FILL_GAP_TASKS == fill_gap_pipeline.TASKS
    assert fill_gap_cli.MAX_PAIRS == fill_gap_pipeline.MAX_PAIRS
    contract = fill_gap_pipeline.FillGap
    assert entry("fill-gap").inputs == tuple(c.name for c in contract(
        fill_gap_pipeline.PipelineSpec("fill-gap", "random:0")).inputs())
    tiling = contract.default_tiling
    assert entry("fill-gap").tiling == (tiling.tile, tiling.overlap, tiling.blend, tiling.batch_size)
    loaded = subprocess.run([sys.executable, "-c", "import sys, rsinfer.cli.fill_gap; print('torch' in sys.modules)"],
                            check=True, capture_output=True, text=True).stdout.strip()
    assert loaded == "False"
