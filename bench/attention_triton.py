"""Attention forward on a CUDA GPU: the Triton kernel (`rsinfer.kernels.attention`) against PyTorch's SDPA.

Usage:
    .venv/bin/python bench/attention_triton.py [--repeats 30] [--quick]

Only meaningful on a GPU: without a CUDA device it says so and exits (the Triton interpreter is a correctness tool,
thousands of times slower than any real kernel). Candidates, per shape and dtype, on the same inputs:
- ``triton``: `rsinfer.kernels.attention` (autotuned once during warm-up; q/k/v strided views of one packed
  projection, as a transformer produces them).
- ``sdpa-flash`` / ``sdpa-efficient``: `F.scaled_dot_product_attention` restricted to that backend (skipped where the
  backend rejects the shape or dtype).
- ``sdpa-math``: the unfused softmax(q kᵀ) v path, the eager baseline.

Times come from CUDA events around each call: warm-up first (compilation and autotuning excluded), then the median
and the spread (min–max) of `--repeats` runs, round-robin across candidates. FLOPs = 4·B·heads·N·M·D; the achieved
TFLOP/s is set against the dense GEMM rate of the same dtype measured in the same run (8192³ `torch.matmul`). Each
output's relative L2 error against the float32 reference is reported. JSON lines go to bench/attention_triton.jsonl.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

ROOT = Path(__file__).resolve().parents[1]
SHAPES = [  # (B, heads, N, D): COP-GEN-Beta-like token counts (4 + 4·256, 4 + 4·1024) and wider heads
    (8, 12, 1028, 64),
    (2, 16, 4100, 64),
    (4, 16, 1028, 128),
    (1, 20, 4100, 72),
]
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def cuda_times(fn: Callable[[], object], repeats: int) -> list[float]:
    """Seconds per call, one CUDA-event pair per call."""
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return times


def gemm_tflops(dtype: torch.dtype, repeats: int) -> float:
    n = 8192
    a, b = torch.randn(n, n, device="cuda", dtype=dtype), torch.randn(n, n, device="cuda", dtype=dtype)
    for _ in range(3):
        a @ b
    return 2 * n ** 3 / statistics.median(cuda_times(lambda: a @ b, repeats)) / 1e12


def candidates(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> dict[str, Callable[[], torch.Tensor]]:
    from rsinfer.kernels import attention

    def sdpa(backend: SDPBackend) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            with sdpa_kernel([backend]):
                return F.scaled_dot_product_attention(q, k, v)
        return run

    return {"triton": lambda: attention(q, k, v), "sdpa-flash": sdpa(SDPBackend.FLASH_ATTENTION),
            "sdpa-efficient": sdpa(SDPBackend.EFFICIENT_ATTENTION), "sdpa-math": sdpa(SDPBackend.MATH)}


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.double() - ref.double()).norm() / ref.double().norm())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="first shape, bf16 only")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench/attention_triton.py: no CUDA device here; the Triton kernels can only be timed on a GPU "
              "(the interpreter checks correctness, not speed). Nothing measured.")
        return 0

    device = torch.cuda.get_device_name()
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    shapes, dtypes = (SHAPES[:1], ["bf16"]) if args.quick else (SHAPES, list(DTYPES))
    gemm = {name: gemm_tflops(DTYPES[name], args.repeats) for name in dtypes}
    rows = []
    for (batch, heads, n, d), dtype_name in [(s, t) for s in shapes for t in dtypes]:
        dtype = DTYPES[dtype_name]
        qkv = torch.randn(batch, n, 3, heads, d, device="cuda", dtype=dtype)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 × (B, heads, N, D) strided views
        ref = torch.softmax(q.double() @ k.double().transpose(-1, -2) * d ** -0.5, dim=-1) @ v.double()
        flops = 4 * batch * heads * n * n * d
        runnable, errors = {}, {}
        for name, fn in candidates(q, k, v).items():
            try:
                for _ in range(3):  # warm-up: compilation, autotuning, allocator
                    out = fn()
                torch.cuda.synchronize()
            except (RuntimeError, ValueError) as err:  # e.g. an SDPA backend that rejects this shape/dtype
                print(f"  skip {name} {dtype_name} {(batch, heads, n, d)}: {str(err).splitlines()[0][:100]}")
                continue
            runnable[name], errors[name] = fn, relative_error(out, ref)
        times: dict[str, list[float]] = {name: [] for name in runnable}
        for _ in range(args.repeats):  # round-robin, so clock and thermal drift hit every candidate alike
            for name, fn in runnable.items():
                times[name] += cuda_times(fn, 1)
        base = statistics.median(times["sdpa-math"]) if "sdpa-math" in times else None
        for name, ts in times.items():
            median = statistics.median(ts)
            rows.append(dict(bench="attention_triton", date=date, device=device, shape=[batch, heads, n, d],
                             dtype=dtype_name, candidate=name, median_ms=median * 1e3, min_ms=min(ts) * 1e3,
                             max_ms=max(ts) * 1e3, tflops=flops / median / 1e12, gemm_tflops=gemm[dtype_name],
                             speedup_vs_math=base / median if base else None, rel_err=errors[name]))

    with open(ROOT / "bench" / "attention_triton.jsonl", "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    print(f"\n{device}, {date}; dense GEMM: " + ", ".join(f"{k} {v:.0f} TFLOP/s" for k, v in gemm.items()))
    print(f"{'shape (B,h,N,D)':<20} {'dtype':<5} {'candidate':<15} {'median ms':>10} {'min–max ms':>17} "
          f"{'TFLOP/s':>8} {'% GEMM':>7} {'vs math':>8} {'rel err':>9}")
    for r in rows:
        speedup = f"{r['speedup_vs_math']:.2f}x" if r["speedup_vs_math"] else "-"
        share = 100 * r["tflops"] / r["gemm_tflops"]
        print(f"{str(tuple(r['shape'])):<20} {r['dtype']:<5} {r['candidate']:<15} {r['median_ms']:>10.3f} "
              f"{r['min_ms']:>8.3f}–{r['max_ms']:<8.3f} {r['tflops']:>8.1f} {share:>6.0f}% {speedup:>8} "
              f"{r['rel_err']:>9.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
