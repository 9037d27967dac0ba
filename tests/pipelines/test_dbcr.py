"""DB-CR on tensors (`rsinfer.pipelines.dbcr.DbCr`): the sampling loop, the network time, window-seeded noise."""

from __future__ import annotations

import math

import pytest
import torch

from rsinfer.models.dbcr import build
from rsinfer.pipelines.dbcr import DbCr, SamplingPlan
from rsinfer.tiling import Window

MICRO = dict(widths=(4, 8, 16, 32), encoder_blocks=(1, 1, 1, 1), decoder_blocks=(1, 1, 1, 1), time_dim=8,
             time_pe_dim=8)


# --- the sampling loop -------------------------------------------------------------------------------------------

class RecordingNet(torch.nn.Module):
    """Wraps a network and records the times it is called at."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net, self.config, self.times = net, net.config, []

    def forward(self, x_t, sar, t):
        self.times.append(t.clone())
        return self.net(x_t, sar, t)


def test_one_step_is_the_network_at_t_max() -> None:
    net = build(**MICRO).eval()
    y, sar = torch.rand(2, 13, 20, 12), torch.rand(2, 2, 20, 12)
    with torch.no_grad():
        expected = net(y, sar, torch.full((2,), 1000.0))
    assert torch.equal(DbCr(net, tile=32).restore(y, sar), expected)


@pytest.mark.parametrize("sampler", ["alpha-ratio", "i2sb-ode", "dbim"])
def test_network_time_carries_the_schedules_alpha(sampler: str) -> None:
    recorder = RecordingNet(build(**MICRO).eval())
    pipe = DbCr(recorder, SamplingPlan(sampler, 3), tile=32)
    y, sar = torch.rand(1, 13, 16, 16), torch.rand(1, 2, 16, 16)
    pipe.restore(y, sar)
    times = torch.cat(pipe.engine.net.times).double()  # the engine runs its own copy of the network
    grid = torch.tensor([1.0, 2 / 3, 1 / 3], dtype=torch.float64)
    torch.testing.assert_close(torch.sin(math.pi * times / 2000), pipe.sampler.schedule.alpha(grid), rtol=0, atol=1e-6)
    if sampler == "alpha-ratio":
        torch.testing.assert_close(times, grid * 1000, rtol=0, atol=1e-3)


def test_alpha_ratio_loop_matches_the_update_by_hand() -> None:
    net = build(**MICRO).eval()
    y, sar = torch.rand(1, 13, 16, 24), torch.rand(1, 2, 16, 24)
    x = y
    with torch.no_grad():
        for t, s in ((1.0, 0.5), (0.5, 0.0)):
            x0 = net(x, sar, torch.tensor([1000 * t]))
            ratio = math.sin(math.pi * s / 2) / math.sin(math.pi * t / 2)
            x = (1 - ratio) * x0 + ratio * x
    torch.testing.assert_close(DbCr(net, SamplingPlan("alpha-ratio", 2), tile=32).restore(y, sar), x, rtol=1e-5,
                               atol=1e-6)


def test_sampling_plan_is_validated() -> None:
    with pytest.raises(ValueError, match="unknown sampler"):
        SamplingPlan("ddim")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="steps"):
        SamplingPlan(steps=0)
    with pytest.raises(ValueError, match="dbim sampler only"):
        SamplingPlan("alpha-ratio", eta=0.5)


def test_stochastic_noise_is_anchored_to_the_windows() -> None:
    """Two tiles restored alone equal the same tiles restored in one batch, and a tile's noise depends only on its
    window: the batch composition and order never change a result (fixed network micro-batch, 2 threads: see
    rsinfer.pipelines.microbatch)."""
    torch.set_num_threads(2)  # the conftest fixture restores the test's single thread
    net = build(**MICRO).eval()
    pipe = DbCr(net, SamplingPlan("i2sb", 3, seed=11), tile=32)
    y, sar = torch.rand(2, 13, 16, 24), torch.rand(2, 2, 16, 24)
    windows = [Window(0, 0, 16, 24), Window(16, 8, 16, 24)]
    together = pipe.restore(y, sar, windows, network_batch=2)
    alone = torch.cat([pipe.restore(y[i:i + 1], sar[i:i + 1], [windows[i]], network_batch=2) for i in range(2)])
    swapped = pipe.restore(y.flip(0), sar.flip(0), windows[::-1], network_batch=2).flip(0)
    assert torch.equal(alone, together) and torch.equal(swapped, together)
    moved = pipe.restore(y[:1], sar[:1], [Window(64, 64, 16, 24)], network_batch=2)
    assert (moved - together[:1]).abs().max() > 1e-3  # another place on the grid draws other noise
    reseeded = pipe.with_plan(SamplingPlan("i2sb", 3, seed=12)).restore(y[:1], sar[:1], windows[:1], network_batch=2)
    assert (reseeded - together[:1]).abs().max() > 1e-3


def test_deterministic_samplers_ignore_the_windows() -> None:
    pipe = DbCr(build(**MICRO).eval(), SamplingPlan("alpha-ratio", 2), tile=32)
    y, sar = torch.rand(1, 13, 16, 16), torch.rand(1, 2, 16, 16)
    assert torch.equal(pipe.restore(y, sar, [Window(0, 0, 16, 16)]), pipe.restore(y, sar, [Window(48, 32, 16, 16)]))
    with pytest.raises(ValueError, match="2 windows for a batch of 1"):
        DbCr(build(**MICRO).eval(), SamplingPlan("i2sb", 2), tile=32).restore(y, sar, [Window(0, 0, 16, 16)] * 2)


def test_micro_batches_are_fixed_size_and_balanced() -> None:
    from rsinfer.pipelines.microbatch import balanced_batch, in_microbatches

    assert [balanced_batch(n) for n in (1, 2, 3, 4, 5, 8, 9, 10)] == [1, 2, 3, 4, 3, 4, 3, 4]
    seen = []

    def fn(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.shape[0])
        return x * 2

    x = torch.arange(7.0)[:, None]
    assert torch.equal(in_microbatches(fn, (x,), 3), x * 2) and seen == [3, 3, 3]
