"""Scenario loops on a simulated clock: nearest-rank percentiles, interleaving, run lengths, and server latencies equal
to the FIFO queue's (Lindley's recursion) for Poisson arrivals."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tests.benchmark.simulated_clock import SimulatedClock

from rsinfer.benchmark import LatencySummary, RunLength, percentile, poisson_arrivals
from rsinfer.benchmark.scenarios import offline, server, single_stream, warm_up


@pytest.mark.parametrize("count", [1, 2, 7, 100, 1001])
def test_percentiles_are_nearest_rank(count):
    samples = np.random.default_rng(count).lognormal(size=count).tolist()
    for p in (50, 90, 99, 99.9, 100):
        assert percentile(samples, p) == np.percentile(samples, p, method="inverted_cdf")
    summary = LatencySummary.of(samples)
    assert summary.p50 <= summary.p90 <= summary.p99 <= summary.max == max(samples)
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0 and percentile([3.0, 1.0, 2.0, 4.0], 51) == 3.0
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)


def test_single_stream_alternates_candidates_query_by_query():
    clock = SimulatedClock()
    fast, slow = clock.service(0.002), clock.service(0.005)
    a, b = single_stream([fast, slow], RunLength(count=3), clock)
    assert a.latencies == pytest.approx([0.002] * 3) and b.latencies == pytest.approx([0.005] * 3)
    assert a.issued == pytest.approx([0.0, 0.007, 0.014]) and b.issued == pytest.approx([0.002, 0.009, 0.016])
    assert (a.busy, b.busy) == pytest.approx((0.006, 0.015))


def test_warm_up_runs_each_candidate_apart_before_measuring():
    clock, order = SimulatedClock(), []

    def candidate(name: str, seconds: float):
        def call() -> None:
            order.append(name)
            clock.time += seconds
        return call

    assert warm_up([candidate("a", 0.5), candidate("b", 0.25)], 2, clock) == [[0.5, 0.5], [0.25, 0.25]]
    assert order == ["a", "a", "b", "b"] and clock.time == pytest.approx(1001.5)
    assert warm_up([candidate("a", 0.5)], 0, clock) == [[]]


def test_duration_counts_each_candidates_busy_time():
    clock = SimulatedClock()
    a, b = offline([clock.service(0.1), clock.service(0.25)], RunLength(duration=1.0), clock)
    assert (len(a.latencies), len(b.latencies)) == (10, 4)  # each until its own busy time reaches 1 s
    assert a.busy == pytest.approx(1.0) and b.busy == pytest.approx(1.0)
    assert b.issued[:4] == pytest.approx([0.1, 0.45, 0.8, 1.15])  # interleaved while both run
    with pytest.raises(ValueError, match="give a count or a duration, not both"):
        RunLength(count=3, duration=1.0)
    with pytest.raises(ValueError, match="not neither"):
        RunLength()


def _fifo_latencies(arrivals: list[float], service: float) -> list[float]:
    """Lindley: a query starts at max(its arrival, the previous completion) and takes `service`."""
    latencies, free_at = [], 0.0
    for arrival in arrivals:
        free_at = max(arrival, free_at) + service
        latencies.append(free_at - arrival)
    return latencies


def test_server_latency_is_arrival_to_completion_of_a_fifo_queue():
    clock = SimulatedClock()
    rate, service, count, segments = 40.0, 0.02, 50, 2  # 80 % busy: queues form
    a, b = server([clock.service(service), clock.service(service)], RunLength(count=count), rate, seed=3,
                  segments=segments, clock=clock)
    rng = random.Random(3)
    gaps = [[rng.expovariate(rate) for _ in range(count // segments)] for _ in range(segments)]
    expected = [latency for segment in gaps for latency in _fifo_latencies(list(np.cumsum(segment)), service)]
    assert a.latencies == pytest.approx(expected) and b.latencies == pytest.approx(expected)  # the same schedule
    assert max(expected) > 2 * service  # some queries waited
    assert a.busy == pytest.approx(count * service)
    assert all(x < y for x, y in zip(a.issued[:25], a.issued[1:25]))  # arrivals in order within a segment


def test_poisson_arrivals_have_the_rate_asked_for():
    arrivals = poisson_arrivals(25.0, 20_000, random.Random(0))
    gaps = np.diff([0.0, *arrivals])
    assert gaps.mean() == pytest.approx(1 / 25.0, rel=0.03)
    assert gaps.std() == pytest.approx(1 / 25.0, rel=0.03)  # exponential: std = mean
    with pytest.raises(ValueError, match="rate must be > 0"):
        poisson_arrivals(0.0, 3, random.Random(0))
