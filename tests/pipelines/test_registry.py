"""The pipeline registry and contract: every pipeline is listed, rebuilt from its spec in a fresh process, states its
inputs as the command line says, and writes every provenance tag (read back with rasterio and with gdalinfo)."""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import pickle
import subprocess
import sys

import pytest
import rasterio
from tests.scene.scene_data import S1, S2, crop, gdalinfo, metadata_item

from rsinfer import pipelines
from rsinfer.pipelines import PipelineSpec, Tiling

DBCR_MICRO = {"widths": [4, 8, 16, 32], "encoder_blocks": [1, 1, 1, 1], "decoder_blocks": [1, 1, 1, 1],
              "time_dim": 8, "time_pe_dim": 8}
COPGEN_TINY = {"embed_dim": 32, "depth": 2, "num_heads": 2}
VAE_TINY = {"ch": 32, "ch_mult": [1, 1, 1, 1], "num_res_blocks": 1}
TIRSIT_TINY = {"widths": [8, 16, 32]}

# name → (spec, inputs: name → "s2" | "s1" crop, tiling): a small, fast run of every pipeline on real data.
RUNS = {
    "ndwi": (PipelineSpec("ndwi"), {"s2": "s2"}, None),
    "ndvi": (PipelineSpec("ndvi"), {"s2": "s2"}, None),
    "decloud": (PipelineSpec("decloud", "random:1", {"steps": 2, "network": DBCR_MICRO}), {"s2": "s2", "s1": "s1"},
                Tiling(64, 16)),
    "translate": (PipelineSpec("translate", "random:1", {"target": "s2_l2a", "steps": 1, "network": COPGEN_TINY,
                                                         "vae": VAE_TINY}), {"s1_rtc": "s1"}, None),
    "classify": (PipelineSpec("classify", "random:1"), {"s2": "s2"}, None),
    "embed": (PipelineSpec("embed", "random:1"), {"s2": "s2"}, None),
}
EXPECTED_TAGS = {"RSINFER_VERSION", "RSINFER_PIPELINE", "RSINFER_MODEL", "RSINFER_WEIGHTS", "RSINFER_TILING",
                 "RSINFER_INPUTS", "RSINFER_CREATED"}
NETWORK_TAGS = {"RSINFER_ENGINE", "RSINFER_PRECISION", "RSINFER_SEED"}


def _spec_of_every_pipeline() -> dict[str, PipelineSpec]:
    return {name: spec for name, (spec, _, _) in RUNS.items()}


def _build_in_worker(spec_json: str) -> tuple[str, str, bytes]:
    """In a spawned process: rebuild the pipeline from its spec's JSON; report its class, model and options."""
    spec = PipelineSpec.from_json(spec_json)
    pipe = pipelines.build(spec)
    return type(pipe).__name__, pipe.model, pickle.dumps(pipe.options)


def test_the_registry_lists_every_pipeline() -> None:
    assert set(pipelines.names()) >= {"ndwi", "ndvi", "decloud", "translate", "pansharpen", "classify", "embed",
                                      "fill-gap"}
    for name in pipelines.names():
        cls = pipelines.get(name)
        default = cls.default_tiling
        assert cls.name == name
        assert (default.tile, default.overlap, default.blend, default.batch_size) == pipelines.entry(name).tiling, name
    for name, (spec, _, _) in RUNS.items():  # what the command line states = what the pipeline takes
        stated = pipelines.entry(name).inputs
        taken = tuple(c.name for c in pipelines.build(spec).inputs())
        assert taken == stated or (name == "translate" and set(stated) - set(taken) == {spec.options["target"]})
    with pytest.raises(ValueError, match="unknown pipeline 'declould'"):
        pipelines.get("declould")


def test_every_pipeline_is_rebuilt_from_its_spec_in_a_fresh_process() -> None:
    specs = _spec_of_every_pipeline()
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        built = dict(zip(specs, pool.map(_build_in_worker, [spec.to_json() for spec in specs.values()])))
    for name, spec in specs.items():
        here = pipelines.build(spec)
        class_name, model, options = built[name]
        assert (class_name, model) == (type(here).__name__, here.model)
        assert pickle.loads(options) == here.options
        assert PipelineSpec.from_json(spec.to_json()) == spec
        pickle.loads(pickle.dumps(spec))


def test_specs_refuse_what_cannot_travel_and_unknown_options() -> None:
    with pytest.raises(TypeError, match="not a plain value"):
        PipelineSpec("decloud", "random:0", {"network": object()})
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['stpes'\] for pipeline 'decloud'"):
        pipelines.build(PipelineSpec("decloud", "random:0", {"stpes": 3}))
    with pytest.raises(ValueError, match="option 'sampler' of pipeline 'decloud' is 'ddim'; choose one of"):
        pipelines.build(PipelineSpec("decloud", "random:0", {"sampler": "ddim"}))
    with pytest.raises(ValueError, match="runs networks: give weights"):
        pipelines.build(PipelineSpec("decloud"))
    with pytest.raises(ValueError, match="has no network, so it takes no weights"):
        pipelines.build(PipelineSpec("ndwi", "random:0"))
    with pytest.raises(ValueError, match="written 'random:SEED'"):
        PipelineSpec("decloud", "random").parsed_weights()


@pytest.fixture(scope="module")
def crops(tmp_path_factory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("crops")
    return {name: str(crop(path, directory / f"{name}.tif", 180, 200, 90, 120))
            for name, path in (("s2", S2), ("s1", S1))}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_every_output_carries_the_provenance_tags(name, crops, tmp_path) -> None:
    spec, inputs, tiling = RUNS[name]
    pipe = pipelines.build(spec)
    out = tmp_path / "out.tif"
    pipelines.run(pipe, {k: crops[v] for k, v in inputs.items()}, out, tiling=tiling, progress=False,
                  command=["rsinfer", "test"])
    with rasterio.open(out) as ds:
        tags = ds.tags()
    missing = EXPECTED_TAGS | {"RSINFER_COMMAND"} | (NETWORK_TAGS if pipe.has_networks else set())
    assert missing <= set(tags), f"{name} lacks {sorted(missing - set(tags))}"
    assert tags["RSINFER_PIPELINE"] == name
    assert tags["RSINFER_WEIGHTS"] == ("random:seed=1" if pipe.has_networks else "none")
    assert [i["name"] for i in json.loads(tags["RSINFER_INPUTS"])] == list(inputs)
    assert set(json.loads(tags["RSINFER_TILING"])) == {"tile", "overlap", "blend", "batch_size"}
    info = gdalinfo(out)
    for key in EXPECTED_TAGS:
        assert metadata_item(info, "", key) == tags[key]


def test_import_rsinfer_exposes_the_subpackages_lazily() -> None:
    code = ("import sys, rsinfer; assert 'torch' not in sys.modules; "
            "names = [rsinfer.models.build, rsinfer.pipelines.names, rsinfer.scene.run_scene, rsinfer.ops.attention]; "
            "print('ok')")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "ok\n"


def test_command_line_help_does_not_import_torch() -> None:
    code = ("import sys; from rsinfer.cli import build_parser; build_parser(); "
            "heavy = [m for m in ('torch', 'rasterio', 'onnxruntime', 'ray') if m in sys.modules]; print(heavy)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
