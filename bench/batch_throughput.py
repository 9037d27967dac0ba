"""Batch throughput (issue 14): `rsinfer batch` with 2 workers x 1 thread against a serial loop at 2 threads.

    .venv/bin/python bench/batch_throughput.py               # 8 scenes, 2 rounds; table + JSON lines
    .venv/bin/python bench/batch_throughput.py --scenes 16 --rounds 1

Workload: ``decloud`` with a small seeded random DB-CR network (widths 8, 16; one block per level; 1 step) on copies of
the real Sen1Floods11 pair (S2 L1C 13 x 512 x 512 + S1 VV/VH), each copy its own file (so hashing the inputs for the
provenance tags costs what it would). Tile 256, overlap 32: 9 tiles per scene.

- serial: one process, torch at 2 threads (and, for reference, at 1 thread: twice that rate is what 2 workers could
  reach with perfect scaling), the pipeline built once (not timed) and warmed up on one scene, then
  `rsinfer.pipelines.run` over every scene: scenes / loop seconds;
- batch: `rsinfer.batch.run_batch` on a local Ray, 2 workers x 1 thread, measured three ways: end to end (Ray start
  included), after start-up (from the first submission: each worker's process start, torch import and pipeline build
  included), and warm (after each worker's first scene: the rate an archive of thousands of scenes runs at).

Rounds alternate serial and batch (the machine is shared: compare within a round). Target: batch warm rate ≥ 85 % of
the serial rate. JSON lines go to bench/batch_throughput.jsonl.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "sen1floods11"
JSONL = ROOT / "bench" / "batch_throughput.jsonl"
NETWORK = {"widths": [8, 16], "encoder_blocks": [1, 1], "decoder_blocks": [1, 1], "fusion_heads": [1, 1]}


def make_scenes(folder: Path, count: int) -> list[dict[str, str]]:
    scenes = []
    for i in range(count):
        s2, s1 = folder / f"s2_{i:02d}.tif", folder / f"s1_{i:02d}.tif"
        shutil.copyfile(DATA / "Spain_7370579_S2Hand.tif", s2)
        shutil.copyfile(DATA / "Spain_7370579_S1Hand.tif", s1)
        scenes.append({"s2": os.fspath(s2), "s1": os.fspath(s1)})
    return scenes


def serial(spec, scenes: list[dict[str, str]], out: Path, threads: int) -> dict:
    from rsinfer import pipelines

    torch.set_num_threads(threads)
    pipe = pipelines.build(spec)
    options = pipelines.OutputOptions(overwrite=True)
    pipelines.run(pipe, scenes[0], out / "warm.tif", output_options=options, progress=False)  # warm-up, not timed
    start = time.perf_counter()
    for i, inputs in enumerate(scenes):
        pipelines.run(pipe, inputs, out / f"serial_{i:02d}.tif", output_options=options, progress=False)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "scenes_per_s": len(scenes) / seconds}


def batch(spec, scenes: list[dict[str, str]], out: Path) -> dict:
    from rsinfer.batch import Cluster, Job, run_batch

    jobs = [Job(f"scene{i:02d}", inputs, os.fspath(out / f"batch_{i:02d}.tif")) for i, inputs in enumerate(scenes)]
    finished: list[float] = []
    start = time.perf_counter()
    summary = run_batch(spec, jobs, out, existing="overwrite", cluster=Cluster(workers=2, threads_per_worker=1),
                        on_outcome=lambda outcome, progress: finished.append(time.perf_counter()))
    end = time.perf_counter()
    if summary.progress.ok != len(jobs):
        raise RuntimeError(f"batch: {summary.progress}; {[o.error for o in summary.outcomes if o.error]}")
    work = summary.seconds - summary.startup_seconds
    warm = (len(finished) - 2) / (finished[-1] - finished[1])  # after each of the 2 workers' first scene
    return {"seconds": end - start, "startup_seconds": summary.startup_seconds,
            "scenes_per_s_end_to_end": len(jobs) / (end - start), "scenes_per_s_after_startup": len(jobs) / work,
            "scenes_per_s_warm": warm, "job_seconds": [o.seconds for o in summary.outcomes]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.scenes < 3:
        parser.error("--scenes must be >= 3 (the warm rate starts after each worker's first scene)")
    from rsinfer.pipelines import PipelineSpec

    spec = PipelineSpec("decloud", "random:0", {"steps": 1, "network": NETWORK})
    rows = []
    with tempfile.TemporaryDirectory(prefix="rsinfer-batch-bench-") as folder:
        folder = Path(folder)
        scenes = make_scenes(folder, args.scenes)
        for round_ in range(args.rounds):
            rows.append({"round": round_, "serial": serial(spec, scenes, folder, 2),
                         "serial_1_thread": serial(spec, scenes, folder, 1), "batch": batch(spec, scenes, folder)})
    load = os.getloadavg()
    print(f"decloud (small random DB-CR, 1 step) on {args.scenes} scenes of 13 x 512 x 512 (+ S1); load average "
          f"{load[0]:.1f} / {load[1]:.1f}")
    print("scenes/s; 'warm/2x1' = batch warm rate over twice the 1-thread serial rate (perfect 2-way scaling)")
    print(f"{'round':>5} {'serial 2 thr':>13} {'serial 1 thr':>13} {'batch e2e':>10} {'after start':>12} {'warm':>8} "
          f"{'warm/serial':>12} {'warm/2x1':>9} {'Ray start s':>12}")
    for row in rows:
        s, s1, b = row["serial"], row["serial_1_thread"], row["batch"]
        row["ratio_warm"] = b["scenes_per_s_warm"] / s["scenes_per_s"]
        row["ratio_after_startup"] = b["scenes_per_s_after_startup"] / s["scenes_per_s"]
        row["scaling_warm"] = b["scenes_per_s_warm"] / (2 * s1["scenes_per_s"])
        print(f"{row['round']:>5} {s['scenes_per_s']:>13.3f} {s1['scenes_per_s']:>13.3f} "
              f"{b['scenes_per_s_end_to_end']:>10.3f} {b['scenes_per_s_after_startup']:>12.3f} "
              f"{b['scenes_per_s_warm']:>8.3f} {row['ratio_warm']:>11.0%} {row['scaling_warm']:>8.0%} "
              f"{b['startup_seconds']:>12.1f}")
    print(f"median warm/serial: {statistics.median(r['ratio_warm'] for r in rows):.0%} (target >= 85 %); "
          f"after start-up/serial: {statistics.median(r['ratio_after_startup'] for r in rows):.0%}; "
          f"warm/(2 x 1-thread serial): {statistics.median(r['scaling_warm'] for r in rows):.0%}")
    with JSONL.open("a") as handle:
        for row in rows:
            handle.write(json.dumps({"bench": "batch_throughput", "date": datetime.date.today().isoformat(),
                                     "scenes": args.scenes, "load_average": load, **row}) + "\n")


if __name__ == "__main__":
    main()
