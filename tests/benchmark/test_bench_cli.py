"""`rsinfer bench` end to end: the documented JSON (schema-checked), statistics recomputed from the raw latencies,
offline throughput, the server's bound, engines interleaved, and tiles read through the pipeline's plan."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import rasterio
from tests.batch.batch_data import SMALL_DECLOUD, s2_scenes

from rsinfer import pipelines
from rsinfer.batch import pipeline_inputs
from rsinfer.benchmark import SCHEMA
from rsinfer.benchmark.tiles import plan_for, read_tiles, synthetic_band_names, write_synthetic_inputs
from rsinfer.cli import main
from rsinfer.io import raster_info
from rsinfer.tiling import Tiling, plan_windows

SMALL = ["--option", f"network={json.dumps(SMALL_DECLOUD['network'])}"]


def _document(path) -> dict:
    document = json.loads(path.read_text())
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(document, SCHEMA)
    return document


def _check_statistics(engine: dict) -> None:
    latencies = engine["latencies_ms"]
    assert engine["queries"] == len(latencies) == len(engine["issued_s"])
    for p in (50, 90, 99):
        assert engine["latency_ms"][f"p{p}"] == pytest.approx(np.percentile(latencies, p, method="inverted_cdf"))
    lat = engine["latency_ms"]
    assert lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"] == pytest.approx(max(latencies))


def test_single_stream_decloud_writes_the_documented_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert main(["bench", "--pipeline", "decloud", "--random-weights", *SMALL, "--scenario", "single-stream",
                 "--count", "20", "--tile", "64", "--json", str(out)]) == 0
    document = _document(out)
    assert document["schema"] == "rsinfer.bench/1"
    assert document["pipeline"] == {"spec": {"name": "decloud", "weights": "random:0", "options": {
        "network": SMALL_DECLOUD["network"]}}, "tile": 64, "batch_size": 1, "inputs": "synthetic"}
    assert document["scenario"]["name"] == "single-stream" and document["scenario"]["count"] == 20
    (engine,) = document["engines"]
    assert engine["engine"] == "torch" and engine["queries"] == 20
    assert len(engine["warmup_ms"]) == 3  # apart from the 20 measured queries
    _check_statistics(engine)
    assert engine["tiles_per_s"] == pytest.approx(20 / engine["busy_s"])
    assert engine["busy_s"] == pytest.approx(sum(engine["latencies_ms"]) / 1e3)
    assert engine["mpix_per_s"] == pytest.approx(engine["tiles_per_s"] * 64 * 64 / 1e6)
    assert document["process"]["peak_rss_bytes"] > 50 * 2**20
    assert document["process"]["threads"]["torch_intra_op"] == 1  # tests/conftest.py: one torch thread
    assert "torch" in dict(document["environment"]["packages"])
    assert "decloud single-stream: tile 64" in capsys.readouterr().out


def test_offline_ndwi_reports_throughput_of_whole_batches(tmp_path):
    out = tmp_path / "b.json"
    assert main(["bench", "--pipeline", "ndwi", "--scenario", "offline", "--count", "6", "--tile", "96",
                 "--batch-size", "3", "--warmup", "1", "--json", str(out), "--quiet"]) == 0
    (engine,) = _document(out)["engines"]
    assert engine["engine"] == "default" and engine["queries"] == 6
    assert _document(out)["pipeline"]["batch_size"] == 3
    assert engine["tiles_per_s"] == pytest.approx(6 * 3 / engine["busy_s"])
    assert engine["mpix_per_s"] == pytest.approx(engine["tiles_per_s"] * 96 * 96 / 1e6)
    assert engine["p99_held"] is None


def test_server_ndwi_checks_the_p99_bound(tmp_path):
    out = tmp_path / "b.json"
    assert main(["bench", "--pipeline", "ndwi", "--scenario", "server", "--count", "40", "--tile", "64",
                 "--rate", "50", "--p99-bound", "0.001", "--json", str(out), "--quiet"]) == 0
    document = _document(out)
    (engine,) = document["engines"]
    assert document["scenario"]["rate_qps"] == 50 and document["scenario"]["segments"] == 4
    _check_statistics(engine)
    assert engine["p99_held"] is False  # 1 µs: no tile is that fast
    arrivals = engine["issued_s"][:10]
    assert all(a < b for a, b in zip(arrivals, arrivals[1:]))
    assert main(["bench", "--pipeline", "ndwi", "--scenario", "server", "--count", "8", "--tile", "64",
                 "--json", str(out), "--quiet"]) == 0
    document = _document(out)  # defaults from the warm-up: half busy, a bound of 10 service times
    service = document["engines"][0]["warmup_ms"][-1] / 1e3
    assert document["scenario"]["rate_qps"] == pytest.approx(0.5 / service)
    assert document["scenario"]["p99_bound_ms"] == pytest.approx(10 * service * 1e3)


@pytest.mark.slow
def test_engines_run_side_by_side_interleaved_and_plot(tmp_path):
    out, plot = tmp_path / "b.json", tmp_path / "b.png"
    assert main(["bench", "--pipeline", "decloud", "--random-weights", *SMALL, "--scenario", "single-stream",
                 "--count", "5", "--tile", "64", "--warmup", "1", "--engines", "torch", "onnxruntime",
                 "--json", str(out), "--plot", str(plot), "--quiet"]) == 0
    torch_engine, ort_engine = _document(out)["engines"]
    assert (torch_engine["engine"], ort_engine["engine"]) == ("torch", "onnxruntime")
    issued = sorted([(t, "torch") for t in torch_engine["issued_s"]] + [(t, "ort") for t in ort_engine["issued_s"]])
    assert [name for _, name in issued] == ["torch", "ort"] * 5  # query by query
    image = pytest.importorskip("matplotlib.image").imread(plot)
    assert image.shape[:2] == (400, 1100)  # 11 x 4 inches at 100 dpi


def test_engines_need_a_pipeline_with_engines(tmp_path, capsys):
    assert main(["bench", "--pipeline", "ndwi", "--scenario", "offline", "--count", "1", "--engines", "torch"]) == 2
    assert "pipeline 'ndwi' has no engine option" in capsys.readouterr().err


def test_real_tiles_are_read_through_the_plan(tmp_path):
    (scene,) = s2_scenes(tmp_path, [(30, 40, 150, 170)])
    pipe = pipelines.build(pipelines.PipelineSpec("ndwi"))
    tiling = Tiling(64, 8, "cosine", 5)
    plan = plan_for(pipe, {"s2": str(scene)}, tiling)
    tiles = read_tiles(pipe, plan, {"s2": str(scene)}, tiling, 5)
    windows = plan_windows(150, 170, 64, 8)[:5]
    assert tiles.windows == tuple(windows) and tiles.shape == (64, 64)
    with rasterio.open(scene) as src:
        for i, window in enumerate(windows):
            expected = src.read((3, 8), window=((window.row, window.bottom), (window.col, window.right)))
            np.testing.assert_array_equal(tiles.inputs["s2"][i].numpy(), expected.astype(np.float32))
    assert tiles.valid.all()


def test_synthetic_inputs_carry_the_bands_the_contract_names(tmp_path):
    contracts = pipeline_inputs(pipelines.PipelineSpec("decloud", "random:0"))
    paths = write_synthetic_inputs(contracts, 40, tmp_path)
    s2, s1 = raster_info(paths["s2"]), raster_info(paths["s1"])
    assert s2.descriptions == synthetic_band_names(contracts[0]) and len(s2.descriptions) in (12, 13)
    assert s1.descriptions == ("VV", "VH") and s2.shape == s1.shape == (40, 40)
    with rasterio.open(paths["s2"]) as ds:
        values = ds.read()
    assert values.min() >= 1 and values.max() < 10_000 and math.isclose(values.mean(), 5000.5, rel_tol=0.02)
