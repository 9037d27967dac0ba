"""Session fixtures of the packaging tests: one clean copy of the source tree, one wheel built from it by `make wheel`,
and two fresh venvs outside the checkout (a plain source install without extras, and the wheel). Each is built once
per session; the tests that use them are `slow` and share one xdist group, so `make test` builds them once."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging.environments import DEV_VENV, Venv, copy_source_tree, run, user_environment

# The checkout's venv builds the wheel (it holds the tested torch); `-o` keeps make from re-running `setup` into it
# from the copy, whose files may be newer than the venv's install stamp.
DEV_STAMP = DEV_VENV / ".rsinfer-installed"


@pytest.fixture(scope="session")
def source_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tree = copy_source_tree(tmp_path_factory.mktemp("source") / "rsinfer")
    yield tree
    shutil.rmtree(tree, ignore_errors=True)


@pytest.fixture(scope="session")
def wheel(source_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make wheel` in the source copy; the path of the one wheel it wrote."""
    dist = tmp_path_factory.mktemp("dist")
    run(["make", "-o", str(DEV_STAMP), "wheel", f"VENV={DEV_VENV}", f"DIST={dist}"], cwd=source_tree,
        env=user_environment(), timeout=1800)
    (built,) = dist.glob("rsinfer-*.whl")
    return built


@pytest.fixture(scope="session")
def plain_install(source_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venv]:
    """A fresh venv with `pip install <source>`: no extras, pip's default isolated build (pinned by constraints.txt
    through PIP_CONSTRAINT, which reaches the build environment too)."""
    venv = Venv.create(tmp_path_factory.mktemp("plain") / "venv")
    venv.pip_install(str(source_tree))
    yield venv
    shutil.rmtree(venv.path, ignore_errors=True)


@pytest.fixture(scope="session")
def wheel_install(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venv]:
    """A fresh venv with the wheel and its core dependencies (constraints.txt), no extras."""
    venv = Venv.create(tmp_path_factory.mktemp("wheel") / "venv")
    venv.pip_install(str(wheel))
    yield venv
    shutil.rmtree(venv.path, ignore_errors=True)
