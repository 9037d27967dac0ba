"""Fresh environments for the packaging tests, as a user outside the checkout has them.

- `copy_source_tree`: the files git would hand a user (tracked, plus untracked ones not ignored: no .venv, no build
  outputs, no rsinfer/_C*.so), copied with their modification times. Builds run in the copy, so they never touch the
  checkout's build/ or dist/.
- `Venv`: a virtual environment in a temporary directory, created from the base interpreter, with `run` executing a
  command in it from a working directory outside the checkout, with the user's environment (no RSINFER_*, TRITON_* or
  PYTHONPATH; one thread each, the machine is shared; pip as configured on the machine, plus `constraints`).
- `read_requirements`: name → version of a `pip freeze` / constraints text (names normalised as in PEP 503).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints.txt"
DEV_VENV = ROOT / ".venv"
INSTALL_TIMEOUT_S = 1800  # a torch install plus an extension build on 2 busy cores
COMMAND_TIMEOUT_S = 600


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_requirements(text: str) -> dict[str, str]:
    """name → pinned version of every `name==version` line (comments, blanks, editable installs and direct references
    `name @ url`, i.e. a project installed from a path, skipped)."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-") or " @ " in line:
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise ValueError(f"not an exact pin: {line!r}")
        pins[normalised(name)] = version.strip()
    return pins


def copy_source_tree(dest: Path) -> Path:
    """Copy what a clone of the checkout would contain (with the working tree's current contents) into `dest`."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for relative in filter(None, listed):
        source = ROOT / relative
        if not source.is_file():  # deleted in the working tree but still in the index
            continue
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return dest


def user_environment(**extra: str) -> dict[str, str]:
    """This process's environment without what the test session or the developer's venv added, plus `extra`."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("RSINFER_", "TRITON_", "PYTEST_", "PIP_CONSTRAINT"))
           and key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env.update(OMP_NUM_THREADS="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", **extra)
    return env


def run(command: list[str], *, cwd: Path, env: dict[str, str], timeout: float = COMMAND_TIMEOUT_S,
        check: bool = True) -> subprocess.CompletedProcess:
    """`command` with captured text output; a failure (when `check`) shows the command and the end of its output."""
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, command))} exited {result.returncode}\n"
                             f"--- stdout (end) ---\n{result.stdout[-4000:]}\n--- stderr (end) ---\n"
                             f"{result.stderr[-4000:]}")
    return result


@dataclass(frozen=True)
class Venv:
    path: Path
    work: Path  # the working directory of commands: outside the checkout, so `import rsinfer` finds the install

    @classmethod
    def create(cls, path: Path) -> Venv:
        base = Path(getattr(sys, "_base_executable", sys.executable))
        work = path.parent / f"{path.name}-work"
        work.mkdir(parents=True, exist_ok=True)
        run([str(base), "-m", "venv", str(path)], cwd=work, env=user_environment(), timeout=300)
        return cls(path, work)

    def bin(self, name: str) -> str:
        return str(self.path / "bin" / name)

    def run(self, *args: str, timeout: float = COMMAND_TIMEOUT_S, check: bool = True,
            **extra_env: str) -> subprocess.CompletedProcess:
        """Run `args` (first: a program of the venv's bin/) in `work` with the user's environment."""
        env = user_environment(**extra_env)
        env["PATH"] = os.pathsep.join([str(self.path / "bin"), env["PATH"]])
        env["VIRTUAL_ENV"] = str(self.path)
        return run([self.bin(args[0]), *args[1:]], cwd=self.work, env=env, timeout=timeout, check=check)

    def pip_install(self, *args: str) -> subprocess.CompletedProcess:
        """`pip install -q args` with constraints.txt for every install, the isolated build environment's included."""
        return self.run("pip", "install", "-q", *args, timeout=INSTALL_TIMEOUT_S, PIP_CONSTRAINT=str(CONSTRAINTS))

    def freeze(self) -> dict[str, str]:
        return read_requirements(self.run("pip", "freeze", "--all", "--exclude-editable").stdout)
