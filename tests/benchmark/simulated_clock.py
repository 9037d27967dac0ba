"""A clock for the scenario and comparison loops on which time moves only when a call runs or the loop sleeps."""

from __future__ import annotations


class SimulatedClock:
    """Time that moves only when a call runs (by its service time) or the loop sleeps."""

    def __init__(self) -> None:
        self.time = 1000.0

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.time += seconds

    def service(self, seconds: float):
        def call() -> None:
            self.time += seconds
        return call
