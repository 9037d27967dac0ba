"""One job in a worker, without Ray: written outputs verify, --resume skips exactly the verified ones and redoes stale
or half-written ones, a bad scene fails its job only, stale temporaries go."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import socket

import numpy as np
import pytest
import rasterio
import torch
from tests.batch.batch_data import band, corrupt_raster, ndwi_reference, s2_scenes, tags

from rsinfer.batch import Job, JobSettings, Recorded, not_done_reason, remove_stale_temporaries, run_job
from rsinfer.batch.worker import pipeline_for
from rsinfer.pipelines import OutputOptions, PipelineSpec
from rsinfer.tiling import Tiling

NDWI = PipelineSpec("ndwi")
TILING = Tiling(96, 16, "cosine", 3)
SETTINGS = JobSettings(NDWI.to_json(), TILING, OutputOptions(), command=("rsinfer", "batch"))
RESUME = dataclasses.replace(SETTINGS, resume=True)


def _recorded(path, settings: JobSettings = SETTINGS) -> Recorded:
    """What the report records after writing `path` with `settings`."""
    return Recorded(_sha256(path), settings.identity())


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def job(tmp_path) -> Job:
    (scene,) = s2_scenes(tmp_path, [(40, 70, 150, 133)])
    return Job("a", {"s2": str(scene)}, str(tmp_path / "a.tif"))


def test_a_job_writes_its_output_with_the_tags_that_verify_it(job, tmp_path):
    outcome = run_job(job, SETTINGS, threads=2, node="n1")
    assert (outcome.id, outcome.status, outcome.error, outcome.host, outcome.node) == (
        "a", "ok", None, socket.gethostname(), "n1")
    assert torch.get_num_threads() == 2  # the task's CPUs, set on every task
    output = tmp_path / "a.tif"
    assert outcome.sha256 == _sha256(output)
    expected = ndwi_reference(job.inputs["s2"])
    written = band(output).astype(np.float64)
    np.testing.assert_array_equal(np.isnan(written), np.isnan(expected))
    np.testing.assert_allclose(written[~np.isnan(expected)], expected[~np.isnan(expected)], rtol=1e-5, atol=1e-6)
    found = tags(output)
    assert json.loads(found["RSINFER_SPEC"]) == {"name": "ndwi", "weights": "none", "options": {}}
    assert json.loads(found["RSINFER_TILING"]) == dataclasses.asdict(TILING)
    assert found["RSINFER_COMMAND"] == "rsinfer batch"
    assert not_done_reason(job, SETTINGS, _recorded(output)) is None
    assert not_done_reason(job, SETTINGS, None) == "the report has no record of writing this output"


def test_the_settings_identity_covers_what_decides_the_output():
    same = [dataclasses.replace(SETTINGS, resume=True, command=None),
            dataclasses.replace(SETTINGS, output_options=OutputOptions(overwrite=True)),
            dataclasses.replace(SETTINGS, spec=PipelineSpec("ndwi", "none", {}).to_json())]
    assert {settings.identity() for settings in same} == {SETTINGS.identity()}
    other = [dataclasses.replace(SETTINGS, tiling=Tiling(128, 16, "cosine", 3)),
             dataclasses.replace(SETTINGS, tiling=Tiling(96, 16, "gaussian", 3)),
             dataclasses.replace(SETTINGS, output_options=OutputOptions(cog=True)),
             dataclasses.replace(SETTINGS, output_options=OutputOptions(dtype="float64")),
             dataclasses.replace(SETTINGS, spec=PipelineSpec("ndvi").to_json())]
    assert len({settings.identity() for settings in [SETTINGS, *other]}) == 6


def test_resume_skips_a_verified_output_without_touching_it(job, tmp_path):
    run_job(job, SETTINGS)
    output = tmp_path / "a.tif"
    before, mtime, recorded = output.read_bytes(), output.stat().st_mtime_ns, _recorded(output)
    outcome = run_job(job, RESUME, recorded=recorded)
    assert (outcome.status, outcome.sha256) == ("skipped", hashlib.sha256(before).hexdigest())
    assert output.read_bytes() == before and output.stat().st_mtime_ns == mtime
    retiled = dataclasses.replace(RESUME, tiling=Tiling(128, 16, "cosine", 3))
    assert not_done_reason(job, retiled, recorded) == \
        "the report recorded this output with other settings (spec, tiling or output options)"
    assert run_job(job, retiled, recorded=recorded).status == "ok"


def test_resume_redoes_a_half_written_output(job, tmp_path):
    run_job(job, SETTINGS)
    output = tmp_path / "a.tif"
    pixels, recorded = band(output), _recorded(output)
    output.write_bytes(output.read_bytes()[: output.stat().st_size // 2])
    assert tags(output)["RSINFER_PIPELINE"] == "ndwi"  # its header still opens, with the right tags
    assert not_done_reason(job, SETTINGS, recorded) == "the output's bytes are not the bytes the report recorded"
    outcome = run_job(job, RESUME, recorded=recorded)
    assert outcome.status == "ok" and outcome.sha256 == _sha256(output)
    np.testing.assert_array_equal(band(output), pixels)  # the same scene, the same pixels


def test_outputs_of_other_inputs_or_specs_are_stale(job, tmp_path):
    run_job(job, SETTINGS)
    output = tmp_path / "a.tif"
    ndvi = dataclasses.replace(SETTINGS, spec=PipelineSpec("ndvi").to_json())
    assert not_done_reason(job, ndvi, _recorded(output, ndvi)) == \
        "the output's RSINFER_PIPELINE differs from this job's"  # recorded for ndvi, but the file says ndwi
    s2_scenes(tmp_path, [(41, 70, 150, 133)])  # same file name and size, other bytes: a scene replaced
    assert not_done_reason(job, SETTINGS, _recorded(output)) == "the output's RSINFER_INPUTS differs from this job's"
    s2_scenes(tmp_path, [(40, 70, 150, 133)])  # the original scene back
    assert not_done_reason(job, SETTINGS, _recorded(output)) is None
    assert not_done_reason(dataclasses.replace(job, output=str(tmp_path / "none.tif")), SETTINGS,
                           _recorded(output)) == "no output yet"
    with rasterio.open(output, "r+") as ds:
        ds.update_tags(RSINFER_SPEC=json.dumps({"name": "ndwi", "weights": "none", "options": {"x": 1}}))
    assert not_done_reason(job, SETTINGS, _recorded(output)) == "the output's RSINFER_SPEC differs from this job's"
    _rewrite_without(output, "RSINFER_SPEC")  # an output of a version that did not record the spec
    assert not_done_reason(job, SETTINGS, _recorded(output)) == "the output has no RSINFER_SPEC tag"
    output.write_bytes(b"not a raster")
    assert not_done_reason(job, SETTINGS, _recorded(output)).startswith("the output does not open")


def _rewrite_without(path, tag: str) -> None:
    with rasterio.open(path) as ds:
        profile, data, found = ds.profile, ds.read(), ds.tags()
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
        ds.update_tags(**{k: v for k, v in found.items() if k != tag})


def test_a_bad_scene_fails_its_job_only(tmp_path):
    bad = Job("bad", {"s2": str(corrupt_raster(tmp_path / "bad.tif"))}, str(tmp_path / "out.tif"))
    outcome = run_job(bad, SETTINGS)
    assert outcome.status == "failed" and outcome.sha256 is None
    assert outcome.error.startswith(f"RasterInputError: {tmp_path / 'bad.tif'}: not a raster GDAL can read")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tif"]  # no output, no temporary


def test_stale_temporaries_of_a_job_are_removed(tmp_path):
    names = [".a.tif.k3j9x_1q.tmp.tif", ".a.tif.zz.cog.tif", ".b.tif.k3j9x_1q.tmp.tif", "a.tif", ".a.tif.x.png",
             ".[x].tif.q.tmp.tif"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path / "a.tif") == 2
    assert remove_stale_temporaries(tmp_path / "[x].tif") == 1  # glob characters in a name are literal
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a.tif.x.png", ".b.tif.k3j9x_1q.tmp.tif", "a.tif"]


def test_a_worker_builds_each_spec_once():
    first = pipeline_for(NDWI.to_json())
    assert pipeline_for(PipelineSpec("ndwi").to_json()) is first
    assert pipeline_for(PipelineSpec("ndvi").to_json()) is not first
