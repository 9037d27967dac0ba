"""Issue 17, item 2: ranges in the package metadata, the exact tested set in constraints.txt.

- constraints.txt is today's environment: the checkout's venv holds exactly its pins (`pip freeze`);
- installing the package with it reproduces that environment exactly: pip's resolver, asked for what the Makefile
  installs (`pip install -c constraints.txt pip setuptools wheel '<source>[all]'`) in an empty environment
  (`--dry-run --ignore-installed`), picks exactly the pinned set, nothing more or less;
- every pin lies inside the range pyproject.toml declares for it.
"""

from __future__ import annotations

import json

import pytest
from packaging.requirements import Requirement

from tests.packaging.environments import (CONSTRAINTS, DEV_VENV, INSTALL_TIMEOUT_S, normalised, read_requirements,
                                          run, user_environment)
from tests.packaging.expectations import pyproject


def _pins() -> dict[str, str]:
    return read_requirements(CONSTRAINTS.read_text())


def test_constraints_are_todays_environment(tmp_path):
    frozen = run([str(DEV_VENV / "bin" / "pip"), "freeze", "--all", "--exclude-editable"], cwd=tmp_path,
                 env=user_environment()).stdout
    installed, pins = read_requirements(frozen), _pins()
    assert {n: v for n, v in installed.items() if pins.get(n) != v} == {}, "installed but not pinned as installed"
    assert {n: v for n, v in pins.items() if installed.get(n) != v} == {}, "pinned but not installed as pinned"


def test_every_pin_lies_in_the_declared_range():
    project, pins = pyproject()["project"], _pins()
    declared = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    for requirement in map(Requirement, declared):
        name = normalised(requirement.name)
        if name == "rsinfer":  # the `all` extra
            continue
        assert requirement.specifier.contains(pins[name], prereleases=True), (str(requirement), pins[name])
    build = map(Requirement, pyproject()["build-system"]["requires"])
    assert all(r.specifier.contains(pins[normalised(r.name)], prereleases=True) for r in build)


@pytest.mark.slow
@pytest.mark.xdist_group("packaging")
def test_installing_with_the_constraints_reproduces_the_environment(source_tree, tmp_path):
    report = tmp_path / "report.json"
    run([str(DEV_VENV / "bin" / "pip"), "install", "-q", "--dry-run", "--ignore-installed", "--no-build-isolation",
         "--report", str(report), "-c", str(CONSTRAINTS), "pip", "setuptools", "wheel", f"{source_tree}[all]"],
        cwd=tmp_path, env=user_environment(), timeout=INSTALL_TIMEOUT_S)
    resolved = {normalised(item["metadata"]["name"]): item["metadata"]["version"]
                for item in json.loads(report.read_text())["install"]}
    assert resolved.pop("rsinfer") == pyproject()["project"]["version"]
    assert resolved == _pins()
