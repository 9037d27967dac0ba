"""Drives the CMake build of the extension rsinfer._C (CMakeLists.txt is the one description of that build).

Works for `pip install --no-build-isolation -e .` and `python setup.py build_ext --inplace`. CMake builds in
build/cmake (incremental across runs); RSINFER_CUDA=AUTO|ON|OFF in the environment picks the CUDA compile check.
The built module replaces rsinfer/_C*.so atomically, so processes that already loaded the old one keep running.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
CMAKE_BUILD_DIR = ROOT / "build" / "cmake"


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
        configure = ["cmake", "-S", str(ROOT), "-B", str(CMAKE_BUILD_DIR), f"-DPython_EXECUTABLE={sys.executable}",
                     f"-DRSINFER_CUDA={os.environ.get('RSINFER_CUDA', 'AUTO')}"]
        if not (CMAKE_BUILD_DIR / "CMakeCache.txt").exists() and shutil.which("ninja"):
            configure += ["-G", "Ninja"]
        subprocess.run(configure, check=True)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        subprocess.run(["cmake", "--build", str(CMAKE_BUILD_DIR), "--parallel", jobs], check=True)
        built = CMAKE_BUILD_DIR / Path(self.get_ext_filename(ext.name)).name
        _replace_atomically(built, Path(self.get_ext_fullpath(ext.name)))

    def copy_extensions_to_source(self) -> None:
        for ext in self.extensions:
            filename = self.get_ext_filename(ext.name)
            _replace_atomically(Path(self.build_lib) / filename, ROOT / filename)


setup(
    packages=find_packages(include=["rsinfer", "rsinfer.*"]) + ["rsinfer.kernels"],
    ext_modules=[Extension("rsinfer._C", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
)
