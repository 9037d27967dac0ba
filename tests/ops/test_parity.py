"""Every op on every available backend equals the reference (GUIDE §3), called through the public `rsinfer.ops`
functions under `use_backend`, so dispatch is tested too; plus the backend policy.

Backends: ``ext`` (the compiled extension) and ``triton`` when ``TRITON_INTERPRET=1`` is set (the interpreter is slow:
the triton cases are those up to `INTERPRETER_MAX_ELEMENTS`, N = 1028 tokens with head dims 64 and 128 included). The
reference backend is the specification itself: test_dispatch.py checks that `use_backend("reference")` reaches it.
Tolerances: float32 ≤ 1e-5 relative L2; bfloat16/float16 ≤ 2× the error of the same math composed of plain torch
ops in that dtype, capped by an absolute ceiling per dtype (tests/numerics.py). Inputs are fresh random values, sizes
are not multiples of any block, and inputs are strided views as models make them (shift/scale/gate as chunks of one
adaLN projection, q/k/v out of one packed projection).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from tests.conftest import require_backend
from tests.numerics import assert_matches_reference

from rsinfer import ops
from rsinfer.ops import backends, reference

DTYPES = [torch.float32, torch.bfloat16, torch.float16]
DTYPE_IDS = ["fp32", "bf16", "fp16"]
SEGMENTS_1028 = [4, 256, 256, 256, 256]


# The Triton interpreter runs one program at a time: cases up to this many elements in their largest input run on it
# (N = 1028 tokens at head dim 128 included, ~0.3 s per dtype); larger ones are for the compiled backends.
INTERPRETER_MAX_ELEMENTS = 1 << 18


@pytest.fixture(params=["ext", "triton"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs the test body under one backend; skips backends that cannot run here (fails if they are required)."""
    require_backend(request.param)
    with ops.use_backend(request.param):
        yield request.param


def _skip_case(backend: str, op: str, *inputs: torch.Tensor) -> None:
    """Skip the cases too large for the Triton interpreter (`op` names the case in the reason)."""
    largest = max(t.numel() for t in inputs)
    if backend == "triton" and largest > INTERPRETER_MAX_ELEMENTS and not torch.cuda.is_available():
        pytest.skip(f"{op}: too large for the Triton interpreter ({largest} elements)")


def _adaln_chunks(batch: int, segments: list[int] | None, d: int, dtype: torch.dtype, count: int) -> list[torch.Tensor]:
    """`count` modulation parameters as chunks of one adaLN projection: strided (B, D) or (B, S, D) views."""
    shape = (batch, count * d) if segments is None else (batch, len(segments), count * d)
    return list(torch.randn(shape).to(dtype).chunk(count, dim=-1))


def _tokens(batch: int, n: int, d: int, dtype: torch.dtype, layout: str) -> torch.Tensor:
    """(B, N, D) activations, contiguous or as a strided view (transposed storage, or every other feature)."""
    if layout == "contiguous":
        return torch.randn(batch, n, d).to(dtype)
    if layout == "transposed":
        return torch.randn(n, batch, d).to(dtype).transpose(0, 1)
    return torch.randn(batch, n, 2 * d).to(dtype)[..., ::2]


def _eager_modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, segments: list[int] | None,
                    eps: float = 1e-6) -> torch.Tensor:
    """The reference math composed of plain torch ops in x's own dtype (what a model does without rsinfer)."""
    n = x.shape[1]
    shift = reference.expand_segments(shift, n, segments)
    scale = reference.expand_segments(scale, n, segments)
    return F.layer_norm(x, x.shape[-1:], eps=eps) * (1 + scale) + shift


MODULATION_CASES = [  # (B, N, D, segments, layout)
    (2, 1, 56, None, "contiguous"),  # 56 = 32 + 16 + 8: every loop branch of the ext row kernels
    (2, 17, 72, [3, 0, 14], "transposed"),
    (1, 1028, 64, SEGMENTS_1028, "strided"),
    (1, 1028, 1024, SEGMENTS_1028, "contiguous"),
    (2, 17, 1024, None, "strided"),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("b, n, d, segments, layout", MODULATION_CASES)
def test_modulate(backend: str, b: int, n: int, d: int, segments: list[int] | None, layout: str,
                  dtype: torch.dtype) -> None:
    x = _tokens(b, n, d, dtype, layout) * 3 + 1
    shift, scale = _adaln_chunks(b, segments, d, dtype, 2)
    _skip_case(backend, "modulate", x)
    out = ops.modulate(x, shift, scale, segments)
    assert out.dtype == dtype
    ref = reference.modulate(x.float(), shift.float(), scale.float(), segments)
    assert_matches_reference(out, ref, _eager_modulate(x, shift, scale, segments))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("b, n, d, segments, layout", MODULATION_CASES)
def test_residual_modulate(backend: str, b: int, n: int, d: int, segments: list[int] | None, layout: str,
                           dtype: torch.dtype) -> None:
    x = _tokens(b, n, d, dtype, "contiguous")
    y = _tokens(b, n, d, dtype, layout)
    gate, shift, scale = _adaln_chunks(b, segments, d, dtype, 3)
    _skip_case(backend, "residual_modulate", x)
    residual, out = ops.residual_modulate(x, y, gate, shift, scale, segments)
    assert residual.dtype == out.dtype == dtype

    ref_residual, ref_out = reference.residual_modulate(x.float(), y.float(), gate.float(), shift.float(),
                                                        scale.float(), segments)
    assert_matches_reference(residual, ref_residual, x + reference.expand_segments(gate, n, segments) * y)
    # The reference normalises the residual rounded to x's dtype: check the output on the residual the op returned.
    assert_matches_reference(out, reference.modulate(residual.float(), shift.float(), scale.float(), segments),
                             _eager_modulate(residual, shift, scale, segments))
    if dtype == torch.float32:
        assert_matches_reference(out, ref_out)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape, layout", [
    ((2, 17, 40), "transposed"),
    ((1, 1, 88), "contiguous"),  # 88 = 2·32 + 16 + 8
    ((1, 1028, 64), "strided"),
    ((1, 1028, 1024), "contiguous"),
    ((1, 300, 1032), "contiguous"),  # a tail of 8 after the last full step of 16
    ((2, 150, 1030), "contiguous"),  # a tail of 6, rows not 64-byte aligned
    ((3, 5, 1024), "strided"),
])
def test_add_layernorm(backend: str, shape: tuple[int, int, int], layout: str, dtype: torch.dtype) -> None:
    x = _tokens(*shape, dtype, layout) * 2 - 1
    residual = _tokens(*shape, dtype, "contiguous")
    weight, bias = (torch.randn(shape[-1]).to(dtype) for _ in range(2))
    _skip_case(backend, "add_layernorm", x)
    out = ops.add_layernorm(x, residual, weight, bias)
    ref = reference.add_layernorm(x.float(), residual.float(), weight.float(), bias.float())
    assert_matches_reference(out, ref, F.layer_norm(x + residual, shape[-1:], weight, bias, 1e-5))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("rows, width", [("far-mean", 200), ("outlier-first-step", 4096), ("constant", 200)])
def test_add_layernorm_statistics_do_not_cancel(backend: str, rows: str, width: int, dtype: torch.dtype) -> None:
    # ext takes each row's statistics in one pass about a pivot (the mean of its first 16 values) and falls back to
    # two passes when the pivot is far from the mean; these rows reach both branches and the zero-variance edge.
    x = torch.randn(2, 20, width)
    if rows == "far-mean":
        x = x + 100.0  # |mean| / std = 100: E[x²] − E[x]² would lose ~4 of float32's 7 digits
    elif rows == "outlier-first-step":
        # The pivot sits ~40 std from the mean. One pass would amplify rounding ~width/16 = 256-fold (1.3e-5 measured
        # against float64); the two-pass fallback gives 1e-6.
        x[..., :16] += 40.0
    else:
        x = torch.full_like(x, 7.0)  # variance 0: rstd = 1/sqrt(eps)
    x, residual = x.to(dtype), (0.5 * torch.randn(x.shape) * (rows != "constant")).to(dtype)
    weight, bias = (torch.randn(width).to(dtype) for _ in range(2))
    _skip_case(backend, "add_layernorm", x)
    out = ops.add_layernorm(x, residual, weight, bias)
    ref = reference.add_layernorm(x.float(), residual.float(), weight.float(), bias.float())
    assert_matches_reference(out, ref, F.layer_norm(x + residual, (width,), weight, bias, 1e-5))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape, layout", [
    ((2, 5, 13, 17), "contiguous"),
    ((1, 3, 1, 1), "contiguous"),
    ((2, 6, 9, 22), "strided"),
    ((1, 4, 130, 131), "contiguous"),  # 68120 elements per sample: several partial-statistics chunks
    ((2, 22, 9, 7), "channels_last"),  # 63 pixels: ext's spans of 16 pixels · 22 channels, then 15 left over
    ((1, 13, 40, 41), "channels_last"),  # an odd channel count, several spans
])
def test_group_modulate(backend: str, shape: tuple[int, ...], layout: str, dtype: torch.dtype) -> None:
    # A mean far from zero: the statistics must not cancel.
    x = (torch.randn(shape) * 2 + 50).to(dtype)
    if layout == "strided":
        x = x[..., ::2]  # every other column: (2, 6, 9, 11) with a width stride of 2
    elif layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    shift, scale = _adaln_chunks(shape[0], None, shape[1], dtype, 2)
    _skip_case(backend, "group_modulate", x)
    out = ops.group_modulate(x, shift, scale)
    ref = reference.group_modulate(x.float(), shift.float(), scale.float())
    eager = F.group_norm(x, 1, eps=1e-6) * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
    assert_matches_reference(out, ref, eager)


def _canvas(c: int, h: int, w: int, dtype: torch.dtype, layout: str) -> torch.Tensor:
    """A (C, H, W) canvas: contiguous, a window of a larger one, or channels-last storage (width stride ≠ 1)."""
    if layout == "contiguous":
        return torch.randn(c, h, w).to(dtype)
    if layout == "window":
        return torch.randn(c, h + 3, w + 5).to(dtype)[:, 2:-1, 4:-1]
    return torch.randn(h, w, c).to(dtype).permute(2, 0, 1)


@pytest.mark.parametrize("canvas_dtype, tile_dtype", [
    (torch.float32, torch.float32), (torch.bfloat16, torch.bfloat16), (torch.float16, torch.float16),
    (torch.float32, torch.bfloat16),  # the usual scene case: a float32 canvas, low-precision model output
], ids=["fp32", "bf16", "fp16", "fp32-canvas-bf16-tile"])
@pytest.mark.parametrize("layout", ["contiguous", "window", "channels_last"])
def test_accumulate(backend: str, canvas_dtype: torch.dtype, tile_dtype: torch.dtype, layout: str) -> None:
    canvas = _canvas(3, 50, 61, canvas_dtype, layout)
    _skip_case(backend, "accumulate", canvas)
    weight_canvas = torch.rand(50, 61).to(canvas_dtype)
    canvas32, weight32 = canvas.float(), weight_canvas.float()
    eager, eager_weight = canvas.clone(), weight_canvas.clone()
    # Overlapping tiles touching every border; one tile is a strided view.
    for row, col, tile in [(0, 0, torch.randn(3, 23, 37)), (27, 24, torch.randn(3, 46, 37)[:, ::2]),
                           (10, 30, torch.randn(3, 9, 31))]:
        tile = tile.to(tile_dtype)
        tile_weight = torch.rand(tile.shape[1:]).to(canvas_dtype)
        ops.accumulate(canvas, weight_canvas, tile, tile_weight, row, col)
        reference.accumulate(canvas32, weight32, tile.float(), tile_weight.float(), row, col)
        h, w = tile.shape[1:]
        eager[:, row:row + h, col:col + w] += tile.to(canvas_dtype) * tile_weight
        eager_weight[row:row + h, col:col + w] += tile_weight
    assert canvas.dtype == canvas_dtype
    assert_matches_reference(canvas, canvas32, eager)
    assert_matches_reference(weight_canvas, weight32, eager_weight)


def _packed_qkv(b: int, heads: int, n: int, d: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """q, k, v as strided (B, heads, N, D) views into one packed (B, N, 3·heads·D) projection."""
    return torch.randn(b, n, 3, heads, d).to(dtype).permute(2, 0, 3, 1, 4).unbind(0)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("b, heads, n, m, d", [
    (2, 3, 1, 17, 64),
    (1, 2, 17, 17, 40),
    (1, 1, 1028, 1028, 64),
    (1, 1, 1028, 1028, 128),
    (1, 2, 17, 1028, 72),
])
def test_attention(backend: str, b: int, heads: int, n: int, m: int, d: int, dtype: torch.dtype) -> None:
    q = _packed_qkv(b, heads, n, d, dtype)[0]
    _, k, v = _packed_qkv(b, heads, m, d, dtype)
    _skip_case(backend, "attention", q, k)
    out = ops.attention(q, k, v)
    assert out.dtype == dtype
    ref = reference.attention(q.float(), k.float(), v.float())
    eager = torch.softmax(q @ k.transpose(-1, -2) * d ** -0.5, dim=-1) @ v
    assert_matches_reference(out, ref, eager)


def test_attention_custom_scale(backend: str) -> None:
    q, k, v = _packed_qkv(1, 2, 33, 64, torch.float32)
    _skip_case(backend, "attention", q)
    assert_matches_reference(ops.attention(q, k, v, scale=0.3), reference.attention(q, k, v, scale=0.3))


# --------------------------------------------------------------------------------------------------- backend policy

@pytest.fixture
def fresh_backend_probes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Backend probes and the auto announcement forgotten for the test and again afterwards."""
    backends.backend_status.cache_clear()
    monkeypatch.setattr(backends, "_auto_announced", set())
    yield
    backends.backend_status.cache_clear()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device makes the triton backend available")
def test_triton_without_interpreter_or_cuda_is_unavailable(monkeypatch: pytest.MonkeyPatch,
                                                           fresh_backend_probes: None) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ops.BackendUnavailableError, match="backend 'triton' is not available: .*TRITON_INTERPRET"):
        with ops.use_backend("triton"):
            pass


def test_unknown_backend_lists_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown backend 'cuda'.*'auto', 'reference', 'triton', 'ext'"):
        with ops.use_backend("cuda"):  # type: ignore[arg-type]
            pass


def test_auto_on_cpu_picks_ext_and_says_so_once(fresh_backend_probes: None, caplog: pytest.LogCaptureFixture) -> None:
    require_backend("ext")
    from rsinfer.ops import ext

    x, (shift, scale) = torch.randn(2, 17, 40), _adaln_chunks(2, None, 40, torch.float32, 2)
    with caplog.at_level(logging.INFO, logger="rsinfer.ops"), ops.use_backend("auto"):
        assert backends.implementation("modulate", x.device) is ext.modulate
        first = ops.modulate(x, shift, scale)
        second = ops.modulate(x, shift, scale)
    announcements = [r.getMessage() for r in caplog.records if r.name == "rsinfer.ops"]
    assert len(announcements) == 1 and "'ext'" in announcements[0] and "cpu" in announcements[0], announcements
    assert torch.equal(first, second)
    assert_matches_reference(first, reference.modulate(x, shift, scale))


# ------------------------------------------------------------------------------------------------- numerics policy

@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_a_wrong_reference_fails_in_low_precision_too(dtype: torch.dtype) -> None:
    """An output that agrees with PyTorch's eager computation fails against a wrong float32 reference (modulate with
    `scale` for `(1 + scale)`): the eager error against it is O(1), so only the dtype's absolute ceiling stops
    2× that budget from passing everything. The right reference passes, so the check can tell them apart."""
    x = _tokens(2, 17, 72, dtype, "contiguous") * 3 + 1
    shift, scale = _adaln_chunks(2, [3, 0, 14], 72, dtype, 2)
    out = _eager_modulate(x, shift, scale, [3, 0, 14])  # as good as an output in this dtype gets
    right = reference.modulate(x.float(), shift.float(), scale.float(), [3, 0, 14])
    assert_matches_reference(out, right, out)
    n = x.shape[1]
    wrong = (F.layer_norm(x.float(), (72,), eps=1e-6) * reference.expand_segments(scale.float(), n, [3, 0, 14])
             + reference.expand_segments(shift.float(), n, [3, 0, 14]))
    with pytest.raises(AssertionError, match="ceiling"):
        assert_matches_reference(out, wrong, _eager_modulate(x, shift, scale, [3, 0, 14]))
