"""The bench/ scripts that time pipelines, engines or networks take their timing from `rsinfer.benchmark` (issue 14:
the timing code exists once, in the package): no clock reads of their own, and `compare` for the measurements."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
ON_THE_HARNESS = ("atomizer.py", "copgen.py", "crossdiff.py", "dbcr.py", "scene.py", "tirsit.py")
CLOCKS = {"perf_counter", "process_time", "monotonic", "time", "perf_counter_ns", "process_time_ns"}


def _clock_reads(tree: ast.AST) -> list[str]:
    """Calls of `time.<clock>()` or of a clock imported from `time`."""
    imported = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module == "time" for alias in node.names if alias.name in CLOCKS}
    reads = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "time" \
                and func.attr in CLOCKS:
            reads.append(f"line {node.lineno}: time.{func.attr}()")
        elif isinstance(func, ast.Name) and func.id in imported:
            reads.append(f"line {node.lineno}: {func.id}()")
    return reads


@pytest.mark.parametrize("script", ON_THE_HARNESS)
def test_timing_comes_from_the_harness(script):
    tree = ast.parse((BENCH / script).read_text())
    assert _clock_reads(tree) == []
    imports = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "rsinfer.benchmark" in imports
    called = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert "compare" in called


def test_the_check_sees_clock_reads():
    tree = ast.parse("import time\nfrom time import perf_counter as pc\nstart = time.perf_counter()\npc()\n"
                     "time.sleep(1)\n")
    assert _clock_reads(tree) == ["line 3: time.perf_counter()", "line 4: pc()"]
