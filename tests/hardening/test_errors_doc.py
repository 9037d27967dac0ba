"""Finding 8: docs/errors.md stays true. Its table of failure classes is `rsinfer.cli.FAILURES`, and every example
command it lists, run in a folder holding the files it names, exits with the status and prints the line it shows."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from rsinfer.cli import FAILURES

from .conftest import REPO, green_nir, truncated_geotiff, write_raster

DOC = REPO / "docs" / "errors.md"


def _table(heading: str) -> list[list[str]]:
    """The rows (cells, stripped) of the first table after `heading`."""
    lines = DOC.read_text().split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in lines[start + 2:end]]


def _examples() -> list[tuple[int, str, str]]:
    return [(int(status), command.strip("`"), message.strip("`")) for status, command, message in
            _table("## Examples")]


def test_the_failure_classes_are_the_cli_s() -> None:
    assert _table("## Failure classes") == [[f.name, f.status, f.covers] for f in FAILURES]


def test_every_class_has_an_example_and_the_statuses_are_the_documented_ones() -> None:
    statuses = {status for status, _, _ in _examples()}
    assert statuses == {int(f.status) for f in FAILURES if f.status.isdigit() and f.status != "1"}


@pytest.mark.parametrize("status,command,message", _examples(), ids=lambda value: str(value)[:60])
def test_the_example_prints_what_the_doc_shows(status, command, message, tmp_path, monkeypatch, cli) -> None:
    green_nir(tmp_path / "s2.tif", 64)
    write_raster(tmp_path / "ndwi.tif", np.zeros((1, 8, 8), dtype=np.float32))
    (tmp_path / "notes.tif").write_text("not a raster\n")
    truncated_geotiff(tmp_path / "cut.tif")
    (tmp_path / "link.tif").symlink_to("ndwi.tif")
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    monkeypatch.chdir(tmp_path)
    argv = shlex.split(command)
    assert argv[0] == "rsinfer"
    outcome = cli(*argv[1:])
    assert (outcome.status, outcome.line) == (status, message)
    assert {path.name: path.read_bytes() for path in Path(".").iterdir() if path.is_file()} == before
    assert re.fullmatch(r"rsinfer \w+: error: .+", message)
