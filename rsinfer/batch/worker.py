"""What a worker process does with one job: verify (on `--resume`), or run the scene through the pipeline.

`run_job` is plain Python (the Ray task in `rsinfer.batch.driver` only wraps it), so it runs and is tested without a
cluster. Per process, the pipeline is built once per spec (cached by its JSON: worker processes are reused across
tasks) — networks loaded and engines prepared a single time. Per task, torch gets the task's CPUs as its thread count:
torch reads its thread count once per process, and a reused worker otherwise keeps whatever the previous task set.

A job's errors (a corrupt file, wrong bands, no overlap, ...) come back as a ``failed`` outcome with the error, so a
bad scene fails its own job only; a crashed worker process never returns and the driver retries the job.
"""

from __future__ import annotations

import dataclasses
import socket
import time

from rsinfer.batch.completion import Recorded, not_done_reason
from rsinfer.batch.jobs import Job, JobSettings, Outcome

_PIPELINES: dict[str, object] = {}  # spec JSON → built pipeline, per worker process


def pipeline_for(spec_json: str):
    """The pipeline of `spec_json`, built on first use in this process."""
    if spec_json not in _PIPELINES:
        from rsinfer import pipelines

        _PIPELINES[spec_json] = pipelines.build(pipelines.PipelineSpec.from_json(spec_json))
    return _PIPELINES[spec_json]


def run_job(job: Job, settings: JobSettings, threads: int = 1, node: str | None = None,
            recorded: Recorded | None = None) -> Outcome:
    """Run (or, resuming, skip when verified) one job with `threads` torch threads; never raises for a bad job.

    recorded: what the report last recorded of the output (resuming: the output must still be that)."""
    import torch

    from rsinfer import pipelines
    from rsinfer.pipelines.provenance import file_sha256

    torch.set_num_threads(threads)
    start = time.perf_counter()
    where = {"host": socket.gethostname(), "node": node}
    try:
        if settings.resume and not_done_reason(job, settings, recorded) is None:
            return Outcome(job.id, "skipped", job.output, seconds=time.perf_counter() - start,
                           sha256=file_sha256(job.output), **where)
        options = dataclasses.replace(settings.output_options, overwrite=True)  # the driver decided to (re)do it
        pipelines.run(pipeline_for(settings.spec), job.inputs, job.output, tiling=settings.tiling,
                      output_options=options, progress=False, command=settings.command)
        return Outcome(job.id, "ok", job.output, seconds=time.perf_counter() - start,
                       sha256=file_sha256(job.output), **where)
    except Exception as err:  # any error of this scene is this job's failure, recorded, never the batch's
        return Outcome(job.id, "failed", job.output, error=f"{type(err).__name__}: {err}",
                       seconds=time.perf_counter() - start, **where)
