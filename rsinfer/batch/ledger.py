"""The batch report, ``<out dir>/_rsinfer_report.jsonl``: one JSON line per job outcome, appended and fsync'd as each
job finishes, so the record survives a killed driver.

Each line is an `Outcome` (id, status ok|failed|skipped, error, attempts, seconds, output, sha256, host, node) plus
``run`` (the run's id: every run appends its own lines, so the file is the history of the out dir), ``settings`` (the
run's `JobSettings.identity`: spec, tiling, output options) and ``finished`` (UTC, ISO 8601). Within one run every job
has exactly one line. Execution is at least once (a task on a node that dies may still finish); the recorded result is
exactly once, because only the driver writes here. `--resume` trusts an output only as the report last recorded it.
"""

from __future__ import annotations

import datetime
import json
import os
import uuid
from pathlib import Path
from typing import Any

from rsinfer.batch.completion import Recorded
from rsinfer.batch.jobs import Outcome

REPORT_NAME = "_rsinfer_report.jsonl"


def new_run_id() -> str:
    """A sortable, unique id for one batch run: UTC time plus 6 random hex digits."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


class Ledger:
    """Appends outcomes of run `run_id`, made with settings of identity `settings`, to the report at `path` (durably:
    flush + fsync per line)."""

    def __init__(self, path: str | os.PathLike, run_id: str, settings: str) -> None:
        self.path, self.run_id, self.settings = Path(path), run_id, settings
        self._handle = open(self.path, "a", encoding="utf-8")

    def record(self, outcome: Outcome) -> dict[str, Any]:
        line = {"run": self.run_id, **outcome.record(), "settings": self.settings,
                "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        self._handle.write(json.dumps(line) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        return line

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def recorded_outputs(path: str | os.PathLike) -> dict[str, Recorded]:
    """Output path → what its latest ``ok`` or ``skipped`` line recorded (empty when there is no report)."""
    path = Path(path)
    if not path.exists():
        return {}
    return {line["output"]: Recorded(line["sha256"], line.get("settings", "")) for line in read_report(path)
            if line.get("status") in ("ok", "skipped") and line.get("sha256")}


def _parsed(line: str) -> dict[str, Any] | None:
    try:
        return json.loads(line)
    except json.JSONDecodeError:  # the last line of a driver killed while writing it
        return None


def read_report(path: str | os.PathLike, run: str | None = None) -> list[dict[str, Any]]:
    """The report's lines (of run `run` only, when given; "last" = the latest run), in the order written."""
    path = Path(path)
    lines = [parsed for line in path.read_text(encoding="utf-8").splitlines() if (parsed := _parsed(line))]
    if run == "last":
        run = lines[-1]["run"] if lines else None
    return [line for line in lines if run is None or line["run"] == run]
