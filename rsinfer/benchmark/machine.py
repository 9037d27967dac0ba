"""What the machine can do now: reference workloads whose rates a bench measures in its own rounds, and the allocator
state every timing assumes.

Achieved rates mean something only against what this machine reaches on the same kind of work at the same moment,
with the same threads and dtype (GUIDE §7), so a bench times these workloads as candidates of its own comparison
(`rsinfer.benchmark.comparison`) and divides:

- `gemm(m, k, n, dtype, path)`: y = x·Wᵀ + b with x (m, k), W (n, k): 2·m·k·n FLOPs per product. ``aten`` is
  `F.linear` (what eager models call: MKL for float32, oneDNN for bfloat16 on x86); ``onednn-prepacked`` is a
  `torch.utils.mkldnn` Linear whose weight oneDNN reordered once (what inductor's freezing produces).
- `convolution(channels, size, kernel)`: a same-padded k×k convolution, C → C channels on a size² map, channels-last:
  2·C²·k²·size² FLOPs.

`settle_allocator()` frees one 16 MiB block before anything is timed. glibc serves requests above its mmap threshold
(128 KiB at start) with fresh mmap'd pages, which fault on first touch every call; freeing an mmap'd block raises the
threshold to its size (up to glibc's 32 MiB cap on the dynamic threshold), after which such temporaries come from the
heap. Any model run does this on its own sooner or later; settling first keeps the order of candidates from mattering.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
import torch.utils.mkldnn  # not loaded by `import torch`

from rsinfer.benchmark.scenarios import Call

GemmPath = Literal["aten", "onednn-prepacked"]
GEMM_PATHS: tuple[str, ...] = get_args(GemmPath)
SETTLE_BYTES = 16 * 2**20  # under glibc's 32 MiB cap on the dynamic mmap threshold


@dataclass(frozen=True)
class Workload:
    """A call whose floating-point operations are known (it returns its last result), named for tables."""

    name: str
    call: Call
    flops: int


def settle_allocator() -> None:
    """Allocate and free one 16 MiB block (see the module docstring)."""
    torch.empty(SETTLE_BYTES, dtype=torch.uint8)


def gemm(m: int, k: int, n: int, dtype: torch.dtype = torch.float32, path: GemmPath = "aten", calls: int = 1,
         seed: int = 0) -> Workload:
    """`calls` products (m, k) · (k, n) + bias per call (several calls per round steady a short product's time)."""
    if path not in GEMM_PATHS:
        raise ValueError(f"unknown GEMM path {path!r}; choose one of {GEMM_PATHS}")
    if min(m, k, n, calls) < 1:
        raise ValueError(f"GEMM sizes and calls must be >= 1, got m={m}, k={k}, n={n}, calls={calls}")
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(m, k, generator=generator).to(dtype)
    weight, bias = torch.randn(n, k, generator=generator) / k**0.5, torch.randn(n, generator=generator)
    if path == "aten":
        weight, bias = weight.to(dtype), bias.to(dtype)

        def product(inputs: torch.Tensor) -> torch.Tensor:
            return F.linear(inputs, weight, bias)
    else:
        linear = torch.nn.Linear(k, n)
        with torch.no_grad():
            linear.weight.copy_(weight)
            linear.bias.copy_(bias)
        product = torch.utils.mkldnn.to_mkldnn(linear.eval(), dtype)

    def call() -> torch.Tensor:
        with torch.no_grad():
            for _ in range(calls - 1):
                product(x)
            return product(x)

    dtype_name = str(dtype).removeprefix("torch.")
    return Workload(f"gemm {m}x{k}x{n} {dtype_name} {path}", call, 2 * m * k * n * calls)


def convolution(channels: int, size: int, kernel: int = 3, dtype: torch.dtype = torch.float32,
                seed: int = 0) -> Workload:
    """One same-padded `kernel`² convolution, `channels` → `channels` on a (1, C, size, size) channels-last map."""
    if min(channels, size, kernel) < 1 or kernel % 2 == 0:
        raise ValueError(f"channels and size must be >= 1 and kernel odd, got {channels}, {size}, {kernel}")
    generator = torch.Generator().manual_seed(seed)
    layout = torch.channels_last
    x = torch.randn(1, channels, size, size, generator=generator).to(dtype).contiguous(memory_format=layout)
    weight = (torch.randn(channels, channels, kernel, kernel, generator=generator) / (channels * kernel**2) ** 0.5)
    weight = weight.to(dtype).contiguous(memory_format=layout)

    def call() -> torch.Tensor:
        with torch.no_grad():
            return F.conv2d(x, weight, padding=kernel // 2)

    dtype_name = str(dtype).removeprefix("torch.")
    return Workload(f"conv {kernel}x{kernel} {channels}->{channels} @{size}² {dtype_name} channels-last", call,
                    2 * channels * channels * kernel * kernel * size * size)
