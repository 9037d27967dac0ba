"""Side-by-side timings of the rsinfer ops on CPU: the reference in eager mode (what a model does without rsinfer),
the same math as plain torch ops in the input dtype, the `ext` backend, torch.compile of the reference, and for
attention the reference, SDPA's math and flash kernels and `ext`.

Shapes: tokens (B=1, N=1028, D=1024) with per-segment parameters [4, 256, 256, 256, 256]; attention 16 heads of 64;
group_modulate (1, 128, 64, 64); accumulate a (8, 1024, 1024) tile into an (8, 1536, 1536) float32 canvas.
Every candidate is warmed up (compilation excluded), then all candidates of an op run in interleaved rounds; the table
gives the median time, the spread (interquartile range / median), the bytes-moved rate against a memory-copy rate and
(attention) the FLOP rate against a GEMM rate, both measured in this run. JSON lines go to bench/ops.jsonl.

    python bench/ops.py [--quick] [--threads N] [--clock wall|cpu] [--ops OP ...]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from rsinfer import ops
from rsinfer.ops import reference

SEGMENTS = [4, 256, 256, 256, 256]
TOKENS, DIM, HEADS, HEAD_DIM = 1028, 1024, 16, 64
JSONL = Path(__file__).with_suffix(".jsonl")
SPEEDUP_TARGET = {"modulate": 2.0, "residual_modulate": 2.0, "add_layernorm": 2.0}  # ext vs reference eager
COPY_FRACTION_TARGET = {"accumulate": 0.5}  # ext bytes-moved rate vs memory copy
# Side of the square GEMM whose rate attention is set against. bfloat16 is emulated on CPUs without native bf16
# (< 0.5 GFLOP/s here), where 2048³ would take ~10 min of a full run; its rate is then only a label anyway.
GEMM_SIZE = {torch.float32: 2048, torch.bfloat16: 512}
OPS = ("modulate", "residual_modulate", "add_layernorm", "group_modulate", "accumulate", "attention")


@dataclass
class Row:
    op: str
    dtype: str
    candidate: str
    median_ms: float
    spread: float  # interquartile range / median
    gbps: float | None
    copy_fraction: float | None
    gflops: float | None
    gemm_fraction: float | None
    speedup: float | None  # reference eager time / this time
    threads: int


@dataclass
class Case:
    op: str
    candidates: dict[str, Callable[[], object]]
    bytes_moved: int
    flops: int | None = None


# The clock of every measurement: wall time, or the process's CPU time (all threads), which a contended machine
# disturbs far less at one thread (time spent descheduled does not count).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
Clock = Callable[[], float]


def _timed(fn: Callable[[], object], inner: int, clock: Clock) -> float:
    start = clock()
    for _ in range(inner):
        fn()
    return (clock() - start) / inner


def measure(candidates: dict[str, Callable[[], object]], rounds: int, sample_s: float,
            clock: Clock) -> dict[str, list[float]]:
    """Seconds per call of every candidate: warm-up, then `rounds` interleaved samples of about `sample_s` each."""
    inner = {}
    for name, fn in candidates.items():
        fn()  # first call: compilation, allocation, caches
        once = _timed(fn, 1, clock)
        inner[name] = max(1, round(sample_s / max(once, 1e-7)))
        if inner[name] > 1:
            _timed(fn, inner[name], clock)  # warm at the calibrated count
    times: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate the order every round
            times[name].append(_timed(candidates[name], inner[name], clock))
    return times


def _quartile_spread(samples: list[float]) -> tuple[float, float]:
    q1, median, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return median, (q3 - q1) / median


def copy_rate(elements: int, rounds: int, clock: Clock) -> float:
    """Memory-copy rate in GB/s (bytes read + written) of a large float32 Tensor.copy_."""
    src = torch.randn(elements)
    dst = torch.empty_like(src)
    seconds = statistics.median(measure({"copy": lambda: dst.copy_(src)}, rounds, 0.05, clock)["copy"])
    return 2 * src.numel() * src.element_size() / seconds / 1e9


def gemm_rate(n: int, dtype: torch.dtype, rounds: int, clock: Clock) -> float:
    """GEMM rate in GFLOP/s of an n×n×n matmul in `dtype`."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    seconds = statistics.median(measure({"mm": lambda: a @ b}, rounds, 0.05, clock)["mm"])
    return 2 * n ** 3 / seconds / 1e9


def _ext(op: str) -> Callable:
    """The public op dispatched to the ext backend (dispatch overhead included, as models see it)."""
    def call(*args):
        with ops.use_backend("ext"):
            return getattr(ops, op)(*args)
    return call


def _compiled(fn: Callable) -> Callable:
    return torch.compile(fn, dynamic=False)


def cases(dtype: torch.dtype, with_compile: bool) -> list[Case]:
    size = torch.empty((), dtype=dtype).element_size()
    tokens = TOKENS * DIM
    x, y = (torch.randn(1, TOKENS, DIM).to(dtype) for _ in range(2))
    gate, shift, scale = torch.randn(1, len(SEGMENTS), 3 * DIM).to(dtype).chunk(3, dim=-1)  # adaLN chunks
    weight, bias = torch.randn(DIM).to(dtype), torch.randn(DIM).to(dtype)
    params = len(SEGMENTS) * DIM * size

    def eager_modulate(x, shift, scale, segments):
        n = x.shape[1]
        return (F.layer_norm(x, x.shape[-1:], eps=1e-6) * (1 + reference.expand_segments(scale, n, segments))
                + reference.expand_segments(shift, n, segments))

    def eager_residual_modulate(x, y, gate, shift, scale, segments):
        residual = x + reference.expand_segments(gate, x.shape[1], segments) * y
        return residual, eager_modulate(residual, shift, scale, segments)

    def eager_group_modulate(x, shift, scale):
        return F.group_norm(x, 1, eps=1e-6) * (1 + scale[:, :, None, None]) + shift[:, :, None, None]

    fmap = torch.randn(1, 128, 64, 64).to(dtype)
    fshift, fscale = torch.randn(1, 256).to(dtype).chunk(2, dim=1)
    canvas, weight_canvas = torch.randn(8, 1536, 1536), torch.rand(1536, 1536)
    tile, tile_weight = torch.randn(8, 1024, 1024).to(dtype), torch.rand(1024, 1024)
    q, k, v = torch.randn(1, TOKENS, 3, HEADS, HEAD_DIM).to(dtype).permute(2, 0, 3, 1, 4).unbind(0)

    def sdpa(backend: SDPBackend) -> Callable[[], torch.Tensor]:
        def call():
            with sdpa_kernel([backend]):
                return F.scaled_dot_product_attention(q, k, v)
        return call

    def ops_case(op: str, args: tuple, eager: Callable | None, bytes_moved: int, flops: int | None = None) -> Case:
        ref_fn = getattr(reference, op)
        candidates = {"reference eager": lambda: ref_fn(*args)}
        if eager is not None:
            candidates["torch eager (dtype)"] = lambda: eager(*args)
        candidates["ext"] = lambda: _ext(op)(*args)
        if with_compile:
            compiled = _compiled(ref_fn)
            candidates["compile(reference)"] = lambda: compiled(*args)
        return Case(op, candidates, bytes_moved, flops)

    tile_pixels = tile.shape[1] * tile.shape[2]
    attention = Case("attention", {
        "reference eager": lambda: reference.attention(q, k, v),
        "sdpa math": sdpa(SDPBackend.MATH),
        "sdpa flash": sdpa(SDPBackend.FLASH_ATTENTION),
        "ext": lambda: _ext("attention")(q, k, v),
    }, bytes_moved=4 * q.numel() * size, flops=4 * HEADS * TOKENS * TOKENS * HEAD_DIM)
    return [
        ops_case("modulate", (x, shift, scale, SEGMENTS), eager_modulate, 2 * tokens * size + 2 * params),
        ops_case("residual_modulate", (x, y, gate, shift, scale, SEGMENTS), eager_residual_modulate,
                 4 * tokens * size + 3 * params),
        ops_case("add_layernorm", (x, y, weight, bias, 1e-5),
                 lambda x, r, w, b, eps: F.layer_norm(x + r, (DIM,), w, b, eps), 3 * tokens * size + 2 * DIM * size),
        ops_case("group_modulate", (fmap, fshift, fscale), eager_group_modulate, 2 * fmap.numel() * size),
        # tile read, canvas window read + written (float32), tile weight read, weight window read + written.
        ops_case("accumulate", (canvas, weight_canvas, tile, tile_weight, 100, 300), None,
                 tile.numel() * (size + 8) + tile_pixels * 12),
        attention,
    ]


def settle_allocator() -> None:
    """Puts glibc's malloc in the state of a process that has already run a model, whatever ops are measured.

    glibc serves large blocks with mmap, which the kernel zero-fills page by page on first touch, until a freed mmap'd
    block raises its threshold (up to 32 MiB). Until then every 4 MiB temporary of the eager candidates costs ~1000 page
    faults per call, and the table would depend on which cases happened to run first.
    """
    torch.empty(1 << 22)  # 16 MiB, mmap'd and freed at once: later blocks up to 16 MiB come from the heap


def run(quick: bool, clock: Clock, only: tuple[str, ...] = OPS) -> tuple[list[Row], float, dict[str, float]]:
    settle_allocator()
    rounds = 3 if quick else 15
    sample_s = 0.02 if quick else 0.08
    threads = torch.get_num_threads()
    copy_gbps = copy_rate((1 << 24) if quick else (1 << 26), rounds, clock)
    rows, gemm = [], {}
    for dtype in (torch.float32, torch.bfloat16):
        dname = str(dtype).removeprefix("torch.")
        if "attention" in only:  # the only op with a FLOP rate to set against the GEMM rate
            gemm[dname] = gemm_rate(min(1024 if quick else 2048, GEMM_SIZE[dtype]), dtype, rounds, clock)
        for case in (c for c in cases(dtype, with_compile=not quick) if c.op in only):
            times = measure(case.candidates, rounds, sample_s, clock)
            ref_median = statistics.median(times["reference eager"])
            for name, samples in times.items():
                median, spread = _quartile_spread(samples)
                gbps = case.bytes_moved / median / 1e9
                gflops = case.flops / median / 1e9 if case.flops else None
                rows.append(Row(case.op, dname, name, median * 1e3, spread, gbps, gbps / copy_gbps, gflops,
                                gflops / gemm[dname] if gflops else None, ref_median / median, threads))
            print(f"measured {case.op} {dname}: " + ", ".join(f"{r.candidate} {r.median_ms:.3f} ms" for r in rows
                                                             if r.op == case.op and r.dtype == dname),
                  file=sys.stderr, flush=True)
    return rows, copy_gbps, gemm


def _fmt(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def table(rows: list[Row]) -> str:
    lines = ["| op | dtype | candidate | median ms | spread (IQR) | GB/s | % copy | GFLOP/s | % GEMM | vs reference |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.op} | {r.dtype} | {r.candidate} | {r.median_ms:.3f} | ±{100 * r.spread:.0f}% | "
                     f"{_fmt(r.gbps, '.1f')} | {_fmt(r.copy_fraction and 100 * r.copy_fraction, '.0f')} | "
                     f"{_fmt(r.gflops, '.1f')} | {_fmt(r.gemm_fraction and 100 * r.gemm_fraction, '.0f')} | "
                     f"{r.speedup:.2f}x |")
    return "\n".join(lines)


def targets(rows: list[Row]) -> list[str]:
    verdicts = []
    for r in rows:
        if r.candidate != "ext":
            continue
        if r.op in SPEEDUP_TARGET:
            goal = SPEEDUP_TARGET[r.op]
            verdicts.append(f"{'MET' if r.speedup >= goal else 'NOT MET'}: ext {r.op} {r.dtype} is {r.speedup:.2f}x "
                            f"the reference eager (target >= {goal}x)")
        if r.op in COPY_FRACTION_TARGET:
            goal = COPY_FRACTION_TARGET[r.op]
            verdicts.append(f"{'MET' if r.copy_fraction >= goal else 'NOT MET'}: ext {r.op} {r.dtype} moves "
                            f"{r.gbps:.1f} GB/s = {100 * r.copy_fraction:.0f}% of copy (target >= {100 * goal:.0f}%)")
    return verdicts


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds and no torch.compile (make run)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own choice)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time, or process CPU time (steadier on a busy machine at --threads 1)")
    parser.add_argument("--ops", nargs="+", choices=OPS, default=OPS, metavar="OP",
                        help=f"only these ops (default: all of {', '.join(OPS)})")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with ops.use_backend("ext"):
        pass  # fail early, with the reason, when the extension is not built

    rows, copy_gbps, gemm = run(args.quick, CLOCKS[args.clock], tuple(args.ops))
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    _write_atomically(JSONL, "".join(json.dumps({"date": stamp, "quick": args.quick, "clock": args.clock,
                                                 **asdict(r)}) + "\n" for r in rows))
    print(f"{stamp}; {platform.processor() or platform.machine()}; torch {torch.__version__}; "
          f"{torch.get_num_threads()} threads; {args.clock} clock; copy {copy_gbps:.1f} GB/s; "
          + "; ".join(f"GEMM {d} {g:.0f} GFLOP/s" for d, g in gemm.items()))
    print(table(rows))
    print("\n".join(targets(rows)))


if __name__ == "__main__":
    main()
