"""Drives the CMake build of the extension rsinfer._C (CMakeLists.txt is the one description of that build) and lists
what the package ships.

Works for `pip install [--no-build-isolation] [-e] .`, `pip wheel .` and `python setup.py build_ext --inplace`.
The extension is built against the torch of the interpreter running this script (CMake asks that interpreter where
torch is): each Python environment gets its own incremental CMake directory build/cmake/<environment>, so builds for
two environments never mix objects or cached torch paths. RSINFER_CUDA=AUTO|ON|OFF in the environment picks the CUDA
compile check. The built module replaces rsinfer/_C*.so atomically, so processes that already loaded the old one keep
running.

Shipped: the package rsinfer, the Triton kernels of kernels/ as rsinfer.kernels, and the demo weights of weights/ (when
the folder exists) as package data rsinfer/weights/.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def cmake_build_dir() -> Path:
    """build/cmake/<python version>-<hash of the environment's prefix>: one incremental build per environment."""
    prefix = hashlib.sha256(os.path.realpath(sys.prefix).encode()).hexdigest()[:10]
    return ROOT / "build" / "cmake" / f"py{sys.version_info.major}{sys.version_info.minor}-{prefix}"


def _replace_atomically(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        shutil.copy2(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


class CMakeBuild(build_ext):
    """Configures and builds with CMake, then places the module where setuptools expects it."""

    def build_extension(self, ext: Extension) -> None:
        build_dir = cmake_build_dir()
        configure = ["cmake", "-S", str(ROOT), "-B", str(build_dir), f"-DPython_EXECUTABLE={sys.executable}",
                     f"-DRSINFER_CUDA={os.environ.get('RSINFER_CUDA', 'AUTO')}"]
        if not (build_dir / "CMakeCache.txt").exists() and shutil.which("ninja"):
            configure += ["-G", "Ninja"]
        subprocess.run(configure, check=True)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        subprocess.run(["cmake", "--build", str(build_dir), "--parallel", jobs], check=True)
        built = build_dir / Path(self.get_ext_filename(ext.name)).name
        _replace_atomically(built, Path(self.get_ext_fullpath(ext.name)))

    def copy_extensions_to_source(self) -> None:
        for ext in self.extensions:
            filename = self.get_ext_filename(ext.name)
            _replace_atomically(Path(self.build_lib) / filename, ROOT / filename)


# kernels/ installs as rsinfer.kernels (a top-level `kernels` would collide with a PyPI package); weights/ as the data
# folder rsinfer/weights (read with importlib.resources.files("rsinfer") / "weights").
PACKAGE_DIR = {"rsinfer": "rsinfer", "rsinfer.kernels": "kernels"}
PACKAGE_DATA: dict[str, list[str]] = {}
if (ROOT / "weights").is_dir():
    PACKAGE_DIR["rsinfer.weights"] = "weights"
    PACKAGE_DATA["rsinfer.weights"] = ["*.safetensors", "*.md", "*.json"]

setup(
    packages=find_packages(include=["rsinfer", "rsinfer.*"]) + sorted(set(PACKAGE_DIR) - {"rsinfer"}),
    package_dir=PACKAGE_DIR,
    package_data=PACKAGE_DATA,
    ext_modules=[Extension("rsinfer._C", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
)
