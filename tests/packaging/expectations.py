"""What the packaging tests expect of an install, stated independently of the package: the optional packages and the
extra that installs each (the issue's list, checked against pyproject.toml), the modules that need an extra, and how
an `rsinfer env` package entry or a command's error line reads."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

from tests.packaging.environments import ROOT, normalised

# Optional distribution → the extra that installs it (issue 17: onnx, triton, ray, plots, stac).
OPTIONAL = {"onnx": "onnx", "onnxruntime": "onnx", "triton": "triton", "ray": "ray", "matplotlib": "plots",
            "pystac": "stac"}
CORE = ("torch", "numpy", "safetensors", "rasterio", "affine")
# Modules that exist only for an extra: the Triton kernels.
NEEDS_EXTRA = {"rsinfer.kernels": "triton"}


def pyproject(root: Path = ROOT) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text())


def requirement_name(requirement: str) -> str:
    return normalised(re.match(r"[A-Za-z0-9._-]+", requirement)[0])


def env_packages(env_output: str) -> dict[str, str]:
    """name → version text of the "packages:" line of `rsinfer env`."""
    (line,) = [line for line in env_output.splitlines() if line.startswith("packages: ")]
    entries = line.removeprefix("packages: ").split(", ")
    return dict(entry.split(" ", 1) for entry in entries)


def env_status(env_output: str, name: str) -> str:
    """The "available: ..." / "not available: ..." text of backend or engine `name` in `rsinfer env`."""
    (line,) = [line for line in env_output.splitlines() if re.match(rf"\s+{re.escape(name)}\s+(not )?available:", line)]
    return line.strip().removeprefix(name).strip()


def error_lines(result: subprocess.CompletedProcess, command: str) -> list[str]:
    """The `rsinfer <command>: error: ...` lines of a failed run (asserting it failed cleanly, without a traceback)."""
    assert result.returncode not in (0, 1), f"expected a handled error, got exit {result.returncode}: {result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith(f"rsinfer {command}: error:")]
