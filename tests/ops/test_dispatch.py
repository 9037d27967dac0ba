"""Dispatch: `use_backend("reference")` reaches the reference ops with every argument, and dispatch composes with
torch.compile (the backend is resolved once while tracing, with no graph break).

The reference backend *is* the specification (`rsinfer.ops.reference`), so comparing its numbers with themselves
would test nothing but dispatch; this file tests dispatch once, directly. Parity of the other backends with the
reference is in test_parity.py.
"""

from __future__ import annotations

import pytest
import torch
from tests.conftest import require_backend
from tests.numerics import assert_matches_reference

from rsinfer import ops
from rsinfer.ops import backends, reference


def _calls() -> dict[str, tuple]:
    """Arguments of every op with no argument at its default (segments, eps, scale, placement), so an argument
    dropped or swapped on the way changes the result."""
    x, y = torch.randn(2, 17, 40), torch.randn(2, 17, 40)
    gate, shift, scale = torch.randn(3, 2, 3, 40).unbind(0)
    return {
        "attention": (torch.randn(1, 2, 5, 24), torch.randn(1, 2, 9, 24), torch.randn(1, 2, 9, 24), 0.3),
        "modulate": (x, shift, scale, [4, 2, 11], 1e-3),
        "residual_modulate": (x, y, gate, shift, scale, [4, 2, 11], 1e-3),
        "add_layernorm": (x, y, torch.randn(40), torch.randn(40), 1e-2),
        "group_modulate": (torch.randn(2, 3, 5, 7), torch.randn(2, 3), torch.randn(2, 3), 1e-2),
        "accumulate": (torch.randn(3, 20, 21), torch.rand(20, 21), torch.randn(3, 7, 9), torch.rand(7, 9), 13, 12),
    }


def test_reference_backend_dispatches_every_op_with_every_argument() -> None:
    calls = _calls()
    assert set(calls) == set(backends.OPS)
    with ops.use_backend("reference"):
        for op, args in calls.items():
            assert backends.implementation(op, torch.device("cpu")) is getattr(reference, op), op
            if op == "accumulate":  # in place: both on their own copies of the canvases
                got, expected = [a.clone() for a in args[:2]], [a.clone() for a in args[:2]]
                ops.accumulate(*got, *args[2:])
                reference.accumulate(*expected, *args[2:])
            else:
                got, expected = getattr(ops, op)(*args), getattr(reference, op)(*args)
            got, expected = (v if isinstance(v, (tuple, list)) else (v,) for v in (got, expected))
            assert len(got) == len(expected) and all(torch.equal(a, b) for a, b in zip(got, expected)), op


class _AdaLNThenPostLN(torch.nn.Module):
    def forward(self, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        y = ops.modulate(x, shift, scale, segments=[3, 14])
        weight = torch.linspace(0.5, 1.5, x.shape[-1])
        return ops.add_layernorm(y, x, weight, torch.zeros(x.shape[-1]))


@pytest.mark.parametrize("backend", ["reference", "ext", "auto"])
def test_ops_trace_as_one_graph_under_torch_compile(backend: str) -> None:
    if backend == "ext":
        require_backend(backend)
    x, shift, scale = torch.randn(2, 17, 40), torch.randn(2, 2, 40), torch.randn(2, 2, 40)
    with ops.use_backend(backend):
        eager = _AdaLNThenPostLN()(x, shift, scale)
        compiled = torch.compile(_AdaLNThenPostLN(), fullgraph=True, backend="aot_eager")(x, shift, scale)
    with ops.use_backend("reference"):
        reference_out = _AdaLNThenPostLN()(x, shift, scale)
    assert_matches_reference(compiled, reference_out)
    assert_matches_reference(eager, reference_out)


# ------------------------------------------------------------------------------- required backends (tests/conftest.py)

@pytest.fixture
def ext_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    """`ops.backend_status("ext")` reports the extension as not built, for this test only."""
    built = ops.backend_status

    def status(name: str) -> ops.BackendStatus:
        return ops.BackendStatus("ext", False, "not built (test)") if name == "ext" else built(name)

    monkeypatch.setattr(ops, "backend_status", status)


@pytest.mark.parametrize("required", ["", "triton"])
def test_an_unavailable_backend_skips_when_not_required(monkeypatch, ext_unavailable, required: str) -> None:
    monkeypatch.setenv("RSINFER_REQUIRE_BACKENDS", required)
    with pytest.raises(pytest.skip.Exception, match="backend 'ext' is not available: not built"):
        require_backend("ext")


@pytest.mark.parametrize("required", ["ext", "ext,triton", " triton , ext "])
def test_an_unavailable_required_backend_fails(monkeypatch, ext_unavailable, required: str) -> None:
    monkeypatch.setenv("RSINFER_REQUIRE_BACKENDS", required)
    with pytest.raises(pytest.fail.Exception, match="not built .*RSINFER_REQUIRE_BACKENDS requires it"):
        require_backend("ext")
    require_backend("reference")  # always there: returns


def test_required_backends_must_be_known(monkeypatch) -> None:
    monkeypatch.setenv("RSINFER_REQUIRE_BACKENDS", "ext,cuda")
    with pytest.raises(ValueError, match=r"unknown backends \['cuda'\]; allowed: \('ext', 'triton'\)"):
        require_backend("ext")
