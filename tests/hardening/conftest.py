"""Fixtures of the hardening tests: small crops of the real Sen1Floods11 chip, broken files, and the command line run
in-process (`cli`) or as a real process (`rsinfer_process`)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from tests.scene.scene_data import S1, S2, crop

from rsinfer.cli import main

REPO = Path(__file__).resolve().parents[2]
RSINFER = REPO / ".venv" / "bin" / "rsinfer"


@dataclass(frozen=True)
class Outcome:
    """What one command did: its exit status and its stderr lines."""

    status: int
    err: list[str]

    @property
    def line(self) -> str:
        """The one error line (asserting there is exactly one line on stderr, and no traceback)."""
        assert "Traceback" not in "\n".join(self.err), "\n".join(self.err)
        assert len(self.err) == 1, self.err
        return self.err[0]


@pytest.fixture
def cli(capsys) -> Callable[..., Outcome]:
    """Run `rsinfer ARGS` in this process; argparse's own errors (SystemExit) count as their status."""

    def run(*args: str | os.PathLike) -> Outcome:
        capsys.readouterr()
        try:
            status = main([os.fspath(a) for a in args])
        except SystemExit as stop:
            status = stop.code
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        return Outcome(status, [line for line in err if "seeded random weights" not in line])

    return run


def rsinfer_process(args: Sequence[str | os.PathLike], cwd: Path, **kwargs) -> subprocess.Popen:
    """`.venv/bin/rsinfer ARGS` as a real process (its own signal handling), stderr piped."""
    return subprocess.Popen([str(RSINFER), *map(os.fspath, args)], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.fixture
def crops(tmp_path) -> dict[str, Path]:
    """A 100 x 130 crop of the S2 (13 described bands, int16, nodata 0) and S1 (VV, VH dB) chips."""
    return {name: crop(path, tmp_path / f"{name}.tif", 100, 150, 100, 130) for name, path in (("s2", S2), ("s1", S1))}


def write_raster(path: Path, values: np.ndarray, descriptions: Sequence[str] = (), **profile) -> Path:
    """A GeoTIFF of `values` (C, H, W) on a 10 m UTM grid, bands described by `descriptions`."""
    count, height, width = values.shape
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=count, dtype=values.dtype,
                       crs="EPSG:32630", transform=rasterio.transform.from_origin(500000, 4200000, 10, 10),
                       **profile) as dst:
        dst.write(values)
        for band, description in enumerate(descriptions, 1):
            dst.set_band_description(band, description)
    return path


def green_nir(path: Path, side: int, seed: int = 0, **profile) -> Path:
    """A 2-band (B3, B8) uint16 scene of random reflectances, `side` x `side`: input of the ndwi product."""
    values = np.random.default_rng(seed).integers(1, 10000, (2, side, side), dtype=np.uint16)
    return write_raster(path, values, ("B3", "B8"), **profile)


def truncated_geotiff(path: Path) -> Path:
    """A GeoTIFF whose header and directory are intact but whose pixel data is cut: GDAL opens it and fails only when
    reading (a COG lays its directory out first)."""
    whole = green_nir(path.with_name("whole.tif"), 600)
    rasterio.shutil.copy(whole, path, driver="COG", compress="DEFLATE", blocksize=256)
    whole.unlink()
    os.truncate(path, path.stat().st_size // 2)
    return path


def hidden_files(folder: Path) -> list[str]:
    """Names of the hidden files in `folder`: rsinfer's temporary files and GDAL's (.ovr.tmp) would be among them."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))
