"""Issue 17, item 3: `make wheel` builds a wheel with the compiled extension, the Triton kernels and the demo weights;
installed into a fresh venv in a temporary directory (not the checkout), `rsinfer env`, a tiny `rsinfer scene
--product ndwi` and `rsinfer decloud --random-weights` on a 64² crop of the bundled data run, and their numbers match an
independent NDWI and the checkout's own DB-CR output."""

from __future__ import annotations

import email
import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from tests.packaging.environments import CONSTRAINTS, DEV_VENV, read_requirements, run, user_environment
from tests.packaging.expectations import CORE, OPTIONAL, env_packages, env_status, pyproject
from tests.scene.scene_data import S1, S2, crop

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("packaging")]

WEIGHT_PATTERNS = ("*.safetensors", "*.md", "*.json")  # what setup.py ships from weights/


def _shipped_weights(source_tree: Path) -> dict[str, str]:
    folder = source_tree / "weights"
    files = sorted({p for pattern in WEIGHT_PATTERNS for p in folder.glob(pattern)}) if folder.is_dir() else []
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _core_requirements(requirements: list[str]) -> dict[str, SpecifierSet]:
    """name → version range of the requirements without an extra marker."""
    parsed = [Requirement(r) for r in requirements]
    return {r.name: r.specifier for r in parsed if r.marker is None}


def test_wheel_holds_the_package_the_extension_the_kernels_and_the_weights(wheel, source_tree):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (extension,) = [n for n in names if n.startswith("rsinfer/_C.") and n.endswith(".so")]
        binary = archive.read(extension)
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(metadata_name))
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
        weights = {Path(n).name: hashlib.sha256(archive.read(n)).hexdigest()
                   for n in names if n.startswith("rsinfer/weights/")}
    sources = {p.relative_to(source_tree).as_posix() for p in (source_tree / "rsinfer").rglob("*.py")}
    kernels = {f"rsinfer/kernels/{p.name}" for p in (source_tree / "kernels").glob("*.py")}
    assert sources | kernels <= names
    assert not {n for n in names if n.split("/")[0] in ("tests", "train", "bench", "kernels", "csrc", "weights")}
    # compiled against the torch of the build environment (the checkout's venv), which it records for the ABI check
    assert f"rsinfer-torch-build: torch={torch.__version__} ".encode() in binary
    assert "rsinfer = rsinfer.cli:main" in scripts
    assert _core_requirements(metadata.get_all("Requires-Dist")) == _core_requirements(
        pyproject(source_tree)["project"]["dependencies"])
    assert weights == _shipped_weights(source_tree)


def test_wheel_install_env(wheel_install):
    out = wheel_install.run("rsinfer", "env").stdout
    packages, pins = env_packages(out), read_requirements(CONSTRAINTS.read_text())
    assert {p: packages[p] for p in CORE} == {p: pins[p] for p in CORE}
    assert all(packages[p].startswith("not installed — pip install 'rsinfer[") for p in OPTIONAL)
    assert env_status(out, "ext").startswith("available: rsinfer._C:")  # the wheel's binary loads here


def test_wheel_install_tiny_ndwi(wheel_install):
    s2 = crop(S2, wheel_install.work / "s2_ndwi.tif", 37, 301, 48, 53)
    out = wheel_install.work / "ndwi.tif"
    wheel_install.run("rsinfer", "scene", "--product", "ndwi", "--input", f"s2={s2}", "--out", str(out),
                      "--tile", "32", "--overlap", "8", "--overwrite")
    with rasterio.open(s2) as src:
        green, nir = src.read(3).astype(np.float64), src.read(8).astype(np.float64)
        transform = src.transform
    with rasterio.open(out) as ndwi:
        assert ndwi.transform == transform
        np.testing.assert_allclose(ndwi.read(1), (green - nir) / (green + nir), rtol=1e-6, atol=1e-7)


def test_wheel_install_decloud_random_weights_matches_the_checkout(wheel_install, tmp_path):
    s2 = crop(S2, wheel_install.work / "s2.tif", 100, 200, 64, 64)
    s1 = crop(S1, wheel_install.work / "s1.tif", 100, 200, 64, 64)
    args = ("decloud", "--s2", str(s2), "--s1", str(s1), "--random-weights", "--seed", "3", "--steps", "1", "--quiet",
            "--overwrite")
    wheel_out, checkout_out = wheel_install.work / "clear.tif", tmp_path / "clear.tif"
    wheel_install.run("rsinfer", *args, "--out", str(wheel_out))
    run([str(DEV_VENV / "bin" / "rsinfer"), *args, "--out", str(checkout_out)], cwd=tmp_path, env=user_environment())
    with rasterio.open(wheel_out) as got, rasterio.open(checkout_out) as want, rasterio.open(s2) as source:
        assert (got.count, got.dtypes[0], got.transform, got.crs) == (13, source.dtypes[0], source.transform,
                                                                     source.crs)
        assert got.tags()["RSINFER_WEIGHTS"] == "random:seed=3"
        difference = np.abs(got.read().astype(np.int64) - want.read().astype(np.int64))
    assert difference.max() <= 1, f"wheel and checkout differ by up to {difference.max()} DN"


def test_wheel_install_ships_the_demo_weights(wheel_install, source_tree):
    listing = wheel_install.run("python", "-c", """
import hashlib, importlib.resources, json
folder = importlib.resources.files("rsinfer") / "weights"
files = [f for f in folder.iterdir() if f.is_file()] if folder.is_dir() else []
print(json.dumps({f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}))
""").stdout
    assert json.loads(listing) == _shipped_weights(source_tree)
