"""Fixed-size network calls, so that a tile's result never depends on which tiles share its batch.

Convolution and GEMM libraries pick kernels by batch size (oneDNN, MKL: a 1-row GEMM takes another path than a 4-row
one), so the same tile computed in a batch of 1 and in a batch of 3 can differ in the last bits, and a random-weight
network amplifies that. Within one batch size, a sample's result does not depend on its position or on the other
samples (measured on DB-CR: permuted and zero-padded batches of 4 give identical outputs). So a pipeline that wants
results independent of `Tiling.batch_size`, tile order, skipped tiles and workers calls its network in micro-batches
of a size fixed per scene (`balanced_batch`), the last one padded with zeros (`in_microbatches`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

MAX_NETWORK_BATCH = 4


def balanced_batch(count: int, cap: int = MAX_NETWORK_BATCH) -> int:
    """The micro-batch size for `count` tiles: as few calls of ≤ `cap` tiles as possible, as equal as possible (9 tiles,
    cap 4 → 3 calls of 3), so padding wastes less than one call."""
    if count < 1 or cap < 1:
        raise ValueError(f"need count >= 1 and cap >= 1, got count={count}, cap={cap}")
    return math.ceil(count / math.ceil(count / cap))


def in_microbatches(fn: Callable[..., torch.Tensor], inputs: tuple[torch.Tensor, ...], size: int) -> torch.Tensor:
    """fn over `inputs` (all with the same batch B) in calls of exactly `size` samples, the last one zero-padded;
    returns the B results concatenated."""
    batch = inputs[0].shape[0]
    outputs = []
    for start in range(0, batch, size):
        chunk = [x[start:start + size] for x in inputs]
        missing = size - chunk[0].shape[0]
        if missing:
            chunk = [torch.cat([x, x.new_zeros((missing, *x.shape[1:]))]) for x in chunk]
        outputs.append(fn(*chunk)[:size - missing])
    return torch.cat(outputs)
