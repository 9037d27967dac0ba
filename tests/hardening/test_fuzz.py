"""Acceptance: a property test over the argument space of `rsinfer scene` and `rsinfer decloud` on tiny inputs.

Every outcome is a success (the output exists), or one error line with a documented exit status (docs/errors.md:
2, 3, 4; argparse's usage errors print their usage first), never a traceback and never status 1 (a bug); a failed
run leaves no file and no temporary file, and never touches an earlier output. Examples are derandomized, so a run is
reproducible; decloud keeps to 32/64-pixel tiles and at most 2 steps on a 40 x 50 crop.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.scene.scene_data import S1, S2, crop

from rsinfer.pipelines.vocabulary import BLEND_MODES, BRIDGE_SAMPLERS, S1_SCALES

from .conftest import hidden_files, truncated_geotiff, write_raster

FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
DOCUMENTED = {0, 2, 3, 4}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Inputs good and bad, shared by all examples (never written: outputs go to a folder per example)."""
    folder = tmp_path_factory.mktemp("inputs")
    reflectances = np.random.default_rng(0).integers(1, 10000, (3, 50, 50), dtype=np.uint16)
    return {"b348": write_raster(folder / "b348.tif", reflectances, ("B3", "B4", "B8")),
            "s2": crop(S2, folder / "s2.tif", 100, 150, 40, 50),
            "s1": crop(S1, folder / "s1.tif", 100, 150, 40, 50), "cut": truncated_geotiff(folder / "cut.tif"),
            "notes": _text(folder / "notes.tif"), "missing": folder / "missing.tif",
            "nocrs": _no_crs(folder / "nocrs.tif"), "empty": write_raster(
                folder / "empty.tif", np.zeros((3, 30, 30), dtype=np.uint16), ("B3", "B4", "B8"), nodata=0)}


def _text(path: Path) -> Path:
    path.write_text("not a raster\n")
    return path


def _no_crs(path: Path) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=2, dtype="uint16") as dst:
        dst.write(np.ones((2, 8, 8), dtype=np.uint16))
    return path


def _output(kind: str, folder: Path, an_input: Path) -> Path:
    """Where --out points: a new file, an earlier output, a missing directory, an input, a directory, a link."""
    if kind == "existing":
        (folder / "o.tif").write_bytes(b"earlier output")
    elif kind == "directory":
        (folder / "o.tif").mkdir()
    elif kind == "link":
        (folder / "o.tif").symlink_to(an_input)
    return {"missing-dir": folder / "no" / "o.tif", "input": an_input}.get(kind, folder / "o.tif")


def _check(outcome, out: Path, folder: Path, kind: str, fault: str) -> None:
    err = outcome.err
    assert "Traceback" not in "\n".join(err), "\n".join(err)
    assert outcome.status in DOCUMENTED, err
    command_lines = [line for line in err if not line.startswith(("usage:", " ")) and ": warning: " not in line
                     and not line.startswith("WARNING ")]
    if fault == "none":  # a valid command succeeds
        assert outcome.status == 0 and out.is_file() and not command_lines, err
    else:  # a faulty one fails with one line (argparse prints its usage first)
        assert outcome.status in DOCUMENTED - {0} and len(command_lines) == 1, err
        assert command_lines[0].startswith("rsinfer ") and ": error: " in command_lines[0], err
        if kind == "new":
            assert not out.exists()
    if kind == "existing" and outcome.status != 0:
        assert (folder / "o.tif").read_bytes() == b"earlier output"
    assert hidden_files(folder) == []


FAULTS = {  # one fault per example at most: the flag (or input, or output) it breaks, and how
    "scene": {"--tile": ["-5", "0"], "--overlap": ["-1", "40"], "--batch-size": ["-1", "0"], "--blend": ["bogus"],
              "--dtype": ["float16", "uint8", "int16"], "input": ["s1", "cut", "notes", "missing", "nocrs"],
              "out": ["existing", "missing-dir", "input", "directory", "link"]},
    "decloud": {"--steps": ["0", "51"], "--seed": [str(2**64), "x"], "--eta": ["1.5", "-1.0"], "--tile": ["-3"],
                "--overlap": ["40"], "--s2": ["s1", "cut"], "--s1": ["s2"], "--weights": ["missing", "notes"],
                "--preview": ["p.jpg", "directory.png"], "out": ["existing", "missing-dir", "input"]},
}


@st.composite
def faults(draw, command: str) -> tuple[str, str]:
    """("none", "") three times in four, else (what is broken, how)."""
    if draw(st.integers(0, 3)) > 0:
        return "none", ""
    where = draw(st.sampled_from(sorted(FAULTS[command])))
    return where, draw(st.sampled_from(FAULTS[command][where]))


def _tiling(draw, tiles: list[int]) -> list[str]:
    """Valid --tile/--overlap (a tile of 32 or less needs an overlap below half of it) and --batch-size."""
    tile = draw(st.sampled_from([None, *tiles]))  # the defaults' overlap is 32: smaller tiles name theirs
    overlaps = [None, 0, 8, 16] if tile is None or tile > 64 else [0, 8, 16] if tile > 32 else [0, 8]
    overlap, batch = draw(st.sampled_from(overlaps)), draw(st.sampled_from([None, 1, 3]))
    return [item for flag, value in (("--tile", tile), ("--overlap", overlap), ("--batch-size", batch))
            if value is not None for item in (flag, str(value))]


def _replace(args: list[str], flag: str, value: str) -> list[str]:
    if flag in args:
        args = list(args)
        args[args.index(flag) + 1] = value
        return args
    return [*args, flag, value]


def _example(data, command: str, tmp_path: Path):
    """The draw function, the fault (or "none") and its value, and a fresh output folder for one example."""
    fault, bad = data.draw(faults(command))
    return data.draw, fault, bad, Path(tempfile.mkdtemp(dir=tmp_path))


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_scene_arguments(files, tmp_path, cli, data) -> None:
    draw, fault, bad, folder = _example(data, "scene", tmp_path)
    source = bad if fault == "input" else draw(st.sampled_from(["b348", "b348", "s2", "empty"]))
    kind = bad if fault == "out" else draw(st.sampled_from(["new", "new", "existing"]))
    out = _output(kind, folder, files[source])
    args = ["scene", "--product", draw(st.sampled_from(["ndwi", "ndvi"])), "--input", f"s2={files[source]}", "--out",
            str(out), "--quiet", *_tiling(draw, [17, 64, 65536])]
    for flag, values in (("--blend", BLEND_MODES), ("--dtype", ["float32", "float64"])):
        value = draw(st.sampled_from([None, *values]))
        args += [flag, value] if value is not None else []
    overwrite = fault != "out" and (kind == "existing" or draw(st.booleans()))  # the fault: existing, no overwrite
    args += ["--cog"] * draw(st.booleans()) + ["--overwrite"] * overwrite
    if fault.startswith("--"):
        args = _replace(args, fault, bad)
        if fault == "--overlap":
            args = _replace(args, "--tile", "64")
    _check(cli(*args), out, folder, kind, fault)


@settings(FUZZ, max_examples=30)
@given(data=st.data())
def test_decloud_arguments(files, tmp_path, cli, data) -> None:
    draw, fault, bad, folder = _example(data, "decloud", tmp_path)
    s2 = bad if fault == "--s2" else "s2"
    kind = bad if fault == "out" else "new"
    out = _output(kind, folder, files[s2])
    sampler = draw(st.sampled_from(BRIDGE_SAMPLERS))
    args = ["decloud", "--s2", str(files[s2]), "--s1", str(files[bad if fault == "--s1" else "s1"]), "--out",
            str(out), "--quiet", "--sampler", sampler, "--seed", str(draw(st.sampled_from([0, 7, -1, 2**64 - 1]))),
            "--precision", draw(st.sampled_from(["float32", "float32", "bfloat16"])),
            "--s1-scale", draw(st.sampled_from(S1_SCALES)), *_tiling(draw, [32, 64, 65536])]
    args += ["--steps", str(draw(st.sampled_from([1, 2])))] if draw(st.booleans()) else []
    args += ["--eta", "0.5"] if sampler == "dbim" and draw(st.booleans()) else []
    args += ["--cog"] * draw(st.booleans())
    preview = bad if fault == "--preview" else draw(st.sampled_from([None, "p.png"]))
    if preview == "directory.png":
        (folder / preview).mkdir()
    args += ["--preview", str(folder / preview)] if preview else []
    args += ["--weights", str(files[bad])] if fault == "--weights" else ["--random-weights"]
    if fault in ("--steps", "--seed", "--eta", "--tile", "--overlap"):
        args = _replace(args, fault, bad)
    outcome = cli(*args)
    _check(outcome, out, folder, kind, fault)
    if outcome.status == 0 and preview:
        assert (folder / preview).is_file()
