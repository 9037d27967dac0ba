"""The compiled extension rsinfer._C specifically: torch custom-op registration, torch.compile, argument errors,
build info, the portable SIMD level, determinism. Numerical parity with the reference is in test_parity.py."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from tests.conftest import require_backend
from tests.numerics import assert_matches_reference, relative_error

from rsinfer.ops import backends, reference

require_backend("ext")

from rsinfer.ops import ext  # noqa: E402

CUSTOM_OPS = ("modulate", "residual_modulate", "add_layernorm", "group_modulate", "accumulate")


def _sample_args(op: str) -> tuple:
    """Small valid arguments of each custom op (odd sizes, per-segment parameters where the op has them)."""
    x, y = torch.randn(2, 9, 40), torch.randn(2, 9, 40)
    per_segment = torch.randn(3, 2, 2, 40).unbind(0)
    return {
        "modulate": (x, per_segment[0], per_segment[1], [4, 5], 1e-6),
        "residual_modulate": (x, y, *per_segment, [4, 5], 1e-6),
        "add_layernorm": (x, y, torch.randn(40), torch.randn(40), 1e-5),
        "group_modulate": (torch.randn(2, 3, 5, 7), torch.randn(2, 3), torch.randn(2, 3), 1e-6),
        "accumulate": (torch.randn(3, 20, 21), torch.rand(20, 21), torch.randn(3, 7, 9), torch.rand(7, 9), 13, 12),
    }[op]


def test_ext_exposes_the_six_ops_with_the_reference_signatures() -> None:
    import inspect

    for op in backends.OPS:
        assert inspect.signature(getattr(ext, op)) == inspect.signature(getattr(reference, op)), op


@pytest.mark.parametrize("op", CUSTOM_OPS)
def test_custom_op_is_registered_and_passes_opcheck(op: str) -> None:
    overload = getattr(torch.ops.rsinfer, op).default
    mutated = [a.name for a in overload._schema.arguments if a.alias_info is not None and a.alias_info.is_write]
    assert mutated == (["canvas", "weight_canvas"] if op == "accumulate" else [])
    # Schema, fake (meta) implementation against the real one, and tracing through AOT dispatch.
    torch.library.opcheck(overload, _sample_args(op),
                          test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"))


def test_modulate_composes_with_torch_compile_fullgraph() -> None:
    # aot_eager traces with fake tensors and functionalises exactly as inductor's front end does; inductor's own
    # code generation (20-40 s cold) is exercised by bench/ops.py.
    def block(x, c, weight):
        shift, scale = F.silu(c).chunk(2, dim=-1)
        return ext.modulate(x * 2.0, shift, scale, [4, 5]) @ weight

    x, c, weight = torch.randn(2, 9, 40), torch.randn(2, 2, 80), torch.randn(40, 24)
    compiled = torch.compile(block, fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(x, c, weight), block(x, c, weight))


def test_accumulate_mutates_in_place_under_torch_compile() -> None:
    def blend(canvas, weights, tile, tile_weight):
        ext.accumulate(canvas, weights, tile * 0.5, tile_weight, 3, 4)
        return canvas / weights.clamp_min(1e-6)

    canvas, weights = torch.randn(2, 16, 17), torch.rand(16, 17) + 0.5
    tile, tile_weight = torch.randn(2, 8, 9), torch.rand(8, 9)
    expected_canvas, expected_weights = canvas.clone(), weights.clone()
    reference.accumulate(expected_canvas, expected_weights, tile * 0.5, tile_weight, 3, 4)
    out = torch.compile(blend, fullgraph=True, backend="aot_eager")(canvas, weights, tile, tile_weight)
    assert_matches_reference(canvas, expected_canvas)
    assert_matches_reference(weights, expected_weights)
    assert_matches_reference(out, expected_canvas / expected_weights)


@pytest.mark.parametrize("row, col, tile_shape, weight_shape", [
    (-1, 0, (3, 8, 8), (8, 8)),
    (0, -2, (3, 8, 8), (8, 8)),
    (43, 0, (3, 8, 8), (8, 8)),
    (0, 54, (3, 8, 8), (8, 8)),
    (0, 0, (2, 8, 8), (8, 8)),
    (0, 0, (3, 8, 8), (8, 9)),
    (0, 0, (8, 8), (8, 8)),
])
def test_accumulate_rejects_what_the_reference_rejects_with_its_message(row, col, tile_shape, weight_shape) -> None:
    canvas, weight_canvas = torch.randn(3, 50, 61), torch.rand(50, 61)
    tile, tile_weight = torch.randn(tile_shape), torch.rand(weight_shape)
    before = canvas.clone(), weight_canvas.clone()
    with pytest.raises(ValueError) as expected:
        reference.accumulate(canvas.clone(), weight_canvas.clone(), tile, tile_weight, row, col)
    with pytest.raises(ValueError) as raised:
        ext.accumulate(canvas, weight_canvas, tile, tile_weight, row, col)
    assert str(raised.value) == str(expected.value)
    assert torch.equal(canvas, before[0]) and torch.equal(weight_canvas, before[1])


@pytest.mark.parametrize("call, match", [
    (lambda: ext.modulate(torch.randn(2, 17, 40), torch.randn(2, 41), torch.randn(2, 40)),
     r"modulate: without segments, shift must be \(B, D\) = \(2, 40\), got shape \(2, 41\)"),
    (lambda: ext.modulate(torch.randn(2, 17, 40), torch.randn(2, 3, 40), torch.randn(2, 3, 40), [1, 5, 10]),
     r"segments \[1, 5, 10\] must sum to the token count 17"),
    (lambda: ext.modulate(torch.randn(2, 17, 40), torch.randn(2, 3, 40), torch.randn(2, 3, 40), [-1, 7, 11]),
     "must be non-negative"),
    (lambda: ext.modulate(torch.randn(2, 17, 40), torch.randn(2, 2, 40), torch.randn(2, 2, 40), [6, 6, 5]),
     r"with 3 segments, shift must be \(B, S, D\) = \(2, 3, 40\)"),
    (lambda: ext.modulate(torch.randn(17, 40), torch.randn(2, 40), torch.randn(2, 40)),
     r"x must be \(B, N, D\), got shape \(17, 40\)"),
    (lambda: ext.modulate(torch.randn(2, 17, 40).double(), torch.randn(2, 40), torch.randn(2, 40)),
     "x must be float32, bfloat16 or float16, got Double"),
    (lambda: ext.residual_modulate(torch.randn(2, 17, 40), torch.randn(2, 16, 40), *torch.randn(3, 2, 40)),
     r"y must have x's shape \(2, 17, 40\), got \(2, 16, 40\)"),
    (lambda: ext.residual_modulate(torch.randn(2, 17, 40), torch.randn(2, 17, 40).half(), *torch.randn(3, 2, 40)),
     "y must have x's dtype Float, got Half"),
    (lambda: ext.add_layernorm(torch.randn(5, 40), torch.randn(5, 40), torch.randn(41), torch.randn(40)),
     r"weight must be \(D,\) = \(40,\), got shape \(41,\)"),
    (lambda: ext.add_layernorm(torch.randn(5, 40), torch.randn(5, 39), torch.randn(40), torch.randn(40)),
     r"residual must have x's shape"),
    (lambda: ext.group_modulate(torch.randn(2, 5, 13), torch.randn(2, 5), torch.randn(2, 5)),
     r"x must be \(B, C, H, W\)"),
    (lambda: ext.group_modulate(torch.randn(2, 5, 13, 17), torch.randn(2, 4), torch.randn(2, 5)),
     r"shift must be \(B, C\) = \(2, 5\), got shape \(2, 4\)"),
    (lambda: ext.accumulate(torch.randn(3, 9, 9).int(), torch.rand(9, 9), torch.randn(3, 2, 2), torch.rand(2, 2), 0, 0),
     "canvas must be float32, bfloat16 or float16, got Int"),
])
def test_bad_arguments_raise_value_error_naming_the_value(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_build_info_reports_the_build() -> None:
    info = ext.build_info()
    assert set(info) == {"compiler", "openmp", "threads", "simd_compiled", "simd_selected", "cuda_objects", "torch",
                         "torch_cxx11_abi"}
    assert info["torch"] == torch.__version__  # the torch it was built against: ext.py refuses any other
    assert info["compiler"].split()[0] in {"GNU", "Clang"}
    assert int(info["openmp"]) >= 201307  # OpenMP 4.0+: the version macro of the compiler that built the kernels
    assert int(info["threads"]) == torch.get_num_threads()
    assert info["simd_compiled"] == "DEFAULT, AVX2"
    expected = "AVX2" if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512") else "DEFAULT"
    assert info["simd_selected"] == expected
    if os.environ.get("RSINFER_CUDA", "AUTO") != "OFF" and any(
            os.access(os.path.join(p, "nvcc"), os.X_OK) for p in [*os.environ["PATH"].split(os.pathsep),
                                                                   "/usr/local/cuda/bin"]):
        assert info["cuda_objects"].startswith("sm_80, sm_90a")


def test_portable_simd_level_matches_the_reference() -> None:
    # ATEN_CPU_CAPABILITY=default makes ATen, and so rsinfer._C, use the kernels built for the baseline x86-64 ISA.
    script = textwrap.dedent("""
        import torch
        from rsinfer.ops import ext, reference
        torch.manual_seed(0)
        assert ext.build_info()["simd_selected"] == "DEFAULT", ext.build_info()
        def err(out, ref):
            return float((out.double() - ref.double()).norm() / ref.double().norm())
        x, y = torch.randn(2, 33, 77), torch.randn(2, 33, 77)
        g, s, c = torch.randn(3, 2, 2, 77).unbind(0)
        errors = [err(ext.modulate(x, s, c, [30, 3]), reference.modulate(x, s, c, [30, 3]))]
        errors += [err(a, b) for a, b in zip(ext.residual_modulate(x, y, g, s, c, [30, 3]),
                                            reference.residual_modulate(x, y, g, s, c, [30, 3]))]
        w, b = torch.randn(77), torch.randn(77)
        errors.append(err(ext.add_layernorm(x, y, w, b), reference.add_layernorm(x, y, w, b)))
        xb = x.bfloat16()
        errors.append(err(ext.modulate(xb, s, c, [30, 3]).float(), reference.modulate(xb, s, c, [30, 3]).float()) / 10)
        img, p = torch.randn(2, 3, 40, 45) + 5, torch.randn(2, 3)
        errors.append(err(ext.group_modulate(img, p, p), reference.group_modulate(img, p, p)))
        canvas, wc, tile, tw = torch.randn(3, 30, 31), torch.rand(30, 31), torch.randn(3, 17, 19), torch.rand(17, 19)
        expected, expected_w = canvas.clone(), wc.clone()
        ext.accumulate(canvas, wc, tile, tw, 5, 12)
        reference.accumulate(expected, expected_w, tile, tw, 5, 12)
        errors += [err(canvas, expected), err(wc, expected_w)]
        assert max(errors) <= 1e-5, errors
    """)
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_results_do_not_depend_on_the_thread_count() -> None:
    x, y = torch.randn(1, 1028, 72), torch.randn(1, 1028, 72)
    gate, shift, scale = torch.randn(3, 1, 5, 72).unbind(0)
    img, p = torch.randn(2, 8, 70, 90), torch.randn(2, 8)
    wide_x, wide_y = torch.randn(1, 1028, 264), torch.randn(1, 1028, 264)
    weight, bias = torch.randn(264), torch.randn(264)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            results.append((*ext.residual_modulate(x, y, gate, shift, scale, [4, 256, 256, 256, 256]),
                            ext.group_modulate(img, p, p),
                            ext.add_layernorm(wide_x, wide_y, weight, bias)))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(*results))


def test_group_modulate_keeps_channels_last_and_is_accurate() -> None:
    # F.group_norm's channels-last CPU path (and so the reference on such input) loses precision for a mean far
    # from zero; the extension reads the channels-last storage as it lies: compare against float64.
    x = (torch.randn(2, 6, 9, 11) * 2 + 50).to(memory_format=torch.channels_last)
    shift, scale = torch.randn(2, 12).chunk(2, dim=1)
    exact = (F.group_norm(x.double(), 1, eps=1e-6) * (1 + scale.double()[:, :, None, None])
             + shift.double()[:, :, None, None])
    out = ext.group_modulate(x, shift, scale)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert relative_error(out, exact) <= 2e-6


def test_inputs_are_left_untouched_and_empty_token_counts_work() -> None:
    x, y = torch.randn(2, 17, 40), torch.randn(2, 17, 40)
    gate, shift, scale = torch.randn(3, 2, 40).unbind(0)
    copies = [t.clone() for t in (x, y, gate, shift, scale)]
    ext.residual_modulate(x, y, gate, shift, scale)
    assert all(torch.equal(a, b) for a, b in zip((x, y, gate, shift, scale), copies))
    empty = ext.modulate(torch.randn(2, 0, 40), shift, scale)
    assert empty.shape == (2, 0, 40)


def test_import_raises_import_error_without_the_compiled_module(monkeypatch: pytest.MonkeyPatch) -> None:
    import rsinfer

    monkeypatch.setitem(sys.modules, "rsinfer._C", None)  # None in sys.modules makes the import fail
    monkeypatch.delattr(rsinfer, "_C")
    monkeypatch.delitem(sys.modules, "rsinfer.ops.ext")
    with pytest.raises(ImportError):
        importlib.import_module("rsinfer.ops.ext")
