"""The Triton kernels (`rsinfer.kernels`) against the reference ops, run by the Triton interpreter on CPU tensors.

Sizes are deliberately not multiples of any block (N = 1028 = 4 + 4·256, head dims 40 and 72, segments [1, 5, 11]),
inputs are strided views as models produce them (q/k/v out of one packed projection, shift/scale/gate as chunks of one
adaLN output), and low-precision results may err at most twice as much as PyTorch's own eager computation in that
dtype (GUIDE §3). Grids stay at a handful of programs: the interpreter runs them one by one, ~1 ms each.
"""

from __future__ import annotations

import os

# Triton picks interpreter or compiler when a kernel is decorated, i.e. when rsinfer.kernels is first imported:
# this must run before that import (here and in any module that uses the "triton" backend on CPU tensors).
os.environ["TRITON_INTERPRET"] = "1"

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tests.conftest import require_backend  # noqa: E402

require_backend("triton")  # skips this module without triton, or fails it where RSINFER_REQUIRE_BACKENDS names it

import triton  # noqa: E402
import triton.language as tl  # noqa: E402
from tests.numerics import assert_matches_reference  # noqa: E402

import rsinfer.kernels as kernels  # noqa: E402
from rsinfer import ops  # noqa: E402
from rsinfer.kernels.rounding import cast_rounded  # noqa: E402
from rsinfer.ops import reference  # noqa: E402

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
DTYPE_IDS = ["fp32", "fp16", "bf16"]


# ---------------------------------------------------------------------------------------------------------- attention

def _packed_qkv(batch: int, heads: int, n: int, d: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """q, k, v as a transformer makes them: strided (B, heads, N, D) views into one (B, N, 3·heads·D) projection."""
    qkv = torch.randn(batch, n, 3, heads, d).to(dtype)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 × (B, heads, N, D), none contiguous
    return q, k, v


def _eager_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None) -> torch.Tensor:
    """softmax(q kᵀ · scale) v computed by PyTorch in the inputs' own dtype."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return torch.softmax(q @ k.transpose(-1, -2) * scale, dim=-1) @ v


def _check_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None) -> None:
    out = kernels.attention(q, k, v, scale)
    assert out.dtype == q.dtype
    ref = reference.attention(q.float(), k.float(), v.float(), scale)
    assert_matches_reference(out, ref, _eager_attention(q, k, v, scale))


@pytest.mark.parametrize("n, m, d, dtype", [
    *[(17, 17, d, torch.float32) for d in (40, 64, 72, 128)],
    *[(17, 23, d, dtype) for d in (40, 72, 128) for dtype in (torch.float16, torch.bfloat16)],
    (1, 23, 72, torch.float32),
    (1, 23, 64, torch.float16),
], ids=str)
def test_attention_odd_sizes(n: int, m: int, d: int, dtype: torch.dtype) -> None:
    q = torch.randn(1, 2, n, d).to(dtype)
    k, v = torch.randn(2, 1, 2, m, d).to(dtype).unbind(0)
    _check_attention(q, k, v)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_attention_1028_tokens_from_packed_qkv(dtype: torch.dtype) -> None:
    # 1028 = 8·128 + 4 queries and 4·256 + 4 keys: both tails are partial blocks; q, k, v are strided views.
    q, k, v = _packed_qkv(1, 1, 1028, 64, dtype)
    _check_attention(q, k, v)


def test_attention_one_query_many_keys_custom_scale() -> None:
    q = torch.randn(1, 2, 1, 64, dtype=torch.bfloat16)
    k, v = torch.randn(2, 1, 2, 1028, 64, dtype=torch.bfloat16).unbind(0)
    _check_attention(q, k, v, scale=0.3)


def test_attention_head_dim_not_innermost() -> None:
    # stride along D ≠ 1: the kernel follows the strides it is given instead of asking for contiguity.
    q = torch.randn(2, 3, 40, 17).transpose(-1, -2)
    k = torch.randn(2, 3, 40, 9).transpose(-1, -2)
    v = torch.randn(2, 9, 3, 40).transpose(1, 2)
    _check_attention(q, k, v)


def test_attention_large_scores_stay_finite() -> None:
    # Scores of several hundred: the online softmax must subtract the running max before exponentiating.
    q, k, v = torch.randn(1, 1, 17, 64) * 6, torch.randn(1, 1, 300, 64) * 6, torch.randn(1, 1, 300, 64)
    _check_attention(q, k, v)


@pytest.mark.parametrize("q_shape, k_shape, v_shape, dtype, match", [
    ((1, 2, 5, 160), (1, 2, 5, 160), (1, 2, 5, 160), torch.float32, "head dim D=160"),
    ((1, 2, 5, 64), (1, 2, 5, 32), (1, 2, 5, 32), torch.float32, "k, v"),
    ((1, 2, 5, 64), (1, 3, 5, 64), (1, 3, 5, 64), torch.float32, "k, v"),
    ((1, 2, 5, 64), (1, 2, 5, 64), (1, 2, 6, 64), torch.float32, "k, v"),
    ((2, 5, 64), (2, 5, 64), (2, 5, 64), torch.float32, r"\(B, heads, tokens, D\)"),
    ((1, 2, 5, 64), (1, 2, 0, 64), (1, 2, 0, 64), torch.float32, "zero keys"),
    ((1, 2, 5, 64), (1, 2, 5, 64), (1, 2, 5, 64), torch.float64, "float64"),
])
def test_attention_rejects_bad_arguments(q_shape, k_shape, v_shape, dtype, match) -> None:
    q, k, v = (torch.randn(s, dtype=dtype) for s in (q_shape, k_shape, v_shape))
    with pytest.raises(ValueError, match=match):
        kernels.attention(q, k, v)


def test_attention_rejects_mixed_dtypes() -> None:
    q = torch.randn(1, 1, 5, 64)
    with pytest.raises(ValueError, match="dtypes must match"):
        kernels.attention(q, q.half(), q)


# ------------------------------------------------------------------------------------------------------- modulation

def _adaln_chunks(batch: int, segments: list[int] | None, d: int, dtype: torch.dtype, count: int) -> list[torch.Tensor]:
    """`count` parameters as chunks of one adaLN projection: strided (B, D) or (B, S, D) views."""
    shape = (batch, count * d) if segments is None else (batch, len(segments), count * d)
    return list(torch.randn(shape).to(dtype).chunk(count, dim=-1))


def _eager_modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, segments: list[int] | None,
                    eps: float = 1e-6) -> torch.Tensor:
    """The reference math computed by PyTorch in x's own dtype."""
    n = x.shape[1]
    shift = reference.expand_segments(shift.to(x.dtype), n, segments)
    scale = reference.expand_segments(scale.to(x.dtype), n, segments)
    return F.layer_norm(x, x.shape[-1:], eps=eps) * (1 + scale) + shift


MODULATION_CASES = [  # (N, D, segments)
    (1028, 64, [4, 256, 256, 256, 256]),
    (17, 40, [1, 5, 11]),
    (17, 72, [3, 0, 14]),
    (17, 128, None),
    (1, 1152, None),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("n, d, segments", MODULATION_CASES)
def test_modulate(n: int, d: int, segments: list[int] | None, dtype: torch.dtype) -> None:
    x = torch.randn(2, n, d).to(dtype) * 3 + 1
    shift, scale = _adaln_chunks(2, segments, d, dtype, 2)
    out = kernels.modulate(x, shift, scale, segments)
    ref = reference.modulate(x.float(), shift.float(), scale.float(), segments)
    assert_matches_reference(out, ref, _eager_modulate(x, shift, scale, segments))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("n, d, segments", MODULATION_CASES)
def test_residual_modulate(n: int, d: int, segments: list[int] | None, dtype: torch.dtype) -> None:
    x = torch.randn(2, n, d).to(dtype)
    y = torch.randn(n, 2, d).to(dtype).transpose(0, 1)  # a strided (B, N, D) view
    gate, shift, scale = _adaln_chunks(2, segments, d, dtype, 3)
    residual, out = kernels.residual_modulate(x, y, gate, shift, scale, segments)

    ref_residual, ref_out = reference.residual_modulate(x.float(), y.float(), gate.float(), shift.float(),
                                                        scale.float(), segments)
    eager_residual = x + reference.expand_segments(gate, n, segments) * y
    assert_matches_reference(residual, ref_residual, eager_residual)
    # The modulated output is checked on the rounded residual the kernel wrote, like the reference does.
    assert_matches_reference(out, reference.modulate(residual.float(), shift.float(), scale.float(), segments),
                             _eager_modulate(residual, shift, scale, segments))
    if dtype == torch.float32:
        assert_matches_reference(out, ref_out)


def test_modulate_custom_eps_and_constant_rows() -> None:
    # Constant rows have zero variance: the result is then shift exactly, with eps keeping the division finite.
    x = torch.full((1, 5, 40), 2.5)
    shift, scale = torch.randn(1, 40), torch.randn(1, 40)
    out = kernels.modulate(x, shift, scale, eps=1e-3)
    assert_matches_reference(out, reference.modulate(x, shift, scale, eps=1e-3))
    assert torch.allclose(out, shift[:, None].expand_as(out))


@pytest.mark.parametrize("kwargs, match", [
    (dict(segments=[1, 5, 10]), "sum to the token count 17"),
    (dict(segments=[-1, 7, 11]), "non-negative"),
    (dict(segments=[17]), r"\(B, S, D\) = \(2, 1, 40\)"),
    (dict(shift=torch.randn(2, 3, 40)), r"without segments, shift must be \(B, D\)"),
    (dict(scale=torch.randn(2, 41)), r"scale must be \(B, D\) = \(2, 40\)"),
    (dict(x=torch.randn(2, 17, 40, 1)), r"x must be \(B, N, D\)"),
    (dict(x=torch.randn(2, 17, 40, dtype=torch.float64)), "float64"),
])
def test_modulate_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    args = dict(x=torch.randn(2, 17, 40), shift=torch.randn(2, 40), scale=torch.randn(2, 40), segments=None) | kwargs
    with pytest.raises(ValueError, match=match):
        kernels.modulate(**args)


def test_residual_modulate_rejects_mismatched_y() -> None:
    x, p = torch.randn(2, 17, 40), torch.randn(2, 40)
    with pytest.raises(ValueError, match="y must have x's shape"):
        kernels.residual_modulate(x, torch.randn(2, 16, 40), p, p, p)
    with pytest.raises(ValueError, match="dtypes must match"):
        kernels.residual_modulate(x, x.half(), p, p, p)


# ---------------------------------------------------------------------------------------------------- add_layernorm

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", [(2, 17, 40), (3, 72), (1, 1, 1152), (5, 1)])
def test_add_layernorm(shape: tuple[int, ...], dtype: torch.dtype) -> None:
    x, residual = (torch.randn(shape).to(dtype) for _ in range(2))
    weight, bias = torch.randn(shape[-1]).to(dtype), torch.randn(shape[-1]).to(dtype)
    out = kernels.add_layernorm(x, residual, weight, bias)
    ref = reference.add_layernorm(x.float(), residual.float(), weight.float(), bias.float())
    eager = F.layer_norm(x + residual, shape[-1:], weight, bias, 1e-5)
    assert_matches_reference(out, ref, eager)


def test_add_layernorm_strided_inputs_and_fp32_affine() -> None:
    x = torch.randn(17, 2, 80)[..., ::2].transpose(0, 1)  # (2, 17, 40), stride 2 along D and not row-major
    residual = torch.randn(2, 40, 17).transpose(1, 2)
    weight, bias = torch.randn(40), torch.randn(40)
    out = kernels.add_layernorm(x, residual, weight, bias, eps=1e-6)
    assert_matches_reference(out, reference.add_layernorm(x, residual, weight, bias, eps=1e-6))


@pytest.mark.parametrize("residual_shape, weight_shape, match", [
    ((2, 17, 41), (40,), "share one shape"),
    ((2, 17, 40), (41,), r"weight and bias must be \(D,\) = \(40,\)"),
])
def test_add_layernorm_rejects_bad_shapes(residual_shape, weight_shape, match) -> None:
    with pytest.raises(ValueError, match=match):
        kernels.add_layernorm(torch.randn(2, 17, 40), torch.randn(residual_shape), torch.randn(weight_shape),
                              torch.randn(40))


# --------------------------------------------------------------------------------------------------- group_modulate

def _eager_group_modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return F.group_norm(x, 1, eps=1e-6) * (1 + scale[:, :, None, None]) + shift[:, :, None, None]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", [(2, 5, 13, 17), (1, 4, 130, 131), (3, 1, 1, 1)])
def test_group_modulate(shape: tuple[int, ...], dtype: torch.dtype) -> None:
    # A mean far from zero: statistics must not cancel (4·130·131 elements span several partial chunks).
    x = (torch.randn(shape) * 2 + 50).to(dtype)
    shift, scale = torch.randn(shape[:2]).to(dtype), torch.randn(shape[:2]).to(dtype)
    out = kernels.group_modulate(x, shift, scale)
    ref = reference.group_modulate(x.float(), shift.float(), scale.float())
    assert_matches_reference(out, ref, _eager_group_modulate(x, shift, scale))


def test_group_modulate_channels_last_and_strided_parameters() -> None:
    x = torch.randn(2, 6, 9, 11).to(memory_format=torch.channels_last)
    shift, scale = torch.randn(2, 12).chunk(2, dim=1)
    out = kernels.group_modulate(x, shift, scale, eps=1e-4)
    assert_matches_reference(out, reference.group_modulate(x, shift, scale, eps=1e-4))


@pytest.mark.parametrize("x_shape, p_shape, match", [
    ((2, 5, 13), (2, 5), r"x must be \(B, C, H, W\)"),
    ((2, 5, 13, 17), (2, 4), r"shift must be \(B, C\) = \(2, 5\)"),
    ((2, 5, 13, 17), (5,), r"shift must be \(B, C\)"),
])
def test_group_modulate_rejects_bad_shapes(x_shape, p_shape, match) -> None:
    with pytest.raises(ValueError, match=match):
        kernels.group_modulate(torch.randn(x_shape), torch.randn(p_shape), torch.randn(p_shape))


# ------------------------------------------------------------------------------------------------------- accumulate

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_accumulate_overlapping_tiles(dtype: torch.dtype) -> None:
    canvas = torch.randn(3, 50, 61).to(dtype)
    weight_canvas = torch.rand(50, 61)
    expected, expected_weight = canvas.clone(), weight_canvas.clone()
    # Overlapping tiles touching every border, one of them a strided view.
    placements = [(0, 0, torch.randn(3, 23, 37)), (27, 24, torch.randn(3, 46, 37)[:, ::2]),
                  (10, 30, torch.randn(3, 9, 31))]
    for row, col, tile in placements:
        tile = tile.to(dtype)
        tile_weight = torch.rand(tile.shape[1:])
        kernels.accumulate(canvas, weight_canvas, tile, tile_weight, row, col)
        reference.accumulate(expected, expected_weight, tile, tile_weight, row, col)
    # Same operations and roundings as the reference, one element at a time: equal up to float32 rounding.
    assert_matches_reference(canvas.float(), expected.float(), fp32_tol=1e-6)
    assert_matches_reference(weight_canvas, expected_weight, fp32_tol=1e-6)


def test_accumulate_strided_canvas_and_weights() -> None:
    canvas = torch.zeros(40, 30, 2).permute(2, 0, 1)  # (C, H, W) channels-last storage
    weight_canvas = torch.zeros(30, 40).t()
    tile, tile_weight = torch.randn(2, 11, 13), torch.rand(13, 11).t()
    expected, expected_weight = canvas.clone(), weight_canvas.clone()
    kernels.accumulate(canvas, weight_canvas, tile, tile_weight, 29, 17)
    reference.accumulate(expected, expected_weight, tile, tile_weight, 29, 17)
    assert_matches_reference(canvas, expected, fp32_tol=1e-6)
    assert_matches_reference(weight_canvas, expected_weight, fp32_tol=1e-6)


@pytest.mark.parametrize("row, col, tile_shape, match", [
    (-1, 0, (3, 8, 8), "does not fit"),
    (43, 0, (3, 8, 8), "does not fit"),
    (0, 54, (3, 8, 8), "does not fit"),
    (0, 0, (2, 8, 8), "shapes disagree"),
    (0.5, 0, (3, 8, 8), "must be integers"),
])
def test_accumulate_rejects_bad_placement(row, col, tile_shape, match) -> None:
    canvas, weight_canvas = torch.zeros(3, 50, 61), torch.zeros(50, 61)
    before = canvas.clone()
    with pytest.raises(ValueError, match=match):
        kernels.accumulate(canvas, weight_canvas, torch.randn(tile_shape), torch.rand(tile_shape[1:]), row, col)
    assert torch.equal(canvas, before)


# -------------------------------------------------------------------------------------------------------- rounding

@triton.jit
def _cast_kernel(X, OUT, n, BLOCK: tl.constexpr):
    offsets = tl.arange(0, BLOCK)
    ok = offsets < n
    tl.store(OUT + offsets, cast_rounded(tl.load(X + offsets, mask=ok), OUT.dtype.element_ty), mask=ok)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # numpy, for float16 → inf
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_cast_rounded_rounds_to_nearest_even_like_torch(dtype: torch.dtype) -> None:
    # The interpreter's own float32 → bfloat16 cast truncates; cast_rounded must give the GPU's (and torch's) bits,
    # ties, subnormals, mantissa carries into the exponent and overflow to inf included.
    specials = [1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 - 2 ** -9, 2 - 2 ** -9, 3.4e38, -3.4e38, 1e-40, -1e-40, 0.0, -0.0,
                float("inf"), -float("inf")]
    x = torch.cat([torch.randn(3000) * 10 ** torch.randint(-6, 6, (3000,)), torch.tensor(specials)])
    out = torch.empty(x.numel(), dtype=dtype)
    _cast_kernel[(1,)](x, out, x.numel(), BLOCK=triton.next_power_of_2(x.numel()))
    assert torch.equal(out.view(torch.int8), x.to(dtype).view(torch.int8))


# ---------------------------------------------------------------------------------------------- dispatch and compile

def test_ops_dispatch_to_the_kernels_under_the_triton_backend() -> None:
    x, y = torch.randn(2, 17, 40), torch.randn(2, 17, 40)
    gate, shift, scale = torch.randn(3, 2, 3, 40).unbind(0)
    segments = [1, 5, 11]
    with ops.use_backend("triton"):
        assert ops.current_backend() == "triton"
        residual, out = ops.residual_modulate(x, y, gate, shift, scale, segments)
    ref_residual, ref_out = reference.residual_modulate(x, y, gate, shift, scale, segments)
    assert_matches_reference(residual, ref_residual)
    assert_matches_reference(out, ref_out)


def test_kernels_compile_for_hopper(tmp_path) -> None:
    # The interpreter accepts programs the compiler rejects (a name given two types by the branches of an `if`,
    # for one), so every kernel is also compiled ahead of time for sm_90 with the ptxas in the triton wheel. That
    # needs the kernels as JIT functions: a fresh process without TRITON_INTERPRET (and with its own cache).
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"} | {"TRITON_CACHE_DIR": str(tmp_path)}
    code = "import json; from rsinfer.kernels.compile_check import compile_all; print(json.dumps(compile_all(90)))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    shared_bytes = json.loads(done.stdout.strip().splitlines()[-1])  # kernel name → shared memory in bytes
    assert set(shared_bytes) >= {"attention", "modulate", "residual_modulate", "add_layernorm", "group_modulate",
                                 "accumulate"}
    assert 0 < shared_bytes["attention"] <= 227 * 1024  # fits one H100 SM
