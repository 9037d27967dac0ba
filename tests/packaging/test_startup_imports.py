"""Issue 17, item 5: `rsinfer --help` and `rsinfer <command> --help` import none of the heavy packages (torch and its
compiler stack, numpy, GDAL through rasterio, onnxruntime, ray, triton, matplotlib, pystac), read from Python's own
import log (-X importtime). Their wall time is measured by bench/startup.py, not here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = {"torch", "numpy", "rasterio", "onnx", "onnxruntime", "ray", "triton", "matplotlib", "pystac", "safetensors",
         "scipy", "sympy"}
RSINFER = str(Path(sys.executable).parent / "rsinfer")


def _imported(*argv: str) -> set[str]:
    result = subprocess.run([sys.executable, "-X", "importtime", RSINFER, *argv], capture_output=True, text=True,
                            check=True, timeout=120)
    return {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines()
            if line.startswith("import time:")}


def _commands() -> list[str]:
    out = subprocess.run([RSINFER, "--help"], capture_output=True, text=True, check=True, timeout=120).stdout
    return re.findall(r"^    ([a-z][a-z-]*)  ", out, re.MULTILINE)


def test_every_command_is_listed():
    assert {"env", "scene", "translate", "decloud", "pansharpen", "fill-gap", "evaluate", "batch"} <= set(_commands())


@pytest.mark.parametrize("command", [None, *_commands()])
def test_help_imports_no_heavy_package(command):
    imported = _imported(*([command] if command else []), "--help")
    assert "rsinfer" in imported
    assert not imported & HEAVY, sorted(imported & HEAVY)
