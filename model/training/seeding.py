"""Seeds, determinism and thread count: same seed, same inputs -> bit-identical results."""

from __future__ import annotations

import contextlib
import random
from typing import Iterator

import numpy as np
import torch

# Large odd multiplier so that (seed, epoch) pairs map to distinct generator seeds.
_EPOCH_SEED_STRIDE = 1_000_003


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch's global generators (e.g. before building a model)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A generator owned by one epoch: shuffling and augmentation depend only on
    (seed, epoch), so a resumed run draws exactly what an uninterrupted one would."""
    return torch.Generator().manual_seed(seed * _EPOCH_SEED_STRIDE + epoch)


def epoch_numpy_rng(seed: int, epoch: int) -> np.random.Generator:
    """numpy counterpart of `epoch_generator` (for Beta draws, which torch cannot seed)."""
    return np.random.default_rng([seed, epoch])


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool = True) -> Iterator[None]:
    """Ask torch for deterministic kernels inside the block; restore the setting after.

    warn_only: an op without a deterministic kernel warns instead of failing
    (on CPU nearly every op is deterministic already)."""
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn_only)


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with `count` torch intra-op threads (None: leave as is)."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
