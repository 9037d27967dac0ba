"""`compare`: any callables timed side by side, the loop every bench/ script shares.

    comparison = compare({"eager": run_eager, "compiled": run_compiled, "gemm": gemm(2048, 2048, 2048).call},
                         RunLength(count=5), warmup=1, clock="wall")
    comparison["compiled"].median, comparison.speedup("compiled", over="eager"), comparison.pair_ratios(...)

    each candidate: `warmup` calls, timed apart (the first includes lazy compilation, engine builds, caches)
      ► rounds: one call of each candidate in turn (`scenarios.single_stream`), until each has its count or
        busy time (`RunLength`)
      ► per candidate: the calls' times on the chosen clock and, alongside, their process CPU time

Interleaving is what makes ratios trustworthy on a shared machine: a load change hits every candidate of a round
alike, where between processes the same kernel varies by ±30 %. Call k of one candidate and call k of another ran in
the same round, so `pair_ratios` gives one ratio per round: load that drifts between rounds cancels in each ratio,
and their median is robust to the rounds where it changed within one.

Clocks (`ClockName`, or any `Clock`): ``wall`` (`time.perf_counter`, what a user waits) or ``cpu``
(`time.process_time`: the process's CPU time over all its threads; time spent descheduled does not count, so a loaded
machine disturbs it far less at one thread, while at several threads OpenMP's spinning at barriers counts). The CPU
time of every call is recorded as well, whichever clock ranks the candidates.

Setup that happens once (building an engine, exporting a graph) is timed with `timed` and reported by the caller.
"""

from __future__ import annotations

import datetime
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, get_args

from rsinfer.benchmark.latency import LatencySummary
from rsinfer.benchmark.report import COMPARE_SCHEMA_ID, environment_block, process_block
from rsinfer.benchmark.scenarios import SYSTEM_CLOCK, Call, Clock, RunLength, single_stream, warm_up

ClockName = Literal["wall", "cpu"]
CLOCK_NAMES: tuple[str, ...] = get_args(ClockName)
T = TypeVar("T")


class ProcessClock:
    """The process's CPU time (`time.process_time`, all threads); sleeping passes wall time, which this clock does
    not count."""

    def now(self) -> float:
        return time.process_time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


PROCESS_CLOCK = ProcessClock()


def clock_named(clock: ClockName | Clock) -> tuple[str, Clock]:
    """The name and the clock: "wall", "cpu", or any `Clock` (named by its class: tests pass simulated ones)."""
    if not isinstance(clock, str):
        return type(clock).__name__, clock
    if clock not in CLOCK_NAMES:
        raise ValueError(f"unknown clock {clock!r}; choose one of {CLOCK_NAMES}")
    return clock, SYSTEM_CLOCK if clock == "wall" else PROCESS_CLOCK


def timed(make: Callable[[], T], clock: ClockName | Clock = "wall") -> tuple[T, float]:
    """`make()` and the seconds it took on `clock`: for one-off setup (engine builds, exports, first calls)."""
    _, source = clock_named(clock)
    start = source.now()
    result = make()
    return result, source.now() - start


@dataclass(frozen=True)
class Timings:
    """One candidate: its warm-up calls and its measured calls (seconds, in the order run; call k ran in round k),
    on the comparison's clock, and the measured calls' process CPU time."""

    name: str
    warmup: tuple[float, ...]
    seconds: tuple[float, ...]
    cpu_seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def min(self) -> float:
        return min(self.seconds)

    @property
    def max(self) -> float:
        return max(self.seconds)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_seconds)

    @property
    def summary(self) -> LatencySummary:
        return LatencySummary.of(self.seconds)

    def rate(self, work: float) -> float:
        """`work` per second at the median time (e.g. FLOPs per call → FLOP/s)."""
        return work / self.median


@dataclass(frozen=True)
class Comparison:
    """The candidates' timings, in the order given, and how they were taken."""

    clock: str
    length: RunLength
    warmup: int
    timings: tuple[Timings, ...]

    def __getitem__(self, name: str) -> Timings:
        for timing in self.timings:
            if timing.name == name:
                return timing
        raise KeyError(f"no candidate {name!r}; the candidates are {[t.name for t in self.timings]}")

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.timings]

    def speedup(self, name: str, over: str) -> float:
        """How many times faster `name` is than `over`: the ratio of their medians."""
        return self[over].median / self[name].median

    def pair_ratios(self, name: str, over: str, cpu: bool = False) -> list[float]:
        """`name`'s time / `over`'s time round by round (calls that ran in the same round), sorted."""
        a, b = self[name], self[over]
        first, second = (a.cpu_seconds, b.cpu_seconds) if cpu else (a.seconds, b.seconds)
        return sorted(x / y for x, y in zip(first, second))

    def document(self, bench: str, table: Sequence[Mapping[str, Any]] = (), *, command: Sequence[str] | None = None,
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The JSON document (schema ``rsinfer.compare/1``, `rsinfer.benchmark.report.COMPARE_SCHEMA`): the raw
        timings, their statistics, the bench's own table rows and values, the process and the environment."""
        return {
            "schema": COMPARE_SCHEMA_ID,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "bench": bench,
            "command": list(command) if command is not None else None,
            "clock": self.clock,
            "warmup": self.warmup,
            "count": self.length.count,
            "duration_s": self.length.duration,
            "candidates": [{"name": t.name, "warmup_ms": [s * 1e3 for s in t.warmup],
                            "times_ms": [s * 1e3 for s in t.seconds], "cpu_ms": [s * 1e3 for s in t.cpu_seconds],
                            "latency_ms": t.summary.milliseconds(), "min_ms": t.min * 1e3}
                           for t in self.timings],
            "table": [dict(row) for row in table],
            "extra": dict(extra or {}),
            "process": process_block(),
            "environment": environment_block(),
        }


def _with_cpu_time(call: Call, spent: list[float]) -> Call:
    def measured() -> object:
        start = time.process_time()
        try:
            return call()
        finally:
            spent.append(time.process_time() - start)
    return measured


def compare(candidates: Mapping[str, Call], length: RunLength, *, warmup: int = 1,
            clock: ClockName | Clock = "wall") -> Comparison:
    """Time `candidates` (name → call without arguments) side by side; see the module docstring."""
    if not candidates:
        raise ValueError("no candidates to compare")
    if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
        raise ValueError(f"warmup must be an integer >= 0, got {warmup!r}")
    name, source = clock_named(clock)
    calls = list(candidates.values())
    warmups = warm_up(calls, warmup, source)
    spent: list[list[float]] = [[] for _ in calls]
    samples = single_stream([_with_cpu_time(call, mine) for call, mine in zip(calls, spent)], length, source)
    return Comparison(name, length, warmup, tuple(
        Timings(name, tuple(warm), tuple(sample.latencies), tuple(cpu))
        for name, warm, sample, cpu in zip(candidates, warmups, samples, spent)))
