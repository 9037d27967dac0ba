"""Finding 2: SIGTERM and SIGHUP are handled like Ctrl-C (temporary files removed, an earlier output kept, exit
128 + signal with one line), and Ctrl-C during the COG conversion stops it at once instead of after it.

Each test runs `.venv/bin/rsinfer` as a real process, waits until its temporary output file exists (so the signal
lands mid-write), sends the signal and checks what is left in the output folder.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from tests.scene.scene_data import S1, S2, crop

from .conftest import green_nir, hidden_files, rsinfer_process

WAIT_S = 300  # for the temporary file to appear: generous, the machine may be busy


def _signal_when_written(process: subprocess.Popen, folder: Path, suffix: str, signum: int) -> tuple[int, list[str]]:
    """Send `signum` once a hidden file ending in `suffix` exists in `folder`; the exit status and stderr lines."""
    deadline = time.monotonic() + WAIT_S
    while not any(name.endswith(suffix) for name in hidden_files(folder)):
        assert process.poll() is None, f"finished before writing a {suffix} file: {process.stderr.read()}"
        assert time.monotonic() < deadline, f"no {suffix} file after {WAIT_S} s"
        time.sleep(0.01)
    process.send_signal(signum)
    _, err = process.communicate(timeout=WAIT_S)
    return process.returncode, [line for line in err.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def big_scene(tmp_path_factory) -> Path:
    """3000 x 3000 random B3, B8: a few seconds of ndwi tiles and about a second of COG conversion."""
    return green_nir(tmp_path_factory.mktemp("big") / "b3b8.tif", 3000, compress="zstd", tiled=True)


def test_sigterm_mid_write_removes_the_temporary_files_and_keeps_the_earlier_output(tmp_path) -> None:
    s2 = crop(S2, tmp_path / "s2.tif", 0, 0, 512, 512)
    s1 = crop(S1, tmp_path / "s1.tif", 0, 0, 512, 512)
    out = tmp_path / "out"
    out.mkdir()
    (out / "clear.tif").write_bytes(b"earlier raster")
    (out / "clear.png").write_bytes(b"earlier preview")
    process = rsinfer_process(["decloud", "--s2", s2, "--s1", s1, "--out", "clear.tif", "--preview", "clear.png",
                               "--random-weights", "--tile", "32", "--overlap", "8", "--overwrite", "--quiet"],
                              cwd=out)  # 441 small tiles: minutes of work, the first batch in about a second
    status, err = _signal_when_written(process, out, ".tmp.tif", signal.SIGTERM)
    err = [line for line in err if "seeded random weights" not in line]
    assert status == 128 + signal.SIGTERM == 143
    assert err == ["rsinfer decloud: interrupted by SIGTERM: temporary files removed, earlier outputs left as they "
                   "were"]
    assert hidden_files(out) == []
    assert (out / "clear.tif").read_bytes() == b"earlier raster"
    assert (out / "clear.png").read_bytes() == b"earlier preview"


def test_sighup_mid_write_is_handled_like_ctrl_c(big_scene, tmp_path) -> None:
    (tmp_path / "ndwi.tif").write_bytes(b"earlier raster")
    process = rsinfer_process(["scene", "--product", "ndwi", "--input", f"s2={big_scene}", "--out", "ndwi.tif",
                               "--tile", "256", "--overlap", "0", "--overwrite"], cwd=tmp_path)
    status, err = _signal_when_written(process, tmp_path, ".tmp.tif", signal.SIGHUP)
    assert status == 128 + signal.SIGHUP == 129
    assert err == ["rsinfer scene: interrupted by SIGHUP: temporary files removed, earlier outputs left as they were"]
    assert hidden_files(tmp_path) == [] and (tmp_path / "ndwi.tif").read_bytes() == b"earlier raster"


def test_ctrl_c_during_the_cog_conversion_stops_the_conversion(big_scene, tmp_path) -> None:
    """The interrupt reaches GDAL's copy while it runs (it reports how far it got: below 100 %), not after it; GDAL's
    own temporary overview file (.ovr.tmp) goes too.

    The signal waits for that .ovr.tmp file, which only GDAL's copy creates and which lives until the copy ends: our
    own .cog.tif name is reserved before the copy starts, and an interrupt landing in between is a plain Ctrl-C with
    no copy to stop (it failed this test in CI once)."""
    (tmp_path / "ndwi.tif").write_bytes(b"earlier raster")
    process = rsinfer_process(["-v", "scene", "--product", "ndwi", "--input", f"s2={big_scene}", "--out",
                               "ndwi.tif", "--tile", "1024", "--overlap", "0", "--cog", "--overwrite"], cwd=tmp_path)
    status, err = _signal_when_written(process, tmp_path, ".ovr.tmp", signal.SIGINT)
    assert status == 128 + signal.SIGINT == 130
    stopped = [re.search(r"stopped at (\d+) % of the copy", line) for line in err]
    assert [int(m[1]) for m in stopped if m] and all(int(m[1]) < 100 for m in stopped if m), err
    assert err[-1] == ("rsinfer scene: interrupted by SIGINT: temporary files removed, earlier outputs left as they "
                       "were")
    assert hidden_files(tmp_path) == [] and (tmp_path / "ndwi.tif").read_bytes() == b"earlier raster"
