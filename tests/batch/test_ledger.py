"""The report: one durable line per outcome, runs kept apart, the bytes each output was recorded with."""

from __future__ import annotations

import json

from rsinfer.batch import Outcome, Recorded, read_report, recorded_outputs
from rsinfer.batch.ledger import Ledger


def test_runs_append_and_the_latest_record_of_an_output_wins(tmp_path):
    report = tmp_path / "_rsinfer_report.jsonl"
    with Ledger(report, "run1", "s1") as ledger:
        line = ledger.record(Outcome("a", "ok", "/o/a.tif", sha256="aa", seconds=1.5, host="h", node="n"))
        ledger.record(Outcome("b", "failed", "/o/b.tif", error="RasterInputError: bad"))
    assert line == {"run": "run1", "id": "a", "status": "ok", "output": "/o/a.tif", "error": None, "attempts": 1,
                    "seconds": 1.5, "sha256": "aa", "host": "h", "node": "n", "settings": "s1",
                    "finished": line["finished"]}
    with Ledger(report, "run2", "s2") as ledger:
        ledger.record(Outcome("a", "skipped", "/o/a.tif", sha256="a2"))
        ledger.record(Outcome("b", "ok", "/o/b.tif", sha256="bb", attempts=2))
        ledger.record(Outcome("a", "failed", "/o/a.tif", error="x"))  # a failure leaves the last recorded bytes
    with open(report, "a") as handle:
        handle.write('{"run": "run3", "id": "a", "sta')  # a driver killed while writing its last line
    assert [line["id"] for line in read_report(report, "run1")] == ["a", "b"]
    assert [(line["id"], line["attempts"]) for line in read_report(report, "last")] == [("a", 1), ("b", 2), ("a", 1)]
    assert len(read_report(report)) == 5
    assert recorded_outputs(report) == {"/o/a.tif": Recorded("a2", "s2"), "/o/b.tif": Recorded("bb", "s2")}
    assert recorded_outputs(tmp_path / "none.jsonl") == {}
    assert all(json.loads(text)["run"] in ("run1", "run2") for text in report.read_text().splitlines()[:5])
