"""Issue 17, acceptance 1: in a fresh venv outside the checkout, `pip install <checkout>` with no extras, then
`rsinfer env` and `rsinfer scene --product ndwi` on the bundled S2 chip succeed. Also, in that venv without extras:
every module imports except those that exist for an extra, `--help` imports no torch, `rsinfer env` names the extra
of each missing optional package, and choosing what a missing extra provides fails with one line naming it."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import rasterio

from tests.packaging.environments import CONSTRAINTS, read_requirements
from tests.packaging.expectations import (CORE, NEEDS_EXTRA, OPTIONAL, env_packages, env_status, error_lines,
                                          pyproject, requirement_name)
from tests.scene.scene_data import S1, S2, crop

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("packaging")]

_IMPORT_EVERY_MODULE = """
import importlib, json, pkgutil, sys
import rsinfer
failures = {}
for module in pkgutil.walk_packages(rsinfer.__path__, "rsinfer.", onerror=lambda name: None):
    try:
        importlib.import_module(module.name)
    except Exception as err:
        failures[module.name] = f"{type(err).__name__}: {err}"
for name in ("rsinfer.kernels",):  # walk_packages swallows a failing package import: try it directly
    try:
        importlib.import_module(name)
    except Exception as err:
        failures[name] = f"{type(err).__name__}: {err}"
print(json.dumps({"failures": failures, "file": rsinfer.__file__,
                  "loaded": sorted(m for m in sys.modules if "." not in m)}))
"""


def test_pyproject_extras_install_the_optional_packages():
    extras = pyproject()["project"]["optional-dependencies"]
    for package, extra in OPTIONAL.items():
        assert package in {requirement_name(r) for r in extras[extra]}, (package, extra)
    core = {requirement_name(r) for r in pyproject()["project"]["dependencies"]}
    assert core == set(CORE)
    assert set(extras["all"][0].partition("[")[2].rstrip("]").split(",")) == set(extras) - {"all"}


def test_plain_install_has_exactly_the_core_dependencies_at_the_tested_versions(plain_install):
    installed = plain_install.freeze()
    pins = read_requirements(CONSTRAINTS.read_text())
    for package in CORE:
        assert installed[package] == pins[package], package
    assert not set(OPTIONAL) & set(installed), "an optional package came with a plain install"
    assert all(pins.get(name) == version for name, version in installed.items()
               if name not in ("rsinfer", "pip", "setuptools")), "a version outside constraints.txt"


def test_plain_install_env_names_the_extra_of_each_missing_package(plain_install):
    out = plain_install.run("rsinfer", "env").stdout
    packages = env_packages(out)
    pins = read_requirements(CONSTRAINTS.read_text())
    for package in CORE:
        assert packages[package] == pins[package]
    for package, extra in OPTIONAL.items():
        assert packages[package] == f"not installed — pip install 'rsinfer[{extra}]'"
    # The extension was compiled by the source install, against the torch it runs with.
    assert env_status(out, "ext").startswith("available: rsinfer._C:")
    assert f"torch {pins['torch']}" in env_status(out, "ext")
    assert env_status(out, "triton").startswith("not available:")
    assert "pip install 'rsinfer[triton]'" in env_status(out, "triton")
    assert "pip install 'rsinfer[onnx]'" in env_status(out, "onnxruntime")


def test_plain_install_scene_ndwi_on_the_bundled_chip(plain_install):
    out = plain_install.work / "x.tif"
    plain_install.run("rsinfer", "scene", "--product", "ndwi", "--input", f"s2={S2}", "--out", str(out),
                      "--overwrite")
    with rasterio.open(S2) as src:
        green, nir = src.read(3).astype(np.float64), src.read(8).astype(np.float64)  # B3, B8
        crs, transform, shape = src.crs, src.transform, src.shape
    with rasterio.open(out) as ndwi:
        assert (ndwi.count, ndwi.crs, ndwi.transform, ndwi.shape) == (1, crs, transform, shape)
        values = ndwi.read(1)
    np.testing.assert_allclose(values, (green - nir) / (green + nir), rtol=1e-6, atol=1e-7)


def test_plain_install_imports_every_module_without_extras(plain_install):
    report = json.loads(plain_install.run("python", "-c", _IMPORT_EVERY_MODULE).stdout)
    assert report["file"].startswith(str(plain_install.path)), "imported the checkout, not the install"
    failures = report["failures"]
    for module, extra in NEEDS_EXTRA.items():
        assert failures.pop(module) == f"ModuleNotFoundError: No module named '{extra}'"
    assert all(name.startswith(tuple(f"{m}." for m in NEEDS_EXTRA)) for name in failures), failures
    assert not set(OPTIONAL) & set(report["loaded"])


def test_plain_install_help_imports_no_torch(plain_install):
    commands = re.findall(r"^    ([a-z][a-z-]*)  ", plain_install.run("rsinfer", "--help").stdout, re.MULTILINE)
    assert {"env", "scene", "decloud", "translate"} <= set(commands)
    for argv in ([], *([command] for command in commands)):
        result = plain_install.run("python", "-X", "importtime", plain_install.bin("rsinfer"), *argv, "--help")
        imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines()
                    if line.startswith("import time:")}
        assert not imported & {"torch", "numpy", "rasterio"}, (argv, imported & {"torch", "numpy", "rasterio"})


def test_plain_install_missing_extras_fail_with_one_line_naming_the_extra(plain_install):
    s2, s1 = (crop(path, plain_install.work / name, 100, 200, 64, 64) for path, name in ((S2, "s2.tif"),
                                                                                       (S1, "s1.tif")))
    decloud = ("rsinfer", "decloud", "--s2", str(s2), "--s1", str(s1), "--random-weights", "--quiet", "--overwrite",
               "--out", str(plain_install.work / "clear.tif"))
    for flags, extra in ((("--engine", "onnxruntime"), "onnx"), (("--backend", "triton"), "triton")):
        (line,) = error_lines(plain_install.run(*decloud, *flags, check=False), "decloud")
        assert f"pip install 'rsinfer[{extra}]'" in line, line
    batch = plain_install.run("rsinfer", "batch", "--pipeline", "ndwi", "--manifest", "jobs.csv", "--out-dir", "out",
                              check=False)
    (line,) = error_lines(batch, "batch")
    assert line.endswith("pip install 'rsinfer[ray]'"), line
