"""Argument checks shared by every launcher in `rsinfer.kernels`.

Kernels cannot check their inputs: `tl.device_assert` is a no-op under the interpreter and an out-of-bounds load
returns garbage silently (GUIDE §4). So every launcher checks shapes, dtypes and devices here, in Python, and raises a
`ValueError` that names the bad value and what is allowed.
"""

from __future__ import annotations

import os

import torch

# Triton decides between the compiler and the interpreter when a kernel is decorated, i.e. when this package is
# imported: TRITON_INTERPRET=1 must be set before that (the tests set it before importing rsinfer).
INTERPRETING: bool = os.environ.get("TRITON_INTERPRET") == "1"

FLOAT_DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.float16, torch.bfloat16)


def check_float(name: str, tensor: torch.Tensor) -> None:
    """`tensor` is a float32, float16 or bfloat16 tensor."""
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dtype not in FLOAT_DTYPES:
        allowed = ", ".join(map(str, FLOAT_DTYPES))
        raise ValueError(f"{name} has dtype {tensor.dtype}; the Triton kernels take {allowed}")


def check_same_dtype(**tensors: torch.Tensor) -> None:
    """All `tensors` share one dtype."""
    dtypes = {name: t.dtype for name, t in tensors.items()}
    if len(set(dtypes.values())) > 1:
        raise ValueError(f"dtypes must match: {', '.join(f'{n} {d}' for n, d in dtypes.items())}")


def check_device(**tensors: torch.Tensor) -> None:
    """All `tensors` sit on one device the kernels can run on: CUDA, or any device under the interpreter."""
    devices = {name: t.device for name, t in tensors.items()}
    if len(set(devices.values())) > 1:
        raise ValueError(f"tensors must share one device: {', '.join(f'{n} on {d}' for n, d in devices.items())}")
    device = next(iter(devices.values()))
    if device.type != "cuda" and not INTERPRETING:
        raise ValueError(f"tensors are on {device}; the Triton kernels need CUDA tensors, or TRITON_INTERPRET=1 set "
                         "before rsinfer.kernels is imported (the interpreter runs them on CPU tensors)")


def check_rank(name: str, tensor: torch.Tensor, rank: int, layout: str) -> None:
    """`tensor` has `rank` dimensions, described by `layout` (e.g. "(B, N, D)") in the error."""
    if tensor.dim() != rank:
        raise ValueError(f"{name} must be {layout}, got shape {tuple(tensor.shape)}")
