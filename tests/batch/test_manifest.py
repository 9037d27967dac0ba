"""Manifests: CSV, JSONL and STAC read into jobs; every problem of a manifest reported at once, before any work."""

from __future__ import annotations

import json
import os

import pytest
from tests.batch.batch_data import s2_scenes, write_csv

from rsinfer.batch import ManifestError, pipeline_inputs, read_manifest
from rsinfer.pipelines import PipelineSpec

NDWI = pipeline_inputs(PipelineSpec("ndwi"))


def test_pipeline_inputs_follow_the_options_without_building_networks():
    assert [(c.name, c.required) for c in NDWI] == [("s2", True)]
    decloud = pipeline_inputs(PipelineSpec("decloud", "random:0", {"network": {"widths": [10**6]}}))
    assert [(c.name, c.required) for c in decloud] == [("s2", True), ("s1", True)]  # a huge network: never built
    translate = pipeline_inputs(PipelineSpec("translate", "random:0", {"target": "s2_l2a"}))
    assert [(c.name, c.required) for c in translate] == [("dem", False), ("s1_rtc", False), ("s2_l1c", False)]
    with pytest.raises(ValueError, match="steps"):
        pipeline_inputs(PipelineSpec("ndwi", "none", {"steps": 3}))


def test_csv_rows_become_jobs_with_resolved_paths(tmp_path):
    scenes = s2_scenes(tmp_path)
    (tmp_path / "sub").mkdir()
    manifest = write_csv(tmp_path / "sub" / "jobs.csv", ["s2", "id", "out"],
                         [["../scene0.tif", "first", ""], [str(scenes[1]), "", "nested/b.tiff"],
                          ["https://example.org/cogs/S2B_T31.tif", "remote", ""]])
    out = tmp_path / "out"
    jobs = read_manifest(manifest, NDWI, out)
    assert [job.id for job in jobs] == ["first", "scene1", "remote"]  # default id: the input's file stem
    assert jobs[0].inputs == {"s2": os.fspath(scenes[0])}  # relative to the manifest's folder
    assert jobs[0].output == os.fspath(out / "first.tif")
    assert jobs[1].output == os.fspath(out / "nested" / "b.tiff")
    assert jobs[2].inputs == {"s2": "/vsicurl/https://example.org/cogs/S2B_T31.tif"}  # read by windows over HTTP
    assert jobs[2].output == os.fspath(out / "remote.tif")


def test_every_problem_is_reported_at_once(tmp_path):
    scenes = s2_scenes(tmp_path)
    (tmp_path / "folder.tif").mkdir()
    manifest = write_csv(tmp_path / "jobs.csv", ["id", "s2", "out", "s3"], [
        ["a", str(scenes[0]), "", ""],
        ["a", str(scenes[1]), "", ""],                # duplicate id
        ["c", str(scenes[2]), "a.tif", ""],           # duplicate output (a's default)
        ["d", "missing.tif", "", ""],                 # no such file
        ["e", "folder.tif", "", ""],                  # not a file
        ["f", "", "", ""],                            # no value for s2
        ["g", str(scenes[0]), "g.png", ""],           # not a GeoTIFF name
        ["h/i", str(scenes[0]), "", ""],              # an id that cannot name a file
    ])
    with pytest.raises(ManifestError) as caught:
        read_manifest(manifest, NDWI, tmp_path / "out")
    problems = caught.value.problems
    expected = ["unknown column(s) ['s3']", "duplicate id 'a' in line 2, line 3",
                f"duplicate output '{tmp_path / 'out' / 'a.tif'}' in line 2, line 3, line 4",
                "line 5: input 's2': ", "missing.tif: no such file", "line 6: input 's2': ", "folder.tif: not a file",
                "line 7: no value for required input(s) ['s2']", "line 8: output ", "is not a GeoTIFF name",
                "line 9: id 'h/i' cannot name an output file"]
    for text in expected:
        assert any(text in problem for problem in problems), (text, problems)
    assert len(problems) == 8
    assert str(caught.value).startswith(f"manifest {manifest}: 8 problems:\n  ")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_inputs_are_problems(tmp_path):
    (scene,) = s2_scenes(tmp_path, [(0, 0, 20, 20)])
    scene.chmod(0)
    with pytest.raises(ManifestError, match="unreadable"):
        read_manifest(write_csv(tmp_path / "jobs.csv", ["s2"], [[str(scene)]]), NDWI, tmp_path / "out")


def test_missing_columns_and_existing_outputs(tmp_path):
    (scene,) = s2_scenes(tmp_path, [(0, 0, 20, 20)])
    with pytest.raises(ManifestError, match=r"missing column\(s\) \['s2'\]"):
        read_manifest(write_csv(tmp_path / "ids.csv", ["id"], [["a"]]), NDWI, tmp_path)
    manifest = write_csv(tmp_path / "jobs.csv", ["id", "s2"], [["a", str(scene)]])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.tif").write_bytes(b"")
    with pytest.raises(ManifestError, match="already exists"):
        read_manifest(manifest, NDWI, tmp_path / "out")
    for existing in ("resume", "overwrite"):
        assert [job.id for job in read_manifest(manifest, NDWI, tmp_path / "out", existing=existing)] == ["a"]


def test_jsonl_manifest_and_its_bad_lines(tmp_path):
    scenes = s2_scenes(tmp_path, [(0, 0, 20, 20), (5, 5, 21, 22)])
    good = tmp_path / "jobs.jsonl"
    good.write_text("\n".join(json.dumps({"id": f"j{i}", "s2": s.name}) for i, s in enumerate(scenes)) + "\n\n")
    jobs = read_manifest(good, NDWI, tmp_path / "out")
    assert [(job.id, job.inputs["s2"]) for job in jobs] == [("j0", os.fspath(scenes[0])), ("j1", os.fspath(scenes[1]))]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"s2": "scene0.tif"}\n{"s2": \n{"s2": 3}\n')
    with pytest.raises(ManifestError) as caught:
        read_manifest(bad, NDWI, tmp_path / "out")
    assert len(caught.value.problems) == 2
    assert caught.value.problems[0].startswith("line 2: not JSON")
    assert caught.value.problems[1].startswith("line 3: expected an object of strings")


def test_inputs_all_optional_need_at_least_one(tmp_path):
    (scene,) = s2_scenes(tmp_path, [(0, 0, 20, 20)])
    translate = pipeline_inputs(PipelineSpec("translate", "random:0", {"target": "s2_l2a"}))
    manifest = write_csv(tmp_path / "jobs.csv", ["id", "s2_l1c", "dem"], [["a", str(scene), ""], ["b", "", ""]])
    with pytest.raises(ManifestError, match=r"line 3: no input given; give at least one of \['dem', 's1_rtc', "):
        read_manifest(manifest, translate, tmp_path / "out")


def test_unknown_manifest_format(tmp_path):
    (tmp_path / "jobs.txt").write_text("s2\n")
    with pytest.raises(ValueError, match=r"unknown format '.txt'; use .csv, .jsonl, or .json"):
        read_manifest(tmp_path / "jobs.txt", NDWI, tmp_path)


def test_stac_item_collection_with_asset_mapping(tmp_path):
    pystac = pytest.importorskip("pystac")
    import datetime

    scenes = s2_scenes(tmp_path, [(0, 0, 20, 20), (5, 5, 21, 22)])
    items = []
    for i, scene in enumerate(scenes):
        item = pystac.Item(f"S2_{i}", {"type": "Point", "coordinates": [0.0, 0.0]}, [0.0, 0.0, 0.0, 0.0],
                           datetime.datetime(2020, 5, 18), {})
        item.add_asset("l1c", pystac.Asset(os.fspath(scene)))
        if i == 0:
            item.add_asset("remote", pystac.Asset("https://example.org/S2_0_B08.tif"))
        items.append(item)
    collection = tmp_path / "items.json"
    collection.write_text(json.dumps(pystac.ItemCollection(items).to_dict()))
    jobs = read_manifest(collection, NDWI, tmp_path / "out", assets={"s2": "l1c"})
    assert [(job.id, job.inputs["s2"], job.output) for job in jobs] == [
        (f"S2_{i}", os.fspath(scene), os.fspath(tmp_path / "out" / f"S2_{i}.tif")) for i, scene in enumerate(scenes)]
    with pytest.raises(ManifestError) as caught:
        read_manifest(collection, NDWI, tmp_path / "out", assets={"s2": "remote"})
    assert caught.value.problems == ("item 2 (S2_1): no asset 'remote' for input 's2' (assets: ['l1c']; map inputs "
                                     "to asset keys with --asset NAME=KEY)",)
    with pytest.raises(ManifestError) as caught:  # without --asset the key is the input name
        read_manifest(collection, NDWI, tmp_path / "out")
    assert [p.split(":")[0] for p in caught.value.problems] == ["item 1 (S2_0)", "item 2 (S2_1)"]
    assert "no asset 's2' for input 's2'" in caught.value.problems[0]
    with pytest.raises(ManifestError, match=r"--asset names \['b8'\], which are not inputs"):
        read_manifest(collection, NDWI, tmp_path / "out", assets={"s2": "l1c", "b8": "x"})
