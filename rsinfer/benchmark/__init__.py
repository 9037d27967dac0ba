"""The latency benchmark harness: any registered pipeline's tile function, timed under the MLPerf Inference scenarios,
engines side by side. `rsinfer bench` is its command line; bench/ scripts call it so timing code exists once.

    from rsinfer.benchmark import RunLength, Scenario, run_benchmark
    document = run_benchmark(PipelineSpec("decloud", "random:0"), Scenario("single-stream", RunLength(count=50)),
                             engines=["torch", "onnxruntime"], tile=256)

- `scenarios`: single-stream (latency percentiles), offline (throughput), server (Poisson arrivals, p99 bound), with
  candidates interleaved, and the warm-up kept apart;
- `comparison`: `compare`, any callables side by side (interleaved rounds, warm-up apart, wall or CPU clock, CPU time
  alongside): the timing loop of the bench/ scripts, whose candidates are not registered pipelines;
- `machine`: reference workloads (GEMM, convolution) a bench times in its own rounds to set achieved FLOP rates
  against, and settling glibc's allocator before timing;
- `tiles`: the tiles fed to the tile function, read through the pipeline's own plan from real or synthetic rasters;
- `latency`: nearest-rank percentiles;
- `harness`: `run_benchmark` (build, warm up apart from the measurement, run, report);
- `report`: the JSON documents' schemas (`SCHEMA`, "rsinfer.bench/1"; `COMPARE_SCHEMA`, "rsinfer.compare/1"), peak
  RSS, threads, environment, JSON lines;
- `plot`: latency histogram and CDF per engine (matplotlib, the ``plots`` extra).

It never imports ray: the batch runner measures scenes, this measures tiles.
"""

from rsinfer.lazy_exports import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    **dict.fromkeys(("Scenario", "run_benchmark", "candidate_specs"), "rsinfer.benchmark.harness"),
    **dict.fromkeys(("RunLength", "SCENARIOS", "Clock", "poisson_arrivals", "warm_up"), "rsinfer.benchmark.scenarios"),
    **dict.fromkeys(("compare", "Comparison", "Timings", "timed", "ClockName", "CLOCK_NAMES"),
                    "rsinfer.benchmark.comparison"),
    **dict.fromkeys(("Workload", "gemm", "convolution", "settle_allocator", "GemmPath"), "rsinfer.benchmark.machine"),
    **dict.fromkeys(("LatencySummary", "percentile"), "rsinfer.benchmark.latency"),
    **dict.fromkeys(("SCHEMA", "SCHEMA_ID", "COMPARE_SCHEMA", "COMPARE_SCHEMA_ID", "append_json_line"),
                    "rsinfer.benchmark.report"),
    "plot_latencies": "rsinfer.benchmark.plot",
})
__all__ = __dir__()
