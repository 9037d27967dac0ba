"""Progress of a scene job: a one-line bar on a terminal, log records otherwise.

Only the CLI prints; the engine reports progress without `print`: with ``progress=True`` and stderr a TTY it redraws
one status line on stderr (tiles done/total, tiles/s, ETA) — a terminal affordance, like a progress bar in any
library — and otherwise it logs a record on the ``rsinfer.scene`` logger about every 10% (INFO level), which stays
silent unless the application turns logging on. ``progress=False`` is silent either way.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

_log = logging.getLogger("rsinfer.scene")


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Counts finished tiles out of `total` and reports them."""

    def __init__(self, total: int, enabled: bool, stream: TextIO | None = None) -> None:
        self.total, self.done, self.enabled = total, 0, enabled
        self.stream = sys.stderr if stream is None else stream
        self.on_terminal = enabled and self.stream.isatty()
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._next_log = 0.1

    def status(self) -> str:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        width = 30
        filled = width * self.done // max(self.total, 1)
        return (f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} tiles  {rate:.1f} tiles/s  "
                f"ETA {_clock(eta) if eta != float('inf') else '?'}")

    def advance(self, count: int = 1) -> None:
        self.done += count
        if not self.enabled:
            return
        if self.on_terminal:
            now = time.perf_counter()
            if now - self._last_draw >= 0.1 or self.done == self.total:
                self._last_draw = now
                self.stream.write("\r" + self.status())
                self.stream.flush()
        elif self.done >= self._next_log * self.total:
            self._next_log = self.done / max(self.total, 1) + 0.1
            _log.info("%s", self.status())

    def close(self) -> None:
        if self.on_terminal:
            self.stream.write("\n")
            self.stream.flush()
