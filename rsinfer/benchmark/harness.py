"""`run_benchmark`: any registered pipeline's tile function under an MLPerf-style scenario, engines side by side.

    build each candidate pipeline from its spec (one per engine; build time recorded)
      ► plan it over the inputs (real, or synthetic GeoTIFFs) and read tiles as the scene engine would
      ► warm each candidate up (`warmup` calls, recorded apart: the first includes lazy compilation)
      ► run the scenario, candidates interleaved (`rsinfer.benchmark.scenarios`)
      ► the JSON document (`rsinfer.benchmark.report`)

Server defaults, when no rate or bound is given: the rate is half the slowest candidate's service rate (its last
warm-up call), so each candidate is at most half busy, and the p99 bound is 10 of those service times.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rsinfer.benchmark.latency import LatencySummary
from rsinfer.benchmark.report import SCHEMA_ID, environment_block, process_block
from rsinfer.benchmark.scenarios import (SCENARIOS, SYSTEM_CLOCK, Clock, RunLength, Samples, ScenarioName, offline,
                                         server, single_stream, warm_up)
from rsinfer.benchmark.tiles import first, plan_for, read_tiles, write_synthetic_inputs
from rsinfer.pipelines.spec import PipelineSpec

DEFAULT_TILE = 256
SERVER_LOAD = 0.5  # default server rate: this fraction of the slowest candidate's service rate
SERVER_BOUND = 10  # default p99 bound: this many service times


@dataclass(frozen=True)
class Scenario:
    """What is measured: the scenario, how long, warm-up calls per candidate, and for the server scenario the arrival
    rate (queries/s), the p99 bound (ms), the arrival seed and the number of interleaved segments (None: defaults,
    see the module docstring)."""

    name: ScenarioName
    length: RunLength
    warmup: int = 3
    rate: float | None = None
    p99_bound_ms: float | None = None
    seed: int = 0
    segments: int = 4

    def __post_init__(self) -> None:
        if self.name not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.name!r}; choose one of {SCENARIOS}")
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"warmup must be an integer >= 0, got {self.warmup!r}")
        if self.name == "server" and self.warmup == 0 and (self.rate is None or self.p99_bound_ms is None):
            raise ValueError("the server scenario derives its default rate and bound from the warm-up: give a rate "
                             "and a p99 bound, or warmup >= 1")
        if self.name != "server" and (self.rate is not None or self.p99_bound_ms is not None):
            raise ValueError(f"a rate and a p99 bound belong to the server scenario, not {self.name!r}")


def candidate_specs(spec: PipelineSpec, engines: Sequence[str] | None) -> list[tuple[str, PipelineSpec]]:
    """(label, spec) per candidate: `spec` with each engine, or `spec` alone labelled by its engine."""
    from rsinfer import pipelines

    options = pipelines.get(spec.name).Options
    fields = {f.name: f for f in dataclasses.fields(options)}
    if not engines:
        engine = spec.options.get("engine", fields["engine"].default if "engine" in fields else "default")
        return [(str(engine), spec)]
    if "engine" not in fields:
        raise ValueError(f"pipeline {spec.name!r} has no engine option: there are no engines to compare")
    if len(set(engines)) != len(engines):
        raise ValueError(f"engines {list(engines)} name an engine twice")
    return [(engine, spec.with_options(engine=engine)) for engine in engines]


def _synthetic_set(pipeline) -> list:
    """The inputs a synthetic run gives: the required ones, or the first when all are optional."""
    contracts = pipeline.inputs()
    required = [c for c in contracts if c.required]
    return required or list(contracts[:1])


def run_benchmark(spec: PipelineSpec, scenario: Scenario, *, engines: Sequence[str] | None = None,
                  inputs: Mapping[str, str] | None = None, tile: int | None = None, batch_size: int | None = None,
                  command: Sequence[str] | None = None, clock: Clock = SYSTEM_CLOCK) -> dict[str, Any]:
    """Benchmark the tile function of the pipeline `spec` describes (see the module docstring); the JSON document.

    engines: compare these engines (the spec with each); None: the spec as it is. inputs: name → raster path (real
    data; its first tiles are read), None: synthetic inputs. tile: tile side (None: the pipeline's). batch_size: tiles
    per offline call (None: the pipeline's).
    """
    from rsinfer import pipelines

    candidates = candidate_specs(spec, engines)
    default = pipelines.get(spec.name).default_tiling
    side = tile or default.tile or DEFAULT_TILE
    tiling = dataclasses.replace(default, tile=side, overlap=min(default.overlap, (side - 1) // 2),
                                 batch_size=batch_size or default.batch_size)  # overlap: only the windows read
    built = []
    for label, candidate in candidates:
        start = time.perf_counter()
        built.append((label, pipelines.build(candidate), time.perf_counter() - start))
    with tempfile.TemporaryDirectory(prefix="rsinfer-bench-") as folder:
        paths = dict(inputs) if inputs else write_synthetic_inputs(_synthetic_set(built[0][1]), tiling.tile, folder)
        plans = [plan_for(pipe, paths, tiling) for _, pipe, _ in built]
        per_call = tiling.batch_size if scenario.name == "offline" else 1
        tiles = read_tiles(built[0][1], plans[0], paths, tiling, per_call)
    per_call = tiles.valid.shape[0]  # whole-scene plans: one tile
    tiles = first(tiles, per_call)

    def call_of(plan) -> Callable[[], object]:
        def call() -> object:
            with torch.inference_mode():
                return plan.tile_fn(tiles)
        return call

    calls = [call_of(plan) for plan in plans]
    warmups = warm_up(calls, scenario.warmup, clock)
    rate, bound_ms = scenario.rate, scenario.p99_bound_ms
    if scenario.name == "server":
        service = max(times[-1] for times in warmups) if scenario.warmup else None
        rate = rate if rate is not None else SERVER_LOAD / service
        bound_ms = bound_ms if bound_ms is not None else SERVER_BOUND * service * 1e3
        samples = server(calls, scenario.length, rate, scenario.seed, scenario.segments, clock)
    else:
        samples = (single_stream if scenario.name == "single-stream" else offline)(calls, scenario.length, clock)
    engines_block = [_engine_block(label, build_s, warm, mine, per_call, tiling.tile, bound_ms)
                     for (label, _, build_s), warm, mine in zip(built, warmups, samples)]
    return {
        "schema": SCHEMA_ID,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": list(command) if command is not None else None,
        "pipeline": {"spec": {"name": spec.name, "weights": spec.weights, "options": dict(spec.options)},
                     "tile": tiling.tile, "batch_size": per_call,
                     "inputs": {k: os.fspath(v) for k, v in inputs.items()} if inputs else "synthetic"},
        "scenario": {"name": scenario.name, "count": scenario.length.count, "duration_s": scenario.length.duration,
                     "warmup": scenario.warmup, "rate_qps": rate, "p99_bound_ms": bound_ms, "seed": scenario.seed,
                     "segments": scenario.segments if scenario.name == "server" else None},
        "engines": engines_block,
        "process": process_block(),
        "environment": environment_block(),
    }


def _engine_block(label: str, build_s: float, warmup: list[float], samples: Samples, per_call: int, tile: int,
                  bound_ms: float | None) -> dict[str, Any]:
    summary = LatencySummary.of(samples.latencies)
    tiles_per_s = len(samples.latencies) * per_call / samples.busy if samples.busy > 0 else 0.0
    return {"engine": label, "build_s": build_s, "warmup_ms": [t * 1e3 for t in warmup],
            "queries": summary.count, "latency_ms": summary.milliseconds(),
            "latencies_ms": [t * 1e3 for t in samples.latencies], "issued_s": samples.issued, "busy_s": samples.busy,
            "tiles_per_s": tiles_per_s, "mpix_per_s": tiles_per_s * tile * tile / 1e6,
            "p99_held": summary.p99 * 1e3 <= bound_ms if bound_ms is not None else None}
