"""The progress line: drawn on a terminal, silent when disabled."""

from __future__ import annotations

import io

from rsinfer.scene.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_tiles_rate_and_eta_on_a_terminal():
    stream = _Terminal()
    progress = Progress(4, enabled=True, stream=stream)
    for _ in range(4):
        progress.advance()
    progress.close()
    text = stream.getvalue()
    assert text.startswith("\r") and "4/4 tiles" in text and "tiles/s" in text and "ETA 0:00:00" in text
    assert text.endswith("\n")


def test_progress_disabled_writes_nothing():
    stream = _Terminal()
    progress = Progress(4, enabled=False, stream=stream)
    progress.advance(4)
    progress.close()
    assert stream.getvalue() == ""
