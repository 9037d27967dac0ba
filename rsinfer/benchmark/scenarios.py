"""The MLPerf Inference scenarios as timing loops over candidates (one callable per engine), interleaved.

- **single-stream**: one query (one tile) at a time, the next issued when the previous one finished; the latency of
  each query is what is reported (p50, p90, p99, max).
- **offline**: all the work is available at once; the system runs it in batches as it likes (here: batches of the
  pipeline's batch size); the metric is throughput, work done over time spent.
- **server**: queries (one tile each) arrive by a Poisson process at a target rate, whether or not the system is busy;
  a query's latency runs from its arrival to its completion, queueing included, and the run passes when the p99
  latency is within the bound. The system here is one FIFO server (one stream of tile-function calls, each using
  torch's intra-op threads): a query that arrives while another runs waits for it.

Candidates are interleaved so that a machine whose speed drifts (shared hosts, thermal limits) affects them alike:
single-stream and offline alternate query by query; the server scenario, whose queue needs consecutive queries,
alternates `segments` blocks of queries, each a fresh Poisson stream.

Run length: `count` queries per candidate, or `duration` seconds of each candidate's busy time (at least one query);
a candidate that has run its share drops out of the rotation.
Times come from a `Clock` (monotonic `time.perf_counter` by default; tests pass a simulated one).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, get_args

ScenarioName = Literal["single-stream", "offline", "server"]
SCENARIOS: tuple[str, ...] = get_args(ScenarioName)

Call = Callable[[], object]


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall-clock time: `time.perf_counter` and `time.sleep`."""

    def now(self) -> float:
        return time.perf_counter()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


@dataclass
class Samples:
    """One candidate's queries: latency (seconds) and issue time (seconds from the scenario's start; in the server
    scenario the arrival time) of each, and its busy time."""

    latencies: list[float] = field(default_factory=list)
    issued: list[float] = field(default_factory=list)
    busy: float = 0.0


@dataclass(frozen=True)
class RunLength:
    """`count` queries per candidate, or `duration` seconds of each candidate's busy time."""

    count: int | None = None
    duration: float | None = None

    def __post_init__(self) -> None:
        if (self.count is None) == (self.duration is None):
            raise ValueError(f"give a count or a duration, not {'both' if self.count is not None else 'neither'}")
        if self.count is not None and (not isinstance(self.count, int) or self.count < 1):
            raise ValueError(f"count must be an integer >= 1, got {self.count!r}")
        if self.duration is not None and not self.duration > 0:
            raise ValueError(f"duration must be > 0 seconds, got {self.duration!r}")

    def satisfied(self, samples: Samples) -> bool:
        """One candidate has run its share."""
        if self.count is not None:
            return len(samples.latencies) >= self.count
        return samples.busy >= self.duration and bool(samples.latencies)


def _timed(call: Call, clock: Clock) -> tuple[float, float]:
    start = clock.now()
    call()
    return start, clock.now() - start


def warm_up(calls: Sequence[Call], count: int, clock: Clock = SYSTEM_CLOCK) -> list[list[float]]:
    """`count` calls of each candidate, one candidate after the other, before any measurement; their times (the first
    includes lazy compilation and cache filling), kept apart from the measured ones."""
    return [[_timed(call, clock)[1] for _ in range(count)] for call in calls]


def single_stream(calls: Sequence[Call], length: RunLength, clock: Clock = SYSTEM_CLOCK) -> list[Samples]:
    """One query at a time, candidates alternating query by query."""
    samples = [Samples() for _ in calls]
    origin = clock.now()
    while not all(length.satisfied(mine) for mine in samples):
        for call, mine in zip(calls, samples):
            if length.satisfied(mine):
                continue
            start, latency = _timed(call, clock)
            mine.latencies.append(latency)
            mine.issued.append(start - origin)
            mine.busy += latency
    return samples


def offline(calls: Sequence[Call], length: RunLength, clock: Clock = SYSTEM_CLOCK) -> list[Samples]:
    """Batches back to back (each call is one batch), candidates alternating batch by batch; the same loop as
    single-stream, read as throughput (work per busy second)."""
    return single_stream(calls, length, clock)


def poisson_arrivals(rate: float, count: int, rng: random.Random) -> list[float]:
    """`count` arrival times (seconds from 0) of a Poisson process of `rate` per second: exponential gaps."""
    if not rate > 0:
        raise ValueError(f"the arrival rate must be > 0 queries/s, got {rate!r}")
    arrivals, now = [], 0.0
    for _ in range(count):
        now += rng.expovariate(rate)
        arrivals.append(now)
    return arrivals


def server(calls: Sequence[Call], length: RunLength, rate: float, seed: int = 0, segments: int = 4,
           clock: Clock = SYSTEM_CLOCK) -> list[Samples]:
    """Poisson arrivals at `rate` queries/s served first come, first served; latency = completion − arrival.

    With a duration, each candidate gets ⌈rate · duration⌉ queries. Arrivals are drawn from `seed` (the same schedule
    for every candidate: segment k of each candidate replays the same gaps)."""
    total = length.count if length.count is not None else max(1, math.ceil(rate * length.duration))
    segments = max(1, min(segments, total))
    sizes = [total // segments + (k < total % segments) for k in range(segments)]
    rng = random.Random(seed)
    schedules = [poisson_arrivals(rate, size, rng) for size in sizes]
    samples = [Samples() for _ in calls]
    origin = clock.now()
    for schedule in schedules:
        for call, mine in zip(calls, samples):
            start = clock.now()
            for arrival in schedule:
                wait = start + arrival - clock.now()
                if wait > 0:
                    clock.sleep(wait)
                begun, service = _timed(call, clock)
                mine.latencies.append(begun + service - (start + arrival))
                mine.issued.append(start + arrival - origin)
                mine.busy += service
    return samples
