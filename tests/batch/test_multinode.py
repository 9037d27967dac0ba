"""Two Ray nodes as separate processes (two raylets: how a two-machine cluster runs), 12 small decloud jobs across both,
the second node killed mid-run: every job finishes exactly once and the report accounts for each.

Following shared/research/ray_batch.md: the same RAY_AUTH_MODE everywhere, node 2 with its own dashboard-agent port,
a small object store, and one node killed by killing its process tree (its `ray start --block` process, raylet,
agents and workers: a machine that disappears), since `ray stop` would stop every Ray process on the host."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from tests.batch.batch_data import SMALL_DECLOUD, s1_scene, s2_scenes, write_csv

from rsinfer.batch import REPORT_NAME, read_report

RAY = Path(sys.executable).parent / "ray"
JOBS = 12


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(arguments: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([os.fspath(RAY), "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
                             "--object-store-memory", "100000000", "--disable-usage-stats", *arguments], env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_tree(process: subprocess.Popen) -> None:
    try:
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for member in tree:
        try:
            member.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(tree, timeout=10)


def _running_a_job(process: subprocess.Popen) -> bool:
    """Whether a worker of this node is inside a batch task now (Ray titles a busy worker ``ray::<task>``)."""
    for child in psutil.Process(process.pid).children(recursive=True):
        try:
            if child.name().startswith("ray::_remote_job") or "ray::_remote_job" in " ".join(child.cmdline()):
                return True
        except psutil.NoSuchProcess:
            continue
    return False


def _raylet_node_id(process: subprocess.Popen, timeout: float = 60) -> str:
    """The node id a `ray start` process's raylet runs as (from its command line)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(process.pid).children(recursive=True):
            try:
                found = [a for a in child.cmdline() if a.startswith("--node_id=")]
            except psutil.NoSuchProcess:
                continue
            if child.name() == "raylet" and found:
                return found[0].split("=", 1)[1]
        time.sleep(0.2)
    raise TimeoutError("the node's raylet did not start")


@pytest.fixture
def cluster():
    """A head and a second node, each with 1 CPU: (address, node-2 process, node-2 id, environment)."""
    temp = tempfile.mkdtemp(prefix="rsray", dir="/tmp")  # short: Ray keeps Unix sockets there
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    port = _free_port()
    address = f"127.0.0.1:{port}"
    head = _start(["--head", "--port", str(port), "--temp-dir", temp, "--include-dashboard", "false"], env)
    second = None
    try:
        _raylet_node_id(head)
        second = _start(["--address", address, "--dashboard-agent-listen-port", str(_free_port())], env)
        yield address, second, _raylet_node_id(second), env
    finally:
        for process in (second, head):
            if process is not None:
                _kill_tree(process)  # a throw-away cluster: nothing to stop gracefully
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_killing_a_node_mid_batch_loses_no_job(cluster, tmp_path):
    address, second, second_id, env = cluster
    rows = []
    for i in range(JOBS):
        window = (17 * i, 9 * i, 300 - 3 * i, 290 + 2 * i)
        (s2,) = s2_scenes(tmp_path, [window])
        s2 = s2.rename(tmp_path / f"s2_{i}.tif")
        rows.append([f"job{i:02d}", s2.name, s1_scene(tmp_path, f"s1_{i}.tif", window).name])
    manifest = write_csv(tmp_path / "jobs.csv", ["id", "s2", "s1"], rows)
    out = tmp_path / "out"
    report = out / REPORT_NAME
    driver = subprocess.Popen(
        [sys.executable, "-c", "import sys; from rsinfer.cli import main; sys.exit(main(sys.argv[1:]))", "batch",
         "--pipeline", "decloud", "--random-weights", "--option", f"network={json.dumps(SMALL_DECLOUD['network'])}",
         "--manifest", os.fspath(manifest), "--out-dir", os.fspath(out), "--address", address, "--workers", "2",
         "--max-retries", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        killed_after = None
        deadline = time.monotonic() + 150
        while killed_after is None and driver.poll() is None and time.monotonic() < deadline:
            lines = read_report(report) if report.exists() else []
            # node 2 has done a job and is inside its next one
            if any(line["node"] == second_id for line in lines) and _running_a_job(second):
                _kill_tree(second)
                killed_after = len(lines)
            time.sleep(0.05)
        _, stderr = driver.communicate(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if driver.poll() is None:
            driver.kill()
    assert killed_after is not None and killed_after < JOBS, "node 2 was not killed mid-run"
    assert driver.returncode == 0, stderr
    lines = read_report(report, "last")
    assert sorted(line["id"] for line in lines) == [f"job{i:02d}" for i in range(JOBS)]  # each exactly once
    assert all(line["status"] == "ok" for line in lines), lines
    for line in lines:
        assert hashlib.sha256(Path(line["output"]).read_bytes()).hexdigest() == line["sha256"]
    assert {line["node"] for line in lines[:killed_after]} >= {second_id}  # both nodes worked before the kill
    after = lines[killed_after:]
    assert after and all(line["node"] != second_id for line in after)  # the dead node did nothing more
    assert any(line["attempts"] == 2 for line in after), "the job on the killed node was not retried"
    assert sorted(p.name for p in out.iterdir()) == sorted([REPORT_NAME, *(f"job{i:02d}.tif" for i in range(JOBS))])
