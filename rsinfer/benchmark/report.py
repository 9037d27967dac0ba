"""The benchmarks' JSON documents: their schemas (`SCHEMA` for `run_benchmark`, `COMPARE_SCHEMA` for `compare`; JSON
Schema draft 2020-12), what the process reports about itself (peak RSS, threads, the `rsinfer env` block), and
`append_json_line` for the bench/ scripts' JSON-lines files.

Document (``"schema": "rsinfer.bench/1"``; a new major number for any change that breaks a reader):

    schema       "rsinfer.bench/1"
    created      UTC time, ISO 8601
    command      argv of the run, or null
    pipeline     {spec: {name, weights, options}, tile, batch_size, inputs: "synthetic" | {name: path}}
    scenario     {name: single-stream|offline|server, count | duration_s (one of them null), warmup,
                  rate_qps, p99_bound_ms, seed, segments (server only; else null)}
    engines[]    one per candidate, in the order run:
        engine         the engine's name ("default" for pipelines without engines)
        build_s        building the pipeline (networks, engine export/compilation that happens at build)
        warmup_ms[]    the warm-up calls, in order (the first includes lazy compilation); never in the statistics
        queries        measured queries (a query is one tile; offline: one batch of batch_size tiles)
        latency_ms     {p50, p90, p99, max, mean} (nearest-rank percentiles; server: arrival to completion)
        latencies_ms[] every measured query; issued_s[] when each was issued (server: arrived), from the start
        busy_s         time spent in the candidate's calls
        tiles_per_s, mpix_per_s   tiles (output pixels / 1e6) per busy second
        p99_held       server: p99 latency ≤ the bound; else null
    process      {peak_rss_bytes, threads: {torch_intra_op, torch_inter_op, process}}
    environment  the `rsinfer env` report (versions, CPU model and flags, backends, engines)

The side-by-side comparison of any callables (`rsinfer.benchmark.comparison`, the bench/ scripts; one JSON line per
run), ``"schema": "rsinfer.compare/1"`` (`COMPARE_SCHEMA`):

    schema       "rsinfer.compare/1"
    created      UTC time, ISO 8601
    bench        the bench's name (e.g. "dbcr")
    command      argv of the run, or null
    clock        "wall" | "cpu" (or a custom clock's name): the clock of warmup_ms, times_ms and the statistics
    warmup       warm-up calls per candidate
    count | duration_s   measured calls per candidate, or busy seconds per candidate (one of them null)
    candidates[] in the order given:
        name           the candidate's name
        warmup_ms[]    the warm-up calls, in order; never in the statistics
        times_ms[]     every measured call, in the order run (call k of every candidate ran in round k)
        cpu_ms[]       the same calls' process CPU time (all threads)
        latency_ms     {p50, p90, p99, max, mean} of times_ms (nearest-rank percentiles); min_ms
    table[]      the bench's own rows (its table's columns: FLOP rates, errors, speed-ups; bench-specific)
    extra        the bench's own values (work per call, reference rates, sizes; bench-specific)
    process, environment   as above
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import threading
from collections.abc import Mapping
from typing import Any

SCHEMA_ID = "rsinfer.bench/1"

_NUMBER = {"type": "number"}
_MILLIS = {"type": "object", "required": ["p50", "p90", "p99", "max", "mean"],
           "properties": {k: _NUMBER for k in ("p50", "p90", "p99", "max", "mean")}}
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["schema", "created", "command", "pipeline", "scenario", "engines", "process", "environment"],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "created": {"type": "string"},
        "command": {"type": ["array", "null"], "items": {"type": "string"}},
        "pipeline": {"type": "object", "required": ["spec", "tile", "batch_size", "inputs"], "properties": {
            "spec": {"type": "object", "required": ["name", "weights", "options"]},
            "tile": {"type": "integer", "minimum": 1}, "batch_size": {"type": "integer", "minimum": 1},
            "inputs": {"oneOf": [{"const": "synthetic"},
                                 {"type": "object", "additionalProperties": {"type": "string"}}]}}},
        "scenario": {"type": "object",
                     "required": ["name", "count", "duration_s", "warmup", "rate_qps", "p99_bound_ms", "seed",
                                  "segments"],
                     "properties": {"name": {"enum": ["single-stream", "offline", "server"]},
                                    "count": {"type": ["integer", "null"]},
                                    "duration_s": {"type": ["number", "null"]},
                                    "warmup": {"type": "integer", "minimum": 0},
                                    "rate_qps": {"type": ["number", "null"]},
                                    "p99_bound_ms": {"type": ["number", "null"]},
                                    "seed": {"type": "integer"}, "segments": {"type": ["integer", "null"]}}},
        "engines": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["engine", "build_s", "warmup_ms", "queries", "latency_ms", "latencies_ms", "issued_s",
                         "busy_s", "tiles_per_s", "mpix_per_s", "p99_held"],
            "properties": {"engine": {"type": "string"}, "build_s": _NUMBER,
                           "warmup_ms": {"type": "array", "items": _NUMBER},
                           "queries": {"type": "integer", "minimum": 1}, "latency_ms": _MILLIS,
                           "latencies_ms": {"type": "array", "items": _NUMBER},
                           "issued_s": {"type": "array", "items": _NUMBER}, "busy_s": _NUMBER,
                           "tiles_per_s": _NUMBER, "mpix_per_s": _NUMBER,
                           "p99_held": {"type": ["boolean", "null"]}}}},
        "process": {"type": "object", "required": ["peak_rss_bytes", "threads"], "properties": {
            "peak_rss_bytes": {"type": "integer"},
            "threads": {"type": "object", "required": ["torch_intra_op", "torch_inter_op", "process"]}}},
        "environment": {"type": "object", "required": ["rsinfer", "cpu_model", "cpu_flags", "packages"]},
    },
}


COMPARE_SCHEMA_ID = "rsinfer.compare/1"
COMPARE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["schema", "created", "bench", "command", "clock", "warmup", "count", "duration_s", "candidates",
                 "table", "extra", "process", "environment"],
    "properties": {
        "schema": {"const": COMPARE_SCHEMA_ID},
        "created": {"type": "string"},
        "bench": {"type": "string"},
        "command": SCHEMA["properties"]["command"],
        "clock": {"type": "string"},
        "warmup": {"type": "integer", "minimum": 0},
        "count": {"type": ["integer", "null"]},
        "duration_s": {"type": ["number", "null"]},
        "candidates": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["name", "warmup_ms", "times_ms", "cpu_ms", "latency_ms", "min_ms"],
            "properties": {"name": {"type": "string"}, "warmup_ms": {"type": "array", "items": _NUMBER},
                           "times_ms": {"type": "array", "minItems": 1, "items": _NUMBER},
                           "cpu_ms": {"type": "array", "minItems": 1, "items": _NUMBER},
                           "latency_ms": _MILLIS, "min_ms": _NUMBER}}},
        "table": {"type": "array", "items": {"type": "object"}},
        "extra": {"type": "object"},
        "process": SCHEMA["properties"]["process"],
        "environment": SCHEMA["properties"]["environment"],
    },
}


def append_json_line(path: str | os.PathLike, document: Mapping[str, Any]) -> None:
    """Append `document` to a JSON-lines file as one line (created if missing)."""
    with open(path, "a") as handle:
        handle.write(json.dumps(document) + "\n")


def peak_rss_bytes() -> int:
    """The most resident memory this process has held (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def process_threads() -> int:
    """Threads of this process now (native ones included where /proc shows them)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def process_block() -> dict[str, Any]:
    import torch

    return {"peak_rss_bytes": peak_rss_bytes(),
            "threads": {"torch_intra_op": torch.get_num_threads(), "torch_inter_op": torch.get_num_interop_threads(),
                        "process": process_threads()}}


def environment_block() -> dict[str, Any]:
    from rsinfer.environment import environment_report

    return dataclasses.asdict(environment_report())
