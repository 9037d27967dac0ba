"""Issue 17, item 4: `make run` never needs root, on a machine without gdalinfo.

Simulated: a PATH holding the tools the recipes use but no gdalinfo, with `apt-get`, `apt` and `sudo` replaced by stubs
that record their call and fail (as they do for a user without root), and optionally `id` saying uid 1000.
- `make -n run` plans no apt-get, sudo or gdal step (the whole job is minutes long; its setup path is what needed root);
- `make gdal` (what `make test` runs) tries the install only where it can, then warns loudly and succeeds, so the tests
  run and skip their gdalinfo cross-checks; with RSINFER_REQUIRE_GDALINFO=1 (CI) it fails instead;
- `make -n test` does plan the gdal step.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.packaging.environments import ROOT, run, user_environment

TOOLS = ("make", "sh", "bash", "env", "cat", "mkdir", "rm", "touch", "test", "python3", "cmake", "git", "uname",
         "id", "dirname", "which")
FAILING_STUBS = ("apt-get", "apt", "sudo")


def _path_without_gdalinfo(folder: Path, uid: int | None) -> tuple[str, Path]:
    """A PATH with links to TOOLS, failing stubs for FAILING_STUBS (and for `id`, reporting `uid`, when given); the
    file the stubs append their command lines to."""
    calls = folder / "calls.log"
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    for stub in FAILING_STUBS:
        (bin_dir / stub).write_text(f'#!/bin/sh\necho "{stub} $*" >> "{calls}"\nexit 100\n')
    if uid is not None:
        (bin_dir / "id").unlink(missing_ok=True)
        (bin_dir / "id").write_text(f'#!/bin/sh\n[ "$1" = -u ] && echo {uid} && exit 0\necho "uid={uid}"\n')
    for stub in bin_dir.iterdir():
        if not stub.is_symlink():
            stub.chmod(0o755)
    assert shutil.which("gdalinfo", path=str(bin_dir)) is None
    return str(bin_dir), calls


def _make(*args: str, path: str, check: bool = True, **env: str):
    return run(["make", "--no-print-directory", *args], cwd=ROOT, env=user_environment(PATH=path, **env), check=check)


@pytest.mark.parametrize("uid", [1000, None], ids=["user", "as-is"])
def test_make_gdal_without_gdalinfo_warns_and_succeeds(tmp_path, uid):
    path, calls = _path_without_gdalinfo(tmp_path, uid)
    result = _make("gdal", path=path)
    assert "WARNING: gdalinfo (Debian gdal-bin) is missing" in result.stderr
    assert "SKIP their gdalinfo cross-checks" in result.stderr
    attempted = calls.read_text().splitlines() if calls.exists() else []
    if uid == 1000 or os.getuid() != 0:  # no root: at most a password-less sudo probe, never apt-get
        assert all(line == "sudo -n true" for line in attempted), attempted
    else:  # root: apt-get was tried (and failed)
        assert attempted[0].startswith("apt-get update")
    required = _make("gdal", path=path, check=False, RSINFER_REQUIRE_GDALINFO="1")
    assert required.returncode != 0


def test_make_run_plans_no_root_step_and_make_test_plans_gdal(tmp_path):
    path, calls = _path_without_gdalinfo(tmp_path, 1000)
    planned = _make("-n", "run", path=path).stdout
    assert "rsinfer env" in planned and "rsinfer scene" in planned
    for word in ("apt-get", "sudo", "gdal-bin", "gdalinfo"):
        assert word not in planned, word
    assert "gdalinfo" in _make("-n", "test", path=path).stdout
    assert not calls.exists()  # planning ran nothing
