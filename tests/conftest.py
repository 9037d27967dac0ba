"""Shared fixtures: the interpreter switch, real data, seeding, one torch thread per test, required backends.

`RSINFER_REQUIRE_BACKENDS` (comma-separated, e.g. "ext,triton"; CI sets it in .ci/run) names backends that must be
available: a test that needs one of them then fails instead of skipping when it cannot run. Without it, developers
without the extension or triton get skips. `require_backend` is the one place that makes that decision.
"""

from __future__ import annotations

import os
from pathlib import Path

# No GPU on our machines: the Triton backend runs its kernels in the interpreter. Set before anything imports triton.
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REQUIRED_BACKENDS_VARIABLE = "RSINFER_REQUIRE_BACKENDS"
OPTIONAL_BACKENDS = ("ext", "triton")  # "reference" is always available


def required_backends() -> frozenset[str]:
    """The backends `RSINFER_REQUIRE_BACKENDS` names; ValueError for a name that is not an optional backend."""
    names = {name.strip() for name in os.environ.get(REQUIRED_BACKENDS_VARIABLE, "").split(",") if name.strip()}
    unknown = sorted(names - set(OPTIONAL_BACKENDS))
    if unknown:
        raise ValueError(f"{REQUIRED_BACKENDS_VARIABLE} names unknown backends {unknown}; allowed: {OPTIONAL_BACKENDS}")
    return frozenset(names)


def require_backend(name: str) -> None:
    """Return if backend `name` can run here; else skip the test (or module), or fail it when the backend is required.

    Call it in a test, a fixture or at module level.
    """
    from rsinfer import ops

    required = required_backends()
    status = ops.backend_status(name)
    if status.available:
        return
    message = f"backend {name!r} is not available: {status.reason}"
    if name in required:
        pytest.fail(f"{message} ({REQUIRED_BACKENDS_VARIABLE} requires it)", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def pytest_configure(config: pytest.Config) -> None:
    try:
        required_backends()
    except ValueError as err:
        raise pytest.UsageError(str(err)) from None


@pytest.fixture
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"real test data not found at {DATA}: the shared/ folder must sit beside the checkout")
    return DATA


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread per test: under `pytest -n 2` on 2 shared cores, a 2-thread pool spends most of its time
    at barriers waiting for a descheduled peer (measured 10-50x slower on small tensors). Tests that exercise
    parallel code set their own thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
