"""Finding 3: OS and I/O errors end in one line naming the file or flag and the cause, with the exit status of their
class (3 input data, 4 output or environment), no traceback, and GDAL's own messages folded into that line."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio

from .conftest import RSINFER, green_nir, hidden_files, truncated_geotiff


@contextlib.contextmanager
def _small_filesystem(folder: Path, *options: str) -> Iterator[Path]:
    """A tmpfs mounted on `folder` (needs root and a kernel that lets this process mount; skipped otherwise)."""
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; the RLIMIT_FSIZE test covers a full disk")
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(folder)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


# Runs a command with files limited to LIMIT bytes: writes beyond fail with EFBIG (SIGXFSZ ignored, so the write fails
# instead of killing the process) — a full disk, as far as the writer can tell. Both settings survive the exec.
_LIMITED = ("import os, resource, signal, sys\n"
            "limit = int(sys.argv[1])\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
            "os.execv(sys.argv[2], sys.argv[2:])")


def test_a_truncated_geotiff_is_an_input_data_error(tmp_path, cli) -> None:
    """Its header is intact, so it opens; GDAL fails only when reading the cut tiles."""
    broken = truncated_geotiff(tmp_path / "cut.tif")
    with rasterio.open(broken) as ds:
        assert ds.shape == (600, 600)
    outcome = cli("scene", "--product", "ndwi", "--input", f"s2={broken}", "--out", tmp_path / "o.tif")
    assert outcome.status == 3
    assert outcome.line.startswith(f"rsinfer scene: error: reading input 's2' ({broken}) failed: cut.tif, band ")
    assert outcome.line.endswith("(a truncated or corrupt file?)")
    assert not (tmp_path / "o.tif").exists() and hidden_files(tmp_path) == []


def test_a_full_disk_while_streaming_and_while_converting_to_cog(tmp_path, cli) -> None:
    """RLIMIT_FSIZE in a child process (EFBIG, as a full disk would give ENOSPC): during the streamed write, then
    during the COG conversion alone. One line each (libtiff's repeated messages are folded into it), exit 4, no
    temporary file, the earlier output intact."""
    scene = green_nir(tmp_path / "b3b8.tif", 1000)
    assert cli("scene", "--product", "ndwi", "--input", f"s2={scene}", "--out", tmp_path / "free.tif", "--cog",
               "--quiet").status == 0
    cog_bytes = (tmp_path / "free.tif").stat().st_size  # the streamed file holds ~3/4 of it (no overviews)
    out = tmp_path / "out"
    out.mkdir()
    (out / "ndwi.tif").write_bytes(b"earlier raster")
    for limit, extra, doing in ((200_000, [], "writing it"), (int(0.9 * cog_bytes), ["--cog"],
                                                               "converting it to a COG")):
        process = subprocess.run([sys.executable, "-c", _LIMITED, str(limit), RSINFER, "scene", "--product", "ndwi",
                                  "--input", f"s2={scene}", "--out", "ndwi.tif", "--overwrite", "--quiet", *extra],
                                 cwd=out, capture_output=True, text=True, timeout=300)
        assert process.returncode == 4
        assert process.stderr.splitlines() == [f"rsinfer scene: error: ndwi.tif: {doing} failed: File too large"]
        assert hidden_files(out) == [] and (out / "ndwi.tif").read_bytes() == b"earlier raster"


def test_a_full_tmpfs_gives_no_space_left(tmp_path, cli) -> None:
    scene = green_nir(tmp_path / "b3b8.tif", 600)
    with _small_filesystem(tmp_path / "small", "size=256k") as small:
        for extra in ([], ["--cog"]):
            outcome = cli("scene", "--product", "ndwi", "--input", f"s2={scene}", "--out", small / "o.tif",
                          "--quiet", *extra)
            assert outcome.status == 4
            assert outcome.line == (f"rsinfer scene: error: {small / 'o.tif'}: writing it failed: No space left on "
                                    "device")
            assert list(small.iterdir()) == []


def test_a_read_only_output_directory_is_refused_before_any_work(tmp_path, cli) -> None:
    scene = green_nir(tmp_path / "b3b8.tif", 64)
    if os.geteuid() != 0:  # permissions bind an ordinary user
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        expected = "Permission denied"
        context = contextlib.nullcontext(locked)
    else:  # root ignores permissions: a read-only filesystem binds it
        expected = "Read-only file system"
        context = _small_filesystem(tmp_path / "locked", "ro", "size=64k")
    with context as locked:
        outcome = cli("scene", "--product", "ndwi", "--input", f"s2={scene}", "--out", locked / "o.tif")
        assert outcome.status == 4
        assert outcome.line == (f"rsinfer scene: error: {locked / 'o.tif'}: cannot create a file in {locked}: "
                                f"{expected}")


def test_a_preview_path_that_is_a_directory_fails_before_the_raster_is_written(crops, tmp_path, cli) -> None:
    (tmp_path / "p.png").mkdir()
    out = tmp_path / "clear.tif"
    outcome = cli("decloud", "--s2", crops["s2"], "--s1", crops["s1"], "--out", out, "--preview", tmp_path / "p.png",
                  "--random-weights", "--tile", "64", "--overlap", "16")
    assert outcome.status == 4 and outcome.line == f"rsinfer decloud: error: {tmp_path / 'p.png'}: is a directory"
    assert not out.exists() and hidden_files(tmp_path) == []


def test_a_tile_larger_than_the_scene_runs_the_scene_as_one_tile(crops, tmp_path, cli) -> None:
    """--tile 65536 on a 100 x 130 scene: the tile shrinks to the scene (tiles of 65536² would not fit in memory);
    the provenance records the tiling asked, which decides the one that ran."""
    out = tmp_path / "ndwi.tif"
    assert cli("scene", "--product", "ndwi", "--input", f"s2={crops['s2']}", "--out", out, "--tile", "65536",
               "--quiet").status == 0
    with rasterio.open(out) as ds, rasterio.open(crops["s2"]) as src:
        assert json.loads(ds.tags()["RSINFER_TILING"])["tile"] == 65536 and ds.shape == (100, 130)
        green, nir = src.read(3).astype(np.float64), src.read(8).astype(np.float64)
        np.testing.assert_allclose(ds.read(1), (green - nir) / (green + nir), rtol=1e-5, atol=1e-6)


def _huge_vrt(folder: Path, side: int) -> Path:
    """A `side` x `side` 2-band (B3, B8) VRT over a 64 x 64 file: huge to read, tiny on disk."""
    green_nir(folder / "small.tif", 64)
    bands = "".join(
        f'<VRTRasterBand dataType="UInt16" band="{band}"><Description>{name}</Description><SimpleSource>'
        f'<SourceFilename relativeToVRT="1">small.tif</SourceFilename><SourceBand>{band}</SourceBand>'
        '<SrcRect xOff="0" yOff="0" xSize="64" ySize="64"/><DstRect xOff="0" yOff="0" xSize="64" ySize="64"/>'
        "</SimpleSource></VRTRasterBand>" for band, name in ((1, "B3"), (2, "B8")))
    path = folder / "huge.vrt"
    path.write_text(f'<VRTDataset rasterXSize="{side}" rasterYSize="{side}"><SRS>EPSG:32630</SRS>'
                    f"<GeoTransform>500000, 10, 0, 4200000, 0, -10</GeoTransform>{bands}</VRTDataset>")
    return path


def test_tiles_too_large_for_memory_name_the_flags_to_lower(tmp_path, cli) -> None:
    """Tiles of 131072² (137 GB per batch of reads) on a 200000² scene: the allocation fails at once."""
    if Path("/proc/sys/vm/overcommit_memory").read_text().strip() == "1":
        pytest.skip("vm.overcommit_memory=1 grants any allocation; the kernel would kill the process later instead")
    huge = _huge_vrt(tmp_path, 200_000)
    outcome = cli("scene", "--product", "ndwi", "--input", f"s2={huge}", "--out", tmp_path / "o.tif", "--tile",
                  "131072", "--overlap", "0", "--quiet")
    assert outcome.status == 4
    assert outcome.line == ("rsinfer scene: error: out of memory with tiles of 131072 x 131072 pixels, 4 per call: "
                            "lower --tile or --batch-size")
    assert hidden_files(tmp_path) == [] and not (tmp_path / "o.tif").exists()
