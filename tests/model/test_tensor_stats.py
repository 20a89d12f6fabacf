"""The cheap statistics kernels against direct definitions (torch.count_nonzero, isin, frac)."""

import gc
import weakref

import numpy as np
import pytest
import torch

from sparsespikformer.model.tracing.tensor_stats import (
    INDICATOR,
    Scratch,
    StatsCache,
    TensorStats,
    classify,
    exact_sum,
    nonzero_count,
    summarize_real,
)


def _reference_kind(x):
    binary = bool(torch.isin(x, torch.tensor([0.0, 1.0], dtype=x.dtype)).all())
    integer = bool((torch.frac(x) == 0).all())
    return binary, integer


CASES = {
    "spikes": (torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(0)) < 0.3).float(),
    "all zero": torch.zeros(4, 4),
    "all one": torch.ones(4, 4),
    "small integers": torch.randint(0, 5, (6, 9), generator=torch.Generator().manual_seed(1))
    .float(),
    "signed integers": torch.randint(-3, 4, (6, 9), generator=torch.Generator().manual_seed(2))
    .float(),
    "one below 1": torch.tensor([0.0, 1.0, 1.0 - 2.0 ** -24]),
    "tiny fraction": torch.tensor([0.0, 1.0, 1e-30]),
    "tiny fraction above 1": torch.tensor([3.0, 2.0, 1e-30]),
    "halves": torch.tensor([0.5, 0.0, 1.0]),
    "real": torch.randn(5, 6, generator=torch.Generator().manual_seed(3)),
    "negative zero": torch.tensor([-0.0, 1.0, 0.0]),
    "denormals and signed zeros": torch.tensor([1e-45, -1e-45, 0.0, -0.0, -2.0]),
    "dense real, no zero": torch.randn(64, 33, generator=torch.Generator().manual_seed(4)) + 9,
}


@pytest.mark.parametrize("name", CASES)
def test_classify_matches_the_definitions(name):
    x = CASES[name]
    stats = classify(x, Scratch())
    assert (stats.binary, stats.integer) == _reference_kind(x)
    assert stats.low == float(x.min()) and stats.high == float(x.max())


@pytest.mark.parametrize("name", CASES)
def test_nonzero_count_matches_count_nonzero(name):
    x = CASES[name]
    assert nonzero_count(x) == int(torch.count_nonzero(x))
    assert nonzero_count(x.T if x.dim() == 2 else x, Scratch()) == int(torch.count_nonzero(x))


def test_statistics_ignore_the_view_layout():
    x = torch.randn(4, 6, 8, generator=torch.Generator().manual_seed(4)).relu()
    view = x.permute(2, 0, 1)  # transposed: read in memory order
    assert summarize_real(view) == summarize_real(x)
    assert classify(view) == classify(x)


def test_summarize_real_matches_float64_reference():
    x = torch.randn(3, 4097, generator=torch.Generator().manual_seed(5))  # rows + remainder
    x[0, :10] = 0.0
    summary = summarize_real(x)
    values = x.double().numpy()
    assert summary.low == values.min() and summary.high == values.max()
    assert summary.total == pytest.approx(values.sum(), rel=1e-6, abs=1e-3)
    assert summary.nonzero == np.count_nonzero(values)


def test_exact_sum_is_exact_where_float32_would_round():
    # total 2e10, far beyond the integers float32 holds exactly (2**24)
    x = torch.full((5000, 4000), 1000.0)
    x[0, 0] = 1001.0
    stats = TensorStats(low=1000.0, high=1001.0, binary=False, integer=True)
    assert float(exact_sum(x, None, stats)) == 20_000_000_001.0
    assert exact_sum(x, 1, stats)[0] == 4_000_001.0
    assert exact_sum(x, (0, 1), stats) == 20_000_000_001.0


def test_exact_sum_of_real_values_uses_float64():
    x = torch.tensor([1e8, 1.0, -1e8, 0.25])
    stats = TensorStats(low=-1e8, high=1e8, binary=False, integer=False)
    assert float(exact_sum(x, None, stats)) == 1.25


def test_cache_shares_statistics_between_views_and_notices_writes():
    cache = StatsCache()
    calls = []

    def compute():
        calls.append(1)
        return len(calls)

    x = torch.ones(4, 6)
    assert cache.memo(x, "label", compute, layout=False) == 1
    assert cache.memo(x.T, "label", compute, layout=False) == 1  # same memory, any order
    assert cache.memo(x.T, "label", compute) == 2  # layout-specific: another entry
    x.add_(1)  # an in-place write bumps the version
    assert cache.memo(x, "label", compute, layout=False) == 3
    assert cache.memo(x[:2], "label", compute, layout=False) == 4  # other elements


def test_cache_does_not_answer_for_another_storage_with_the_same_key(monkeypatch):
    """A freed tensor's address can be reused by a new tensor: the key then matches, and
    only the storage check keeps the dead entry from answering. Force equal keys."""
    from sparsespikformer.model.tracing import tensor_stats

    monkeypatch.setattr(tensor_stats, "_memory_key", lambda x, with_layout: "same")
    cache = StatsCache()
    x = torch.zeros(8)
    cache.set_stats(x, INDICATOR)
    y = torch.full((8,), 7.0)
    assert cache.stats(y).high == 7.0  # another live storage: recomputed
    del x, y
    gc.collect()
    z = torch.full((8,), 3.0)
    assert cache.stats(z).high == 3.0  # the entry's storage is dead: recomputed


def test_cache_holds_no_tensor_alive():
    cache = StatsCache()
    x = torch.zeros(10)
    storage = x.untyped_storage()
    ref = weakref.ref(storage)
    cache.stats(x)
    del x, storage
    gc.collect()
    assert ref() is None


def test_scratch_reuses_one_buffer_per_dtype():
    scratch = Scratch()
    big = scratch.like(torch.empty(100))
    small = scratch.like(torch.empty(3, 4))
    assert small.shape == (3, 4) and small.is_contiguous()
    assert small.data_ptr() == big.data_ptr()
    assert scratch.like(torch.empty(5, dtype=torch.float64)).dtype == torch.float64
