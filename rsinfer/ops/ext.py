"""The ``ext`` backend: the compiled extension `rsinfer._C` behind the reference signatures.

Importing `rsinfer._C` registers the C++ ops as torch custom ops ``torch.ops.rsinfer.*`` (CPU kernels vectorised with
ATen's Vectorized for the best SIMD level of the CPU, OpenMP-parallel through at::parallel_for, float32 accumulation
for float32, bfloat16 and float16 tensors). This module adds their fake (meta) implementations, so the ops trace under
`torch.compile`, and exposes the six op names of `rsinfer.ops.reference` with the same signatures and math.

`attention` is ATen's fused scaled-dot-product kernel (on CPU the flash kernel
``aten::_scaled_dot_product_flash_attention_for_cpu``: online softmax over key blocks in float32, no N×M score
matrix), the fastest correct CPU attention we have; the extension adds no attention of its own.

torch's C++ API has no stable ABI across releases, so the extension records the torch it was compiled against (version
and C++11 ABI flag, a line in the binary) and this module reads that line from the file before loading it: against a
different torch release or ABI it refuses with one ImportError line saying what to rebuild, instead of failing on
unresolved symbols or registering ops compiled for other headers. Importing this module raises ModuleNotFoundError when
the extension is not built, ImportError when it cannot be loaded; the backend table reports either reason.
"""

from __future__ import annotations

import importlib.util
import mmap
import re
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

__all__ = ["attention", "modulate", "residual_modulate", "add_layernorm", "group_modulate", "accumulate",
           "build_info", "recorded_torch_build", "check_torch_build"]

# The line csrc/module.cpp embeds: "rsinfer-torch-build: torch=<torch.__version__> cxx11_abi=<0|1>", NUL-terminated.
_TORCH_BUILD_LINE = re.compile(rb"rsinfer-torch-build: torch=([^\s\x00]+) cxx11_abi=([01])\x00")
REBUILD_HINT = ("rebuild it against the installed torch: `make build` in a checkout, or "
                "`pip install --no-build-isolation --force-reinstall --no-deps <rsinfer source>`")


def recorded_torch_build(path: str | Path) -> tuple[str, bool]:
    """(torch version, C++11 ABI flag) that the extension binary at `path` was compiled against, read from the file
    without loading it; ImportError when the binary records none (built before rsinfer recorded it)."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        match = _TORCH_BUILD_LINE.search(data)
        recorded = None if match is None else (match[1].decode(), match[2] == b"1")
    if recorded is None:
        raise ImportError(f"rsinfer._C at {path} does not record the torch it was built against; {REBUILD_HINT}")
    return recorded


def _release(version: str) -> str:
    return version.partition("+")[0]  # 2.13.0+cpu → 2.13.0: the local label names the wheel variant, not the C++ API


def check_torch_build(built: tuple[str, bool], installed: tuple[str, bool]) -> None:
    """ImportError (one line) unless `built` and `installed` ((torch version, C++11 ABI flag) each) are the same torch
    release with the same C++ ABI."""
    (built_version, built_abi), (installed_version, installed_abi) = built, installed
    if _release(built_version) != _release(installed_version) or built_abi != installed_abi:
        raise ImportError(f"rsinfer._C was built against torch {built_version} (C++11 ABI {int(built_abi)}) but torch "
                          f"{installed_version} (C++11 ABI {int(installed_abi)}) is installed; {REBUILD_HINT}")


def _load_extension():
    spec = importlib.util.find_spec("rsinfer._C")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the compiled extension rsinfer._C is not built", name="rsinfer._C")
    check_torch_build(recorded_torch_build(spec.origin),
                      (torch.__version__, bool(torch._C._GLIBCXX_USE_CXX11_ABI)))
    from rsinfer import _C  # registers torch.ops.rsinfer.*

    return _C


_C = _load_extension()


def build_info() -> dict[str, str]:
    """How the extension was built: compiler, OpenMP, threads, SIMD levels compiled and selected, CUDA objects, and
    the torch version and C++11 ABI flag it was compiled against."""
    return dict(_C.build_info())


# Fake implementations: shapes, dtypes and layouts of the outputs (contiguous, like the C++ kernels' outputs, except
# group_modulate, which keeps a channels-last input channels-last).
@torch.library.register_fake("rsinfer::modulate")
def _modulate_fake(x, shift, scale, segments=None, eps=1e-6):
    return x.new_empty(x.shape)


@torch.library.register_fake("rsinfer::residual_modulate")
def _residual_modulate_fake(x, y, gate, shift, scale, segments=None, eps=1e-6):
    return x.new_empty(x.shape), x.new_empty(x.shape)


@torch.library.register_fake("rsinfer::add_layernorm")
def _add_layernorm_fake(x, residual, weight, bias, eps=1e-5):
    return x.new_empty(x.shape)


@torch.library.register_fake("rsinfer::group_modulate")
def _group_modulate_fake(x, shift, scale, eps=1e-6):
    channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    return torch.empty_like(x, memory_format=torch.channels_last if channels_last else torch.contiguous_format)


@torch.library.register_fake("rsinfer::accumulate")
def _accumulate_fake(canvas, weight_canvas, tile, tile_weight, row, col):
    return None


def _segment_list(segments: Sequence[int] | None) -> list[int] | None:
    return None if segments is None else [int(s) for s in segments]


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """softmax(q kᵀ · scale) v through ATen's fused scaled-dot-product attention; see `reference.attention`."""
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, segments: Sequence[int] | None = None,
             eps: float = 1e-6) -> torch.Tensor:
    """adaLN LayerNorm(x)·(1+scale)+shift in one pass over x; see `reference.modulate`."""
    return torch.ops.rsinfer.modulate(x, shift, scale, _segment_list(segments), eps)


def residual_modulate(x: torch.Tensor, y: torch.Tensor, gate: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
                      segments: Sequence[int] | None = None, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """x' = x + gate·y and modulate(x') in one pass (y with x's shape and dtype); see `reference.residual_modulate`."""
    residual, out = torch.ops.rsinfer.residual_modulate(x, y, gate, shift, scale, _segment_list(segments), eps)
    return residual, out


def add_layernorm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                  eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm(x + residual)·weight + bias (residual with x's shape and dtype); see `reference.add_layernorm`."""
    return torch.ops.rsinfer.add_layernorm(x, residual, weight, bias, eps)


def group_modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-sample normalisation over C·H·W, then per-channel x̂·(1+scale)+shift; see `reference.group_modulate`."""
    return torch.ops.rsinfer.group_modulate(x, shift, scale, eps)


def accumulate(canvas: torch.Tensor, weight_canvas: torch.Tensor, tile: torch.Tensor, tile_weight: torch.Tensor,
               row: int, col: int) -> None:
    """In place, bounds-checked: canvas[:, r:r+h, c:c+w] += tile·tile_weight, weight_canvas[...] += tile_weight."""
    torch.ops.rsinfer.accumulate(canvas, weight_canvas, tile, tile_weight, row, col)
