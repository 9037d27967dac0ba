"""Latency statistics: nearest-rank percentiles and the summary every scenario reports.

The p-th percentile of n samples is the smallest sample x such that at least p % of the samples are ≤ x: the sorted
sample at rank ⌈p·n/100⌉ (1-based) — a value that was observed, never an interpolation between two (numpy's
``method="inverted_cdf"``). MLPerf's latency bounds are of this kind: "99 % of queries finish within the bound".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

PERCENTILES = (50, 90, 99)


def percentile(samples: Sequence[float], p: float) -> float:
    """The nearest-rank p-th percentile (0 < p ≤ 100) of a non-empty sequence."""
    if not samples:
        raise ValueError("no samples: a percentile needs at least one")
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p!r} is not in (0, 100]")
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(p * len(ordered) / 100)) - 1]


@dataclass(frozen=True)
class LatencySummary:
    """count, mean, p50, p90, p99 and max of latencies (seconds)."""

    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> LatencySummary:
        p50, p90, p99 = (percentile(samples, p) for p in PERCENTILES)
        return cls(len(samples), sum(samples) / len(samples), p50, p90, p99, max(samples))

    def milliseconds(self) -> dict[str, float]:
        return {"p50": self.p50 * 1e3, "p90": self.p90 * 1e3, "p99": self.p99 * 1e3, "max": self.max * 1e3,
                "mean": self.mean * 1e3}
