"""Engines: ONNX Runtime, channels-last eager and the compile engine against eager torch; TensorRT availability and
profiles."""

from __future__ import annotations

import copy

import onnx
import pytest
import torch

from rsinfer.engines import (ArtifactCache, CompiledEngine, EngineUnavailableError, OnnxRuntimeEngine, TorchEngine,
                             check_precision, create_engine, engine_statuses, export_onnx)
from rsinfer.engines.onnx_export import OPSET, network_fingerprint
from rsinfer.engines.tensorrt_engine import profile_shapes
from rsinfer.models.dbcr import build
from rsinfer.ops import use_backend
from rsinfer.pipelines.dbcr import DBCR_SIGNATURE
from tests.numerics import assert_matches_reference, relative_error

SMALL = dict(widths=(8, 16, 32, 64), encoder_blocks=(1, 1, 2, 3), decoder_blocks=(1, 1, 1, 1), time_dim=24,
             time_pe_dim=16)


def inputs(batch: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.rand(batch, 13, height, width), torch.rand(batch, 2, height, width), torch.rand(batch) * 1000


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    torch.manual_seed(3)
    return build(**SMALL).eval()


@pytest.fixture(scope="module")
def onnx_model(net) -> bytes:
    return export_onnx(net, DBCR_SIGNATURE, inputs(2, 40, 24))


def test_export_has_dynamic_batch_height_width_at_opset_17(onnx_model: bytes) -> None:
    graph = onnx.load_from_string(onnx_model)
    onnx.checker.check_model(graph)
    assert [op.version for op in graph.opset_import if op.domain in ("", "ai.onnx")] == [OPSET] and OPSET <= 20
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.graph.input}
    assert dims == {"x_t": ["batch", 13, "height", "width"], "sar": ["batch", 2, "height", "width"], "t": ["batch"]}
    assert {n.domain for n in graph.graph.node} <= {"", "ai.onnx"}  # standard operators only
    # group norm as nested ReduceMean (ORT's InstanceNormalization sums 1.4 M floats naively: 2e-5 error per norm)
    assert "InstanceNormalization" not in {n.op_type for n in graph.graph.node}


@pytest.fixture(scope="module")
def onnxruntime_engine(onnx_model: bytes) -> OnnxRuntimeEngine:
    return OnnxRuntimeEngine(onnx_model, DBCR_SIGNATURE, threads=1)


@pytest.mark.parametrize("batch, height, width", [(1, 32, 32), (2, 45, 37), (3, 24, 64), (1, 100, 17)])
def test_onnxruntime_equals_eager_torch(net, onnxruntime_engine, batch: int, height: int, width: int) -> None:
    x, s, t = inputs(batch, height, width)
    eager = TorchEngine(net, DBCR_SIGNATURE)(x, s, t)
    out = onnxruntime_engine(x, s, t)
    assert out.shape == eager.shape and relative_error(out, eager) <= 1e-4


def test_engine_inputs_are_checked(net, monkeypatch) -> None:
    from rsinfer.engines import base

    monkeypatch.setattr(base, "_warned", set())  # deprecations warn once per process
    engine = TorchEngine(net, DBCR_SIGNATURE)
    x, s, t = inputs(2, 16, 16)
    with pytest.raises(ValueError, match="sar"):
        engine(x, s[:, :1], t)
    with pytest.raises(ValueError, match="batch"):
        engine(x, s[:1], t)
    with pytest.raises(ValueError, match="unknown engine"):
        create_engine("openvino", net, DBCR_SIGNATURE, (x, s, t))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="runs float32 on CPU, got precision 'bfloat16'"):
        OnnxRuntimeEngine(b"", DBCR_SIGNATURE, precision="bfloat16")
    with pytest.raises(ValueError, match="unknown precision 'fp64'"):
        create_engine("torch", net, DBCR_SIGNATURE, (x, s, t), precision="fp64")  # type: ignore[arg-type]
    with pytest.warns(DeprecationWarning, match="precision 'fp16' is deprecated; use 'float16'"):
        assert check_precision("fp16") == "float16"
    with pytest.raises(ValueError, match=r"thread_wait must be one of \('spin', 'sleep'\), got 'busy'"):
        OnnxRuntimeEngine(b"", DBCR_SIGNATURE, thread_wait="busy")  # type: ignore[arg-type]


@pytest.mark.parametrize("batch, height, width", [(1, 32, 32), (2, 45, 37)])
def test_channels_last_eager_equals_nchw_eager(net, batch: int, height: int, width: int) -> None:
    x, s, t = inputs(batch, height, width)
    eager = TorchEngine(net, DBCR_SIGNATURE)(x, s, t)
    out = TorchEngine(net, DBCR_SIGNATURE, memory_format="channels_last")(x, s, t)
    assert out.is_contiguous() and out.shape == eager.shape and relative_error(out, eager) <= 1e-4


@pytest.mark.slow
def test_compile_engine_is_channels_last_and_equals_eager() -> None:
    torch.manual_seed(4)
    net = build(**dict(SMALL, encoder_blocks=(1, 1, 1, 1))).eval()  # fewer blocks: inductor compiles it in ~1 min
    x, s, t = inputs(2, 20, 28)  # padded to 24 × 32 inside, cropped back
    engine = create_engine("compile", net, DBCR_SIGNATURE, (x, s, t))
    assert isinstance(engine, CompiledEngine) and engine.memory_format == "channels_last"
    eager = TorchEngine(net, DBCR_SIGNATURE)(x, s, t)
    out = engine(x, s, t)
    assert out.is_contiguous() and out.shape == eager.shape and relative_error(out, eager) <= 1e-4
    # a smaller batch (a scene's last one) runs on the same graph, zero-padded: no second compilation
    ((_, graph),) = engine._compiled.values()
    last = engine(x[1:], s[1:], t[1:])
    assert list(engine._compiled.values()) == [(2, graph)]
    assert last.shape == (1, *eager.shape[1:]) and relative_error(last, eager[1:]) <= 1e-4


def test_memory_format_is_checked(net) -> None:
    x, s, t = inputs(1, 16, 16)
    with pytest.raises(ValueError, match="memory formats .*'channels_last'.*got 'nhwc'"):
        TorchEngine(net, DBCR_SIGNATURE, memory_format="nhwc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="memory_format applies to the torch and compile engines, not 'onnxruntime'"):
        create_engine("onnxruntime", net, DBCR_SIGNATURE, (x, s, t), memory_format="channels_last")


def test_bf16_engine_is_within_twice_the_eager_bf16_error(net) -> None:
    x, s, t = inputs(2, 24, 24)
    ref = TorchEngine(net, DBCR_SIGNATURE)(x, s, t)
    out = TorchEngine(net, DBCR_SIGNATURE, "bfloat16")(x, s, t)
    assert out.dtype == torch.float32 and torch.equal(out, out.bfloat16().float())  # bf16 values, returned as fp32
    # PyTorch's own eager bf16 computation: a bf16 copy of the network on bf16 inputs, plain torch ops (reference
    # backend). Measured: engine 5.4e-3, eager 5.6e-3 relative to float32.
    with torch.no_grad(), use_backend("reference"):
        eager = copy.deepcopy(net).bfloat16()(x.bfloat16(), s.bfloat16(), t.bfloat16())
    assert_matches_reference(out.bfloat16(), ref, eager)  # ≤ 2× the eager error, and ≤ the bf16 ceiling


def test_tensorrt_is_reported_unverified_and_refused_here(net, tmp_path) -> None:
    status = {s.name: s for s in engine_statuses()}["tensorrt"]
    assert not status.available and "unverified" in status.reason
    with pytest.raises(EngineUnavailableError, match="unverified"):
        create_engine("tensorrt", net, DBCR_SIGNATURE, inputs(1, 16, 16), cache_dir=tmp_path)


def test_tensorrt_profiles_cover_each_tile_size() -> None:
    rows = profile_shapes(DBCR_SIGNATURE, [(256, 256), (512, 384)], max_batch=4)
    assert rows[0] == ("x_t", (1, 13, 8, 8), (4, 13, 256, 256), (4, 13, 256, 256))
    assert rows[2] == ("t", (1,), (4,), (4,))
    assert rows[4] == ("sar", (1, 2, 8, 8), (4, 2, 512, 384), (4, 2, 512, 384))
    with pytest.raises(ValueError, match="tile size"):
        profile_shapes(DBCR_SIGNATURE, [], max_batch=4)


def test_create_engine_reuses_a_verified_cached_onnx_and_rebuilds_a_corrupted_one(tmp_path) -> None:
    net = build(widths=(4, 8, 16, 32), encoder_blocks=(1, 1, 1, 1), decoder_blocks=(1, 1, 1, 1), time_dim=8,
                time_pe_dim=8).eval()
    x, s, t = inputs(1, 24, 24)
    eager = TorchEngine(net, DBCR_SIGNATURE)(x, s, t)
    create_engine("onnxruntime", net, DBCR_SIGNATURE, (x, s, t), cache_dir=tmp_path, threads=1)
    (path,) = tmp_path.glob("*.onnx")
    original = path.read_bytes()
    stamp = path.stat().st_mtime_ns
    create_engine("onnxruntime", net, DBCR_SIGNATURE, (x, s, t), cache_dir=tmp_path, threads=1)
    assert path.stat().st_mtime_ns == stamp  # reused, not re-exported
    corrupted = bytearray(original)
    corrupted[len(corrupted) // 2] ^= 0xFF  # one flipped byte in the weights: still parses, wrong numbers
    path.write_bytes(bytes(corrupted))
    engine = create_engine("onnxruntime", net, DBCR_SIGNATURE, (x, s, t), cache_dir=tmp_path, threads=1)
    assert ArtifactCache(tmp_path).read_verified(path.name) is not None
    assert relative_error(engine(x, s, t), eager) <= 1e-4
    before = network_fingerprint(net, DBCR_SIGNATURE)
    with torch.no_grad():  # a changed network gets its own export
        net.head.bias[0] += 1e-3
    assert network_fingerprint(net, DBCR_SIGNATURE) != before
