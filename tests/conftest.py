"""Shared fixtures: the interpreter switch, real data, seeding, one torch thread per test."""

from __future__ import annotations

import os
from pathlib import Path

# No GPU on our machines: the Triton backend runs its kernels in the interpreter. Set before anything imports triton.
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
import torch

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


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
