"""The backend table: which implementation of an op runs, and why.

Backends:
- ``reference``: pure PyTorch in float32 math (`rsinfer.ops.reference`), always available; the specification.
- ``triton``: the Triton kernels in `rsinfer.kernels`; needs a CUDA device, or ``TRITON_INTERPRET=1`` for CPU tensors
  (the interpreter: exact but slow, used by the tests).
- ``ext``: the compiled extension `rsinfer._C` (C++ with OpenMP on CPU), registered as ``torch.ops.rsinfer.*``;
  attention on CPU uses ATen's fused scaled-dot-product kernel, the fastest correct CPU attention we have.
- ``auto``: per call, the fastest available backend for the tensors' device (CUDA: triton; CPU: ext), else reference.
  Never ext for CUDA tensors: the extension's CUDA sources are compile-checked, not linked.
  It logs once per device which backend it picked and why. An explicitly requested backend that cannot run raises.

The selection lives in a `ContextVar`, so `use_backend` is safe across threads and asyncio tasks.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import os
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import get_args

import torch

from rsinfer.ops.names import BACKENDS, OPS, Backend


_log = logging.getLogger("rsinfer.ops")
_selected: ContextVar[str] = ContextVar("rsinfer_backend", default="auto")
_auto_announced: set[str] = set()


class BackendUnavailableError(RuntimeError):
    """An explicitly requested backend cannot run here (the message says why)."""


@dataclass(frozen=True)
class BackendStatus:
    name: str
    available: bool
    reason: str


def _probe_triton() -> BackendStatus:
    try:
        import triton  # noqa: F401  (probe only)
    except ImportError as err:
        return BackendStatus("triton", False, f"triton is not installed ({err}); pip install 'rsinfer[triton]'")
    if os.environ.get("TRITON_INTERPRET") == "1":
        return BackendStatus("triton", True, "Triton interpreter (TRITON_INTERPRET=1): CPU tensors, slow, for testing")
    if torch.cuda.is_available():
        return BackendStatus("triton", True, f"CUDA device {torch.cuda.get_device_name()}")
    return BackendStatus("triton", False,
                         "no CUDA device (set TRITON_INTERPRET=1 to run the kernels in the interpreter)")


def _probe_ext() -> BackendStatus:
    try:
        _load_table("ext")
        from rsinfer.ops.ext import build_info
    except ImportError as err:  # not built, built for another torch (rsinfer.ops.ext says which), or not loadable
        if isinstance(err, ModuleNotFoundError) and err.name == "rsinfer._C":
            return BackendStatus("ext", False, "the compiled extension rsinfer._C is not built; run `make build`")
        _log.warning("%s", err)  # built but unusable here: say so once, even when `auto` falls back quietly
        return BackendStatus("ext", False, str(err))
    info = build_info()
    return BackendStatus("ext", True, f"rsinfer._C: {info['simd_selected']} kernels (built {info['simd_compiled']}), "
                                      f"{info['threads']} OpenMP threads, {info['compiler']}, torch {info['torch']}; "
                                      f"CUDA objects: {info['cuda_objects']}")


@functools.cache
def backend_status(name: str) -> BackendStatus:
    """Whether `name` can run here, with the reason (cached: availability does not change within a process)."""
    if name == "reference":
        return BackendStatus("reference", True, "pure PyTorch, float32 math (the specification)")
    if name == "triton":
        return _probe_triton()
    if name == "ext":
        return _probe_ext()
    raise ValueError(f"unknown backend {name!r}; choose one of {get_args(Backend)}")


def backend_statuses() -> list[BackendStatus]:
    return [backend_status(name) for name in BACKENDS]


_tables: dict[str, dict[str, Callable]] = {}


def _load_table(name: str) -> dict[str, Callable]:
    """The op table of backend `name`, imported on first use (ImportError when it cannot be imported)."""
    if name not in _tables:
        module = {"reference": "rsinfer.ops.reference", "triton": "rsinfer.kernels", "ext": "rsinfer.ops.ext"}[name]
        mod = importlib.import_module(module)
        _tables[name] = {op: getattr(mod, op) for op in OPS}
    return _tables[name]


@contextlib.contextmanager
def use_backend(name: Backend) -> Iterator[None]:
    """Run the enclosed ops on backend `name`; an unavailable explicit backend raises here, not at the first op."""
    if name not in get_args(Backend):
        raise ValueError(f"unknown backend {name!r}; choose one of {get_args(Backend)}")
    if name != "auto":
        status = backend_status(name)
        if not status.available:
            raise BackendUnavailableError(f"backend {name!r} is not available: {status.reason}")
    token = _selected.set(name)
    try:
        yield
    finally:
        _selected.reset(token)


def current_backend() -> str:
    return _selected.get()


def _auto_backend(device_type: str) -> str:
    preferred = ("triton",) if device_type == "cuda" else ("ext",)  # ext's CUDA kernels are not linked
    for name in preferred:
        if backend_status(name).available:
            chosen, why = name, backend_status(name).reason
            break
    else:
        chosen = "reference"
        why = "; ".join(f"{n}: {backend_status(n).reason}" for n in preferred)
    if device_type not in _auto_announced:
        _auto_announced.add(device_type)
        _log.info("backend auto chose %r for %s tensors (%s)", chosen, device_type, why)
    return chosen


# torch.compile cannot trace a ContextVar or the lazy imports; dynamo runs this once while tracing and treats the
# name as a constant, so a compiled region keeps the backend it was compiled under and dispatch costs no graph break.
@torch.compiler.assume_constant_result
def resolve_backend(device_type: str) -> str:
    """The backend that runs ops on `device_type` tensors under the current selection (its table loaded)."""
    name = _selected.get()
    if name == "auto":
        name = _auto_backend(device_type)
    if name == "triton" and device_type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise BackendUnavailableError(f"backend 'triton' runs {device_type} tensors only under TRITON_INTERPRET=1")
    _load_table(name)
    return name


def implementation(op: str, device: torch.device) -> Callable:
    """The function that runs `op` for tensors on `device` under the current backend selection."""
    return _tables[resolve_backend(device.type)][op]
