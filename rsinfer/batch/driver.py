"""The Ray driver: every job as one Ray task, a bounded number in flight, each outcome recorded as it arrives.

    start (or join) Ray ─► submit ≤ in-flight tasks ─► ray.wait for the next finished one ─► record it in the report
          ▲                                                    │ worker/node lost: resubmit (≤ max_retries)
          └──────────────── submit the next job ◄──────────────┘

- **Cluster.** `Cluster(address=None)` starts a local Ray with workers × threads-per-worker CPUs and stops it at the
  end; an address (``auto``, ``host:port``, ``ray://host:port``) joins a running cluster and leaves it running.
- **Tasks.** One task per scene, ``num_cpus`` = threads per worker, so Ray never runs more scenes at once than the
  CPUs allow. At most 2 × workers tasks are in flight on a local Ray (the second half waits in Ray's queue, so a
  freed CPU starts the next scene at once) and `workers` on a cluster (where Ray's CPUs may exceed the scenes asked
  for). A task's pipeline is built once per worker process (`rsinfer.batch.worker`).
- **Threads.** workers × threads per worker must not exceed the CPUs this process may use (`os.sched_getaffinity`)
  unless `oversubscribe`; on a cluster Ray's CPU accounting bounds it.
- **Failures.** A job's own error (corrupt file, wrong bands, no overlap) is a ``failed`` outcome from the task, not
  retried. A task whose worker process or node died (`ray.exceptions.RayError` other than a task error) is resubmitted
  by this loop, up to `max_retries` times, to whichever worker Ray picks — the driver counts the attempts, which Ray's
  own `max_retries` would hide. Tasks are submitted with Ray's ``max_retries=0`` for that reason.
- **Exactly-once record.** Execution is at least once (a task on a dying node may still finish); outputs are written
  to a temporary file and renamed onto a fixed path, so a second execution rewrites the same result; only this loop
  writes the report, one line per job.
- **Interrupts.** Ctrl-C, and SIGTERM (Ray installs its own handler in `ray.init`; ours replaces it afterwards), cancel
  the running tasks, shut Ray down and return a summary naming the signal; unfinished jobs have no report line and a
  `--resume` run picks them up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rsinfer.batch.completion import Recorded, remove_stale_temporaries
from rsinfer.batch.jobs import EXISTING_OUTPUTS, ExistingOutputs, Job, JobSettings, Outcome
from rsinfer.batch.ledger import REPORT_NAME, Ledger, new_run_id, recorded_outputs
from rsinfer.batch.worker import run_job
from rsinfer.io import OutputOptions
from rsinfer.pipelines.spec import PipelineSpec
from rsinfer.tiling import Tiling

_log = logging.getLogger("rsinfer.batch")

RAY_EXTRA = "pip install 'rsinfer[ray]'"
OBJECT_STORE_BYTES = 256 * 2**20  # tasks pass file paths, not arrays: the default (30 % of RAM) would be wasted


def require_ray():
    """The ray module, or RuntimeError naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise RuntimeError(f"rsinfer batch runs on Ray, which is not installed: {RAY_EXTRA}") from None
    return ray


def available_cpus() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass(frozen=True)
class Cluster:
    """Where the jobs run.

    address: None starts a local Ray for this batch and stops it after; "auto", "host:port" or "ray://host:port"
        joins that cluster. workers: scenes at once (default: CPUs // threads_per_worker, of this machine or of the
        cluster). threads_per_worker: CPUs (torch threads) each scene gets. oversubscribe: allow workers ×
        threads_per_worker above this machine's CPUs (local Ray).
    """

    address: str | None = None
    workers: int | None = None
    threads_per_worker: int = 1
    oversubscribe: bool = False

    def __post_init__(self) -> None:
        for name in ("workers", "threads_per_worker"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")

    def check_threads(self) -> None:
        """A local Ray must not run more threads than CPUs unless oversubscribing is asked for."""
        if self.address is not None or self.oversubscribe or self.workers is None:
            return
        cpus = available_cpus()
        if self.workers * self.threads_per_worker > cpus:
            raise ValueError(f"{self.workers} workers x {self.threads_per_worker} threads = "
                             f"{self.workers * self.threads_per_worker} threads, more than the {cpus} CPUs here; "
                             "use fewer workers or threads, or force it (--oversubscribe)")


@dataclass(frozen=True)
class BatchProgress:
    """Where a batch stands after an outcome: counts so far, seconds since the first task was submitted."""

    total: int
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0

    @property
    def finished(self) -> int:
        return self.ok + self.failed + self.skipped

    @property
    def scenes_per_second(self) -> float:
        return self.finished / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        rate = self.scenes_per_second
        return (self.total - self.finished) / rate if rate > 0 else None

    def counted(self, outcome: Outcome, seconds: float) -> BatchProgress:
        return replace(self, **{outcome.status: getattr(self, outcome.status) + 1}, seconds=seconds)


@dataclass(frozen=True)
class BatchSummary:
    """What a batch did: the outcomes recorded (one per finished job), the final counts, the report, the run id,
    seconds to start or join Ray and in all, stale temporaries removed, and the signal that interrupted it, if any."""

    run: str
    report: Path
    outcomes: tuple[Outcome, ...]
    progress: BatchProgress
    startup_seconds: float
    seconds: float
    temporaries_removed: int
    interrupted_by: int | None = None  # the signal that stopped it (SIGINT for Ctrl-C)
    workers: int = 0

    @property
    def succeeded(self) -> bool:
        """Every job finished ok or skipped."""
        return self.interrupted_by is None and self.progress.failed == 0 and \
            self.progress.finished == self.progress.total


def _remote_job(job: Job, settings: JobSettings, recorded: Recorded | None) -> Outcome:
    """The Ray task: `run_job` with this task's CPUs as torch threads."""
    import ray

    context = ray.get_runtime_context()
    threads = max(1, int(context.get_assigned_resources().get("CPU", 1)))
    return run_job(job, settings, threads=threads, node=context.get_node_id(), recorded=recorded)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def _task_error(error: BaseException) -> str:
    cause = getattr(error, "cause", None)
    return _first_line(cause if isinstance(cause, BaseException) else error)


class _Interrupted(KeyboardInterrupt):
    """A stop signal raised in the driver loop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupt(signum, frame) -> None:
    signal.signal(signum, signal.SIG_IGN)  # the cleanup the first signal starts is not interrupted by a second
    raise _Interrupted(signum)


def _start_ray(ray, cluster: Cluster) -> int:
    """Start or join Ray; the number of workers (scenes at once)."""
    quiet = dict(log_to_driver=False, logging_level=logging.WARNING)
    if cluster.address is None:
        workers = cluster.workers or max(1, available_cpus() // cluster.threads_per_worker)
        ray.init(address="local", num_cpus=workers * cluster.threads_per_worker, include_dashboard=False,
                 object_store_memory=OBJECT_STORE_BYTES, **quiet)
        return workers
    ray.init(address=cluster.address, **quiet)
    cpus = int(ray.cluster_resources().get("CPU", 0))
    return cluster.workers or max(1, cpus // cluster.threads_per_worker)


def run_batch(spec: PipelineSpec, jobs: Sequence[Job], out_dir: str | os.PathLike, *, tiling: Tiling | None = None,
              output_options: OutputOptions = OutputOptions(), existing: ExistingOutputs = "refuse",
              max_retries: int = 2, cluster: Cluster = Cluster(), command: Sequence[str] | None = None,
              on_outcome: Callable[[Outcome, BatchProgress], None] | None = None) -> BatchSummary:
    """Run every job through the pipeline of `spec` on Ray; outcomes go to `out_dir`/_rsinfer_report.jsonl.

    jobs: from `rsinfer.batch.read_manifest` (ids and outputs unique). tiling: None for the pipeline's default.
    existing: "refuse" (outputs must not exist), "resume" (skip verified outputs, redo the rest) or "overwrite".
    max_retries: resubmissions of a job whose worker or node died. on_outcome: called after each recorded outcome
    (progress display).
    """
    from rsinfer import pipelines

    if existing not in EXISTING_OUTPUTS:
        raise ValueError(f"existing={existing!r}; choose one of {EXISTING_OUTPUTS}")
    if not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
    ids = [job.id for job in jobs]
    if len(set(ids)) != len(ids) or len({job.output for job in jobs}) != len(jobs):
        raise ValueError("job ids and outputs must be unique (read jobs with rsinfer.batch.read_manifest)")
    if existing == "refuse":
        there = [job.output for job in jobs if os.path.exists(job.output)]
        if there:
            raise FileExistsError(f"{len(there)} output(s) already exist ({', '.join(there[:3])}"
                                  f"{', ...' if len(there) > 3 else ''}): resume or overwrite them")
    cluster.check_threads()
    ray = require_ray()
    tiling = tiling or pipelines.get(spec.name).default_tiling
    settings = JobSettings(spec.to_json(), tiling, output_options, existing == "resume",
                           tuple(command) if command is not None else None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    removed = 0
    for job in jobs:
        Path(job.output).parent.mkdir(parents=True, exist_ok=True)
        removed += remove_stale_temporaries(job.output)
    recorded = recorded_outputs(out_dir / REPORT_NAME) if existing == "resume" else {}
    start = time.perf_counter()
    with Ledger(out_dir / REPORT_NAME, new_run_id(), settings.identity()) as ledger:
        outcomes: list[Outcome] = []
        progress = BatchProgress(len(jobs))
        interrupted_by, startup, workers = None, 0.0, 0
        running: dict = {}  # ObjectRef → job
        previous_handler = None
        try:
            workers = _start_ray(ray, cluster)
            if threading.current_thread() is threading.main_thread():
                previous_handler = signal.signal(signal.SIGTERM, _raise_interrupt)
            startup = time.perf_counter() - start
            task = ray.remote(_remote_job).options(num_cpus=cluster.threads_per_worker, max_retries=0)
            in_flight = 2 * workers if cluster.address is None else workers
            pending, attempts = deque(jobs), {job.id: 0 for job in jobs}
            work_start = time.perf_counter()

            def submit(job: Job) -> None:
                attempts[job.id] += 1
                running[task.remote(job, settings, recorded.get(job.output))] = job

            def record(outcome: Outcome) -> None:
                nonlocal progress
                outcome = replace(outcome, attempts=attempts[outcome.id])
                ledger.record(outcome)
                outcomes.append(outcome)
                progress = progress.counted(outcome, time.perf_counter() - work_start)
                if on_outcome is not None:
                    on_outcome(outcome, progress)

            while pending or running:
                while pending and len(running) < in_flight:
                    submit(pending.popleft())
                (ref,), _ = ray.wait(list(running), num_returns=1)
                job = running.pop(ref)
                try:
                    record(ray.get(ref))
                except ray.exceptions.RayTaskError as err:  # the task itself raised (outside run_job's guard)
                    record(Outcome(job.id, "failed", job.output, error=_task_error(err)))
                except ray.exceptions.RayError as err:  # its worker process or node died
                    if attempts[job.id] <= max_retries:
                        _log.warning("job %s: %s; retrying (attempt %d of %d)", job.id, _first_line(err),
                                     attempts[job.id] + 1, max_retries + 1)
                        removed += remove_stale_temporaries(job.output)  # the lost writer's
                        pending.appendleft(job)
                    else:
                        record(Outcome(job.id, "failed", job.output,
                                       error=f"worker lost on each of {attempts[job.id]} attempts; last: "
                                             f"{_first_line(err)}"))
        except KeyboardInterrupt as err:
            interrupted_by = getattr(err, "signum", signal.SIGINT)
            # Jobs that already finished are recorded, not cancelled: force-cancelling a task whose reply is on its
            # way tripped a fatal check in Ray's core worker ("Tried to complete task that was not pending").
            finished, unfinished = ray.wait(list(running), num_returns=len(running), timeout=0) if running else ([], [])
            for ref in finished:
                with contextlib.suppress(ray.exceptions.RayError):
                    record(ray.get(ref))
            for ref in unfinished:
                ray.cancel(ref, force=True)
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGTERM, previous_handler)
            ray.shutdown()
    return BatchSummary(ledger.run_id, ledger.path, tuple(outcomes), progress, startup, time.perf_counter() - start,
                        removed, interrupted_by, workers)
