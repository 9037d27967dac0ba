"""`compare` (any callables side by side) on a simulated clock and on the real wall and CPU clocks; its JSON document
against the schema; the reference workloads' FLOPs (counted by torch's own FLOP counter) and results; and that
settling the allocator makes glibc serve multi-MiB blocks from the heap (observed through mallinfo2 in a fresh
process)."""

from __future__ import annotations

import ctypes
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from tests.benchmark.simulated_clock import SimulatedClock
from torch.utils.flop_counter import FlopCounterMode

from rsinfer.benchmark import COMPARE_SCHEMA, RunLength, append_json_line, compare, convolution, gemm, timed


def test_candidates_alternate_call_by_call_after_their_warm_up():
    clock, order = SimulatedClock(), []
    services = {"fast": [0.9, 0.1, 0.2, 0.1, 0.3], "slow": [2.0, 0.5, 0.4, 0.6, 0.5]}  # the first call: warm-up

    def candidate(name: str):
        def call() -> None:
            order.append(name)
            clock.time += services[name][sum(n == name for n in order) - 1]
        return call

    result = compare({"fast": candidate("fast"), "slow": candidate("slow")}, RunLength(count=4), warmup=1,
                     clock=clock)
    assert order == ["fast", "slow"] + ["fast", "slow"] * 4  # warm-ups first, then round by round
    fast, slow = result["fast"], result["slow"]
    assert fast.warmup == pytest.approx((0.9,)) and slow.warmup == pytest.approx((2.0,))
    assert fast.seconds == pytest.approx((0.1, 0.2, 0.1, 0.3)) and slow.seconds == pytest.approx((0.5, 0.4, 0.6, 0.5))
    assert fast.median == pytest.approx(0.15) and (fast.min, fast.max) == pytest.approx((0.1, 0.3))
    assert result.speedup("fast", over="slow") == pytest.approx(0.5 / 0.15)
    assert result.pair_ratios("fast", "slow") == pytest.approx(sorted([0.1 / 0.5, 0.2 / 0.4, 0.1 / 0.6, 0.3 / 0.5]))
    assert fast.rate(3.0) == pytest.approx(3.0 / 0.15)
    assert fast.summary.p90 == pytest.approx(0.3)  # nearest rank: the 4th of 4
    assert result.names == ["fast", "slow"] and result.clock == "SimulatedClock"
    with pytest.raises(KeyError, match="no candidate 'medium'"):
        result["medium"]


def test_a_duration_gives_each_candidate_its_own_busy_time():
    clock = SimulatedClock()
    result = compare({"a": clock.service(0.125), "b": clock.service(0.5)}, RunLength(duration=1.0), warmup=0,
                     clock=clock)  # binary fractions: busy times add up exactly
    assert (len(result["a"].seconds), len(result["b"].seconds)) == (8, 2)
    assert result["a"].warmup == ()


def test_wall_and_cpu_clocks_tell_sleeping_from_computing():
    def spin() -> None:
        end = time.process_time() + 0.02
        while time.process_time() < end:
            pass

    def sleep() -> None:
        time.sleep(0.02)

    wall = compare({"spin": spin, "sleep": sleep}, RunLength(count=3), warmup=0, clock="wall")
    assert min(wall["sleep"].seconds) >= 0.02 and max(wall["sleep"].cpu_seconds) < 0.01
    assert min(wall["spin"].cpu_seconds) >= 0.02 * 0.99
    cpu = compare({"spin": spin, "sleep": sleep}, RunLength(count=3), warmup=0, clock="cpu")
    assert max(cpu["sleep"].seconds) < 0.01 and min(cpu["spin"].seconds) >= 0.02 * 0.99
    assert cpu.pair_ratios("sleep", "spin")[-1] < 0.5


def test_bad_arguments_name_what_is_allowed():
    with pytest.raises(ValueError, match="unknown clock 'gpu'; choose one of \\('wall', 'cpu'\\)"):
        compare({"a": lambda: None}, RunLength(count=1), clock="gpu")
    with pytest.raises(ValueError, match="warmup must be an integer >= 0, got -1"):
        compare({"a": lambda: None}, RunLength(count=1), warmup=-1)
    with pytest.raises(ValueError, match="no candidates"):
        compare({}, RunLength(count=1))


def test_timed_returns_the_result_and_its_time():
    clock = SimulatedClock()

    def build() -> str:
        clock.time += 2.5
        return "engine"

    assert timed(build, clock) == ("engine", pytest.approx(2.5))


def test_the_document_follows_its_schema_and_keeps_every_call(tmp_path):
    clock = SimulatedClock()
    result = compare({"a": clock.service(0.002), "b": clock.service(0.004)}, RunLength(count=5), warmup=2,
                     clock=clock)
    document = result.document("unit", [{"candidate": "a", "speedup": 2.0}], command=["bench/unit.py"],
                               extra={"flops": 10})
    pytest.importorskip("jsonschema").validate(document, COMPARE_SCHEMA)
    a, b = document["candidates"]
    assert (a["name"], b["name"]) == ("a", "b")
    assert a["times_ms"] == pytest.approx([2.0] * 5) and b["warmup_ms"] == pytest.approx([4.0, 4.0])
    assert a["latency_ms"]["p50"] == pytest.approx(2.0) and b["min_ms"] == pytest.approx(4.0)
    assert (document["count"], document["duration_s"], document["warmup"]) == (5, None, 2)
    assert document["table"] == [{"candidate": "a", "speedup": 2.0}] and document["extra"] == {"flops": 10}
    assert document["environment"]["cpu_model"]
    path = tmp_path / "unit.jsonl"
    append_json_line(path, document)
    append_json_line(path, {"second": 1})
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and lines[1] == '{"second": 1}'


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gemm_flops_are_what_torch_counts_and_both_paths_agree(dtype):
    m, k, n = 37, 53, 29  # not multiples of any block size
    aten = gemm(m, k, n, dtype, "aten", calls=3)
    counter = FlopCounterMode(display=False)
    with counter:
        aten.call()
    assert aten.flops == counter.get_total_flops() == 3 * 2 * m * k * n
    assert aten.name == f"gemm {m}x{k}x{n} {str(dtype)[6:]} aten"
    prepacked = gemm(m, k, n, dtype, "onednn-prepacked")
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    a, b = aten.call(), prepacked.call()
    assert a.shape == (m, n) and a.dtype == b.dtype == dtype
    np.testing.assert_allclose(b.float().numpy(), a.float().numpy(), rtol=tolerance, atol=tolerance)
    with pytest.raises(ValueError, match="unknown GEMM path 'blas'; choose one of \\('aten', 'onednn-prepacked'\\)"):
        gemm(2, 2, 2, path="blas")


def test_convolution_flops_are_what_torch_counts():
    work = convolution(12, 19, 3)
    counter = FlopCounterMode(display=False)
    with counter:
        out = work.call()
    assert work.flops == counter.get_total_flops() == 2 * 12 * 12 * 9 * 19 * 19
    assert out.shape == (1, 12, 19, 19) and out.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="kernel odd"):
        convolution(4, 8, 2)


_MMAPPED_BYTES = """
import ctypes, torch
from rsinfer.benchmark import settle_allocator
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2

def mmapped(mib):
    before = libc.mallinfo2().hblkhd
    block = torch.empty(mib << 20, dtype=torch.uint8)
    return libc.mallinfo2().hblkhd - before

fresh = mmapped(3)  # freeing it raises glibc's threshold to 3 MiB, no further
settle_allocator()
print(fresh, mmapped(12))
"""


def test_settling_moves_multi_mib_blocks_from_mmap_to_the_heap():
    try:
        ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        pytest.skip("glibc ≥ 2.33 (mallinfo2) is needed to observe the allocator")
    done = subprocess.run([sys.executable, "-c", _MMAPPED_BYTES], capture_output=True, text=True, check=True)
    fresh, settled = map(int, done.stdout.split()[-2:])
    assert fresh >= 3 << 20  # a fresh process maps a 3 MiB block (glibc's initial threshold is 128 KiB)
    assert settled == 0  # after settling, a 12 MiB block comes from the heap
