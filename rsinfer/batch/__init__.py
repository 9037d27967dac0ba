"""Archive reprocessing on Ray: thousands of scenes through one pipeline, nothing lost when a scene is bad or a worker
dies. The only rsinfer package that imports ray (the ``ray`` extra), and only when a batch runs.

    from rsinfer import batch, pipelines
    spec = pipelines.PipelineSpec("ndwi")
    jobs = batch.read_manifest("jobs.csv", batch.pipeline_inputs(spec), "out")
    summary = batch.run_batch(spec, jobs, "out", cluster=batch.Cluster(workers=2), existing="resume")

- `manifest`: CSV / JSONL / STAC ItemCollection → `Job`s, every problem reported at once before any work;
- `completion`: done means verified (the output's bytes are those the report recorded, it opens and its provenance
  tags match this job), stale temporaries;
- `worker`: one job in a worker process (pipeline cached per spec, torch threads per task, errors as outcomes);
- `driver`: `run_batch` — one Ray task per scene, bounded in flight, retries of lost workers, the report;
- `ledger`: the report, ``<out dir>/_rsinfer_report.jsonl``, one fsync'd line per job.

Why Ray tasks, not Ray Data or actors: a scene job is a whole GeoTIFF in, a whole GeoTIFF out, minutes long, with its
own success or failure. Tasks carry exactly that (a file path in, an outcome out, nothing through the object store),
are retried per scene when a worker dies, and let a plain `ray.wait` loop keep an exactly-once ledger. Ray Data would
split scenes into rows and batches, hide which scene failed, and leave a pool of actors behind; restarted actors lose
calls when no CPU is free (see shared/research/ray_batch.md). The per-process pipeline cache gives tasks what actors
would: networks loaded once per worker.
"""

from rsinfer.lazy_exports import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    **dict.fromkeys(("Job", "JobSettings", "Outcome", "Status", "ExistingOutputs"), "rsinfer.batch.jobs"),
    **dict.fromkeys(("ManifestError", "read_manifest", "pipeline_inputs"), "rsinfer.batch.manifest"),
    **dict.fromkeys(("Recorded", "not_done_reason", "remove_stale_temporaries"), "rsinfer.batch.completion"),
    "run_job": "rsinfer.batch.worker",
    **dict.fromkeys(("BatchProgress", "BatchSummary", "Cluster", "require_ray", "run_batch"), "rsinfer.batch.driver"),
    **dict.fromkeys(("REPORT_NAME", "read_report", "recorded_outputs"), "rsinfer.batch.ledger"),
})
__all__ = __dir__()
