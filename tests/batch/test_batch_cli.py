"""`rsinfer batch` end to end on a local Ray: the acceptance run (3 real scenes + 1 corrupt file, run, resumed, forced),
and the command line's checks before any work (pipeline options, threads, Ray missing)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from tests.batch.batch_data import (SMALL_DECLOUD, band, corrupt_raster, ndwi_reference, s1_scene, s2_scenes, tags,
                                   write_csv)

from rsinfer.batch import REPORT_NAME, read_report
from rsinfer.cli import build_parser, main
from rsinfer.cli.batch import spec_of


def _sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _statuses(out) -> dict[str, str]:
    return {line["id"]: line["status"] for line in read_report(out / REPORT_NAME, "last")}


@pytest.mark.slow
def test_batch_runs_resumes_and_reruns_a_manifest(tmp_path, capfd):
    scenes = s2_scenes(tmp_path)
    manifest = write_csv(tmp_path / "jobs.csv", ["id", "s2"],
                         [["a", scenes[0].name], ["b", scenes[1].name], ["c", scenes[2].name],
                          ["bad", corrupt_raster(tmp_path / "corrupt.tif").name]])
    out = tmp_path / "out"
    command = ["batch", "--pipeline", "ndwi", "--manifest", str(manifest), "--out-dir", str(out), "--workers", "2"]

    assert main(command) == 1  # a failed job: exit code 1
    first = read_report(out / REPORT_NAME, "last")
    assert sorted((line["id"], line["status"], line["attempts"]) for line in first) == [
        ("a", "ok", 1), ("b", "ok", 1), ("bad", "failed", 1), ("c", "ok", 1)]
    by_id = {line["id"]: line for line in first}
    assert by_id["bad"]["error"].startswith(f"RasterInputError: {tmp_path / 'corrupt.tif'}: not a raster GDAL")
    assert by_id["bad"]["sha256"] is None and not (out / "bad.tif").exists()
    digests = {}
    for job_id, scene in zip("abc", scenes):
        output = out / f"{job_id}.tif"
        assert by_id[job_id]["output"] == os.fspath(output) and by_id[job_id]["host"] == socket.gethostname()
        digests[job_id] = by_id[job_id]["sha256"]
        assert digests[job_id] == _sha256(output)
        expected, written = ndwi_reference(scene), band(output).astype(np.float64)
        np.testing.assert_array_equal(np.isnan(written), np.isnan(expected))
        np.testing.assert_allclose(written[~np.isnan(expected)], expected[~np.isnan(expected)], rtol=1e-5, atol=1e-6)
    summary = capfd.readouterr().err
    assert "batch ndwi: 4 jobs: 3 ok, 0 skipped, 1 failed" in summary and "failed bad: RasterInputError" in summary

    assert main([*command, "--resume"]) == 1
    assert _statuses(out) == {"a": "skipped", "b": "skipped", "c": "skipped", "bad": "failed"}
    assert {job_id: _sha256(out / f"{job_id}.tif") for job_id in "abc"} == digests  # not rewritten: same bytes
    assert {line["id"]: line["sha256"] for line in read_report(out / REPORT_NAME, "last") if line["sha256"]} == digests

    pixels = {job_id: band(out / f"{job_id}.tif") for job_id in "abc"}
    created = {job_id: tags(out / f"{job_id}.tif")["RSINFER_CREATED"] for job_id in "abc"}
    assert main([*command, "--overwrite"]) == 1
    assert _statuses(out) == {"a": "ok", "b": "ok", "c": "ok", "bad": "failed"}
    for job_id in "abc":  # rewritten: the same pixels and tags; only the time of writing may differ
        np.testing.assert_array_equal(band(out / f"{job_id}.tif"), pixels[job_id])
        found = tags(out / f"{job_id}.tif")
        assert found["RSINFER_CREATED"] >= created[job_id]
        assert found["RSINFER_COMMAND"] == " ".join(["rsinfer", *command, "--overwrite"])
    assert len(read_report(out / REPORT_NAME)) == 12  # three runs, one line per job each


def test_existing_outputs_need_resume_or_overwrite(tmp_path, capsys):
    (scene,) = s2_scenes(tmp_path, [(0, 0, 20, 20)])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.tif").write_bytes(b"")
    manifest = write_csv(tmp_path / "jobs.csv", ["id", "s2"], [["a", str(scene)]])
    assert main(["batch", "--pipeline", "ndwi", "--manifest", str(manifest), "--out-dir", str(tmp_path / "out")]) == 2
    assert "already exists (pass --resume to skip verified outputs, --overwrite to redo them)" in \
        capsys.readouterr().err


def test_threads_beyond_the_cpus_are_refused(tmp_path, capsys):
    (scene,) = s2_scenes(tmp_path, [(0, 0, 20, 20)])
    manifest = write_csv(tmp_path / "jobs.csv", ["s2"], [[str(scene)]])
    cpus = len(os.sched_getaffinity(0))
    assert main(["batch", "--pipeline", "ndwi", "--manifest", str(manifest), "--out-dir", str(tmp_path / "out"),
                 "--workers", str(cpus), "--threads-per-worker", "2"]) == 2
    assert f"{cpus} workers x 2 threads = {2 * cpus} threads, more than the {cpus} CPUs here" in capsys.readouterr().err
    assert not (tmp_path / "out" / REPORT_NAME).exists()  # refused before any work


def test_without_ray_one_line_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    assert main(["batch", "--pipeline", "ndwi", "--manifest", str(tmp_path / "jobs.csv"), "--out-dir",
                 str(tmp_path)]) == 4  # an environment error (rsinfer.cli.FAILURES)
    assert capsys.readouterr().err == ("rsinfer batch: error: rsinfer batch runs on Ray, which is not installed: "
                                       "pip install 'rsinfer[ray]'\n")


def _spec(*argv: str):
    return spec_of(build_parser().parse_args(["batch", "--manifest", "m.csv", "--out-dir", "o", *argv]))


def test_pipeline_flags_map_to_the_options_the_pipeline_has(tmp_path, monkeypatch):
    spec = _spec("--pipeline", "decloud", "--random-weights", "--steps", "2", "--engine", "onnxruntime",
                 "--option", 'network={"widths": [8, 16]}', "--option", "s1_scale=dB")
    assert (spec.name, spec.weights) == ("decloud", "random:0")
    assert spec.options == {"steps": 2, "engine": "onnxruntime", "network": {"widths": (8, 16)}, "s1_scale": "dB"}
    spec = _spec("--pipeline", "decloud", "--random-weights", "--seed", "7")
    assert (spec.weights, spec.options) == ("random:7", {"seed": 7})
    monkeypatch.chdir(tmp_path)
    spec = _spec("--pipeline", "translate", "--weights", "network=net.pth", "--weights", "vae=vae.pth", "--option",
                 "target=s2_l2a")
    assert spec.weights == {"network": os.fspath(tmp_path / "net.pth"), "vae": os.fspath(tmp_path / "vae.pth")}
    assert _spec("--pipeline", "ndwi").options == {}
    with pytest.raises(ValueError, match=r"pipeline 'ndwi' has no option steps \(--steps\); its options: none"):
        _spec("--pipeline", "ndwi", "--steps", "3")
    with pytest.raises(ValueError, match="pipeline 'ndwi' has no network, so it takes no weights"):
        _spec("--pipeline", "ndwi", "--random-weights")
    with pytest.raises(ValueError, match="pass --weights PATH or --random-weights"):
        _spec("--pipeline", "decloud")
    with pytest.raises(ValueError, match="option 'steps' given twice"):
        _spec("--pipeline", "decloud", "--random-weights", "--steps", "2", "--option", "steps=3")


@pytest.mark.slow
def test_sigterm_stops_the_batch_and_resume_finishes_it(tmp_path):
    rows = []
    for i in range(6):
        window = (20 * i, 10 * i, 280, 300)
        (s2,) = s2_scenes(tmp_path, [window])
        rows.append([f"job{i}", s2.rename(tmp_path / f"s2_{i}.tif").name,
                     s1_scene(tmp_path, f"s1_{i}.tif", window).name])
    manifest = write_csv(tmp_path / "jobs.csv", ["id", "s2", "s1"], rows)
    out = tmp_path / "out"
    command = [sys.executable, "-c", "import sys; from rsinfer.cli import main; sys.exit(main(sys.argv[1:]))",
               "batch", "--pipeline", "decloud", "--random-weights", "--option",
               f"network={json.dumps(SMALL_DECLOUD['network'])}", "--manifest", os.fspath(manifest), "--out-dir",
               os.fspath(out), "--workers", "1"]
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while driver.poll() is None and time.monotonic() < deadline:
            if (out / REPORT_NAME).exists() and read_report(out / REPORT_NAME):
                driver.send_signal(signal.SIGTERM)
                break
            time.sleep(0.05)
        _, stderr = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 128 + signal.SIGTERM, stderr
    assert "not run (interrupted)" in stderr
    done = {line["id"] for line in read_report(out / REPORT_NAME)}
    assert 1 <= len(done) < 6
    assert main(["batch", "--pipeline", "decloud", "--random-weights", "--option",
                 f"network={json.dumps(SMALL_DECLOUD['network'])}", "--manifest", os.fspath(manifest), "--out-dir",
                 os.fspath(out), "--workers", "1", "--resume", "--quiet"]) == 0
    statuses = _statuses(out)
    assert sorted(statuses) == [f"job{i}" for i in range(6)]
    assert all(statuses[job_id] == "skipped" for job_id in done)
    assert all(status == "ok" for job_id, status in statuses.items() if job_id not in done)
    assert sorted(p.name for p in out.iterdir()) == sorted([REPORT_NAME, *(f"job{i}.tif" for i in range(6))])
