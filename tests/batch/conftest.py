"""Ray settings for the batch tests: the same auth mode in every process (Ray 2.60's token default breaks a second
node: shared/research/ray_batch.md, pitfall 1), no usage reporting, no inherited cluster address."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _ray_environment(monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
