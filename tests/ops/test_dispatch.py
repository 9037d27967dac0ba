"""Dispatch composes with torch.compile: the backend is resolved once while tracing, with no graph break."""

from __future__ import annotations

import pytest
import torch

from rsinfer import ops
from tests.numerics import assert_matches_reference


class _AdaLNThenPostLN(torch.nn.Module):
    def forward(self, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        y = ops.modulate(x, shift, scale, segments=[3, 14])
        weight = torch.linspace(0.5, 1.5, x.shape[-1])
        return ops.add_layernorm(y, x, weight, torch.zeros(x.shape[-1]))


@pytest.mark.parametrize("backend", ["reference", "ext", "auto"])
def test_ops_trace_as_one_graph_under_torch_compile(backend: str) -> None:
    if backend != "auto" and not ops.backend_status(backend).available:
        pytest.skip(f"{backend}: {ops.backend_status(backend).reason}")
    x, shift, scale = torch.randn(2, 17, 40), torch.randn(2, 2, 40), torch.randn(2, 2, 40)
    with ops.use_backend(backend):
        eager = _AdaLNThenPostLN()(x, shift, scale)
        compiled = torch.compile(_AdaLNThenPostLN(), fullgraph=True, backend="aot_eager")(x, shift, scale)
    with ops.use_backend("reference"):
        reference = _AdaLNThenPostLN()(x, shift, scale)
    assert_matches_reference(compiled, reference)
    assert_matches_reference(eager, reference)
