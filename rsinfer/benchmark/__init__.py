"""The latency benchmark harness: any registered pipeline's tile function, timed under the MLPerf Inference scenarios,
engines side by side. `rsinfer bench` is its command line; bench/ scripts call it so timing code exists once.

    from rsinfer.benchmark import RunLength, Scenario, run_benchmark
    document = run_benchmark(PipelineSpec("decloud", "random:0"), Scenario("single-stream", RunLength(count=50)),
                             engines=["torch", "onnxruntime"], tile=256)

- `scenarios`: single-stream (latency percentiles), offline (throughput), server (Poisson arrivals, p99 bound), with
  candidates interleaved;
- `tiles`: the tiles fed to the tile function, read through the pipeline's own plan from real or synthetic rasters;
- `latency`: nearest-rank percentiles;
- `harness`: `run_benchmark` (build, warm up apart from the measurement, run, report);
- `report`: the JSON document's schema (`SCHEMA`, version "rsinfer.bench/1"), peak RSS, threads, environment;
- `plot`: latency histogram and CDF per engine (matplotlib, the ``plots`` extra).

It never imports ray: the batch runner measures scenes, this measures tiles.
"""

from rsinfer.lazy_exports import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    **dict.fromkeys(("Scenario", "run_benchmark", "candidate_specs"), "rsinfer.benchmark.harness"),
    **dict.fromkeys(("RunLength", "SCENARIOS", "Clock", "poisson_arrivals"), "rsinfer.benchmark.scenarios"),
    **dict.fromkeys(("LatencySummary", "percentile"), "rsinfer.benchmark.latency"),
    **dict.fromkeys(("SCHEMA", "SCHEMA_ID"), "rsinfer.benchmark.report"),
    "plot_latencies": "rsinfer.benchmark.plot",
})
__all__ = __dir__()
