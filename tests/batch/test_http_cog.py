"""COG inputs over HTTP: a loopback server with range support (`tests.batch.range_server`) serves COGs of the bundled
Sentinel-2 chip; the manifest's http:// URLs are read through GDAL's /vsicurl/ by range requests, in the batch and by
windows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from tests.batch.batch_data import band, ndwi_reference, s2_scenes, tags, write_csv
from tests.scene.scene_data import S2

from rsinfer.batch import REPORT_NAME, pipeline_inputs, read_manifest, read_report
from rsinfer.cli import main
from rsinfer.io import InputSpec, RasterSource, grid_of, open_raster
from rsinfer.pipelines import PipelineSpec
from rsinfer.tiling import Window

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(tmp_path, monkeypatch):
    """(base URL, served folder, requests so far); the folder holds COGs (128-pixel tiles) of S2 crops and the chip."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # GDAL's curl honours proxy variables
    served, log = tmp_path / "served", tmp_path / "requests.jsonl"
    served.mkdir()
    for scene in [*s2_scenes(tmp_path, [(0, 0, 300, 280), (250, 31, 262, 190)]), S2]:
        rasterio.shutil.copy(scene, served / f"{scene.stem}.tif", driver="COG", blocksize=128)
    process = subprocess.Popen([sys.executable, "-m", "tests.batch.range_server", os.fspath(served), os.fspath(log)],
                               cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline())

        def requests() -> list[dict]:
            return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

        yield f"http://127.0.0.1:{port}", served, requests
    finally:
        process.kill()
        process.wait()


def test_windows_of_a_remote_cog_are_read_by_range_requests(server):
    url, served, requests = server
    (job,) = read_manifest(write_csv(served.parent / "one.csv", ["s2"], [[f"{url}/Spain_7370579_S2Hand.tif"]]),
                           pipeline_inputs(PipelineSpec("ndwi")), served.parent / "out")
    remote = job.inputs["s2"]
    assert remote == f"/vsicurl/{url}/Spain_7370579_S2Hand.tif"
    dataset = open_raster(remote)
    source = RasterSource(dataset, grid_of(dataset), bands=(3, 8), spec=InputSpec())
    values, valid = source.read(Window(130, 140, 100, 90), (100, 90))
    source.close()
    dataset.close()
    with rasterio.open(served / "Spain_7370579_S2Hand.tif") as local:
        expected = local.read((3, 8), window=((130, 230), (140, 230)))
    np.testing.assert_array_equal(values, expected.astype(np.float32))
    assert valid.all()
    size = (served / "Spain_7370579_S2Hand.tif").stat().st_size
    gets = [r for r in requests() if r["method"] == "GET" and r["path"].endswith("S2Hand.tif")]
    assert gets and all(r["range"] is not None for r in gets)  # never the whole file
    sent = sum(r["bytes"] for r in gets)
    assert sent < size / 4  # a 100 x 90 window touches 4 of the chip's 16 tiles


@pytest.mark.slow
def test_batch_over_http_matches_the_local_result_and_resumes(server, tmp_path):
    url, served, requests = server
    names = ["scene0", "scene1"]
    manifest = write_csv(tmp_path / "jobs.csv", ["id", "s2"], [[name, f"{url}/{name}.tif"] for name in names])
    out = tmp_path / "out"
    command = ["batch", "--pipeline", "ndwi", "--manifest", str(manifest), "--out-dir", str(out), "--workers", "2",
               "--quiet"]
    assert main(command) == 0
    assert {line["id"]: line["status"] for line in read_report(out / REPORT_NAME, "last")} == dict.fromkeys(names, "ok")
    for name in names:
        expected, written = ndwi_reference(served / f"{name}.tif"), band(out / f"{name}.tif").astype(np.float64)
        np.testing.assert_array_equal(np.isnan(written), np.isnan(expected))
        np.testing.assert_allclose(written[~np.isnan(expected)], expected[~np.isnan(expected)], rtol=1e-5, atol=1e-6)
        assert json.loads(tags(out / f"{name}.tif")["RSINFER_INPUTS"]) == [
            {"name": "s2", "file": f"/vsicurl/{url}/{name}.tif", "bytes": None, "sha256": None}]
    gets = [r for r in requests() if r["method"] == "GET"]
    assert gets and all(r["range"] is not None for r in gets)
    digests = {name: Path(out / f"{name}.tif").read_bytes() for name in names}
    assert main([*command, "--resume"]) == 0
    assert {line["id"]: line["status"] for line in read_report(out / REPORT_NAME, "last")} == \
        dict.fromkeys(names, "skipped")
    assert {name: Path(out / f"{name}.tif").read_bytes() for name in names} == digests
