"""Issue 17, item 2: the extension is built against the installed torch and refuses, with one clear line at import, to
load against a different torch release or C++ ABI (rsinfer/ops/ext.py reads the line csrc/module.cpp embeds)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest
import torch

from tests.conftest import require_backend

MARKER = b"rsinfer-torch-build: torch="


@pytest.fixture
def ext_module():
    require_backend("ext")
    from rsinfer.ops import ext

    return ext


def test_the_built_extension_records_the_installed_torch(ext_module):
    binary = Path(find_spec("rsinfer._C").origin).read_bytes()
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    assert binary.count(MARKER) == 1
    assert MARKER + f"{torch.__version__} cxx11_abi={abi}".encode() + b"\0" in binary
    assert ext_module.recorded_torch_build(find_spec("rsinfer._C").origin) == (torch.__version__, bool(abi))
    assert ext_module.build_info()["torch"] == torch.__version__


def test_recorded_torch_build_reads_the_line_from_any_binary(ext_module, tmp_path):
    binary = tmp_path / "fake.so"
    binary.write_bytes(b"\x7fELF" + bytes(range(256)) * 40 + MARKER + b"2.11.0+cu130 cxx11_abi=0\0" + b"\0\1" * 99)
    assert ext_module.recorded_torch_build(binary) == ("2.11.0+cu130", False)
    binary.write_bytes(b"\x7fELF" + bytes(range(256)) * 40)
    with pytest.raises(ImportError, match=r"fake\.so does not record the torch it was built against"):
        ext_module.recorded_torch_build(binary)


@pytest.mark.parametrize("installed", [("2.13.0+cpu", True), ("2.13.0+cu130", True), ("2.13.0", True)])
def test_the_same_release_and_abi_loads(ext_module, installed):
    ext_module.check_torch_build(("2.13.0+cpu", True), installed)  # the local label names a wheel variant only


@pytest.mark.parametrize("installed", [("2.14.1", True), ("2.13.1+cpu", True), ("2.12.0+cpu", True),
                                       ("2.13.0+cpu", False)])
def test_another_release_or_abi_is_refused_in_one_line(ext_module, installed):
    with pytest.raises(ImportError) as refused:
        ext_module.check_torch_build(("2.13.0+cpu", True), installed)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"rsinfer._C was built against torch 2.13.0+cpu (C++11 ABI 1) but torch {installed[0]} "
                              f"(C++11 ABI {int(installed[1])}) is installed; rebuild it against the installed torch")


_AGAINST_ANOTHER_TORCH = """
import json, logging, sys
import torch
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
torch.__version__ = "2.14.1"  # what a host's newer torch would report
try:
    import rsinfer.ops.ext
    refusal = None
except ImportError as err:
    refusal = str(err)
from rsinfer import ops
from rsinfer.ops.backends import resolve_backend
status = ops.backend_status("ext")
with ops.use_backend("auto"):
    y = ops.add_layernorm(torch.ones(2, 5), torch.zeros(2, 5), torch.ones(5), torch.zeros(5))
print(json.dumps({"refusal": refusal, "loaded": "rsinfer._C" in sys.modules, "ext": [status.available, status.reason],
                  "auto": resolve_backend("cpu"), "sum": float(y.abs().sum())}))
"""


def test_against_another_torch_the_extension_is_not_loaded_and_auto_falls_back(ext_module, tmp_path):
    result = subprocess.run([sys.executable, "-c", _AGAINST_ANOTHER_TORCH], cwd=tmp_path, capture_output=True,
                            text=True, check=True, timeout=300)
    report = json.loads(result.stdout)
    # `auto` fell back to the reference ops; the one warning says why
    assert result.stderr.splitlines() == [f"WARNING rsinfer.ops: {report['refusal']}"]
    assert report["refusal"].startswith(f"rsinfer._C was built against torch {torch.__version__} ")
    assert "but torch 2.14.1 (C++11 ABI" in report["refusal"]
    assert report["loaded"] is False  # refused before dlopen: no ops registered for another torch
    assert report["ext"] == [False, report["refusal"]]
    assert report["auto"] == "reference"
    assert report["sum"] == 0.0  # LayerNorm of constant rows is exactly the bias, 0
