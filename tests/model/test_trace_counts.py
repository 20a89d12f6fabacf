"""The fast count kernels against brute force: run the layer with 0/1 masks and sum."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sparsespikformer.model.tracing.counts import (
    conv2d_counts,
    linear_counts,
    matmul_counts,
)


def spikes(*shape, rate=0.3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=generator) < rate).double()


def small_integers(*shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 4, shape, generator=generator).double()


def pruned(weight, density=0.4, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return weight * (torch.rand(weight.shape, generator=generator) < density)


def brute_conv(x, weight, **conv):
    """Per-sample counts by convolving with masks: Σ_out conv(x, M) counts x·fan-out."""
    flat = x.flatten(0, 1).double()
    steps, batch = x.shape[:2]
    def total(inp, mask):
        return F.conv2d(inp, mask.double(), **conv).view(steps, batch, -1).sum(dim=(0, 2))
    return (total(flat, torch.ones_like(weight)), total(flat, weight != 0),
            total((flat != 0).double(), weight != 0))


@pytest.mark.parametrize("make_input", [spikes, small_integers])
@pytest.mark.parametrize("conv", [dict(stride=1, padding=1), dict(stride=2, padding=0),
                                  dict(stride=1, padding=2, dilation=2)])
def test_conv_counts_match_brute_force(make_input, conv):
    x = make_input(3, 2, 4, 9, 7)
    weight = pruned(torch.randn(5, 4, 3, 3))
    out_hw = F.conv2d(x.flatten(0, 1).float(), weight, **conv).shape[2:]
    pair = lambda name, default: (conv.get(name, default),) * 2  # noqa: E731
    counts = conv2d_counts(x, weight, tuple(out_hw), stride=pair("stride", 1),
                           padding=pair("padding", 0), dilation=pair("dilation", 1))
    sops, effective, pairs = brute_conv(x, weight, **conv)
    np.testing.assert_array_equal(counts.sops, sops.numpy())
    np.testing.assert_array_equal(counts.effective_ops, effective.numpy())
    np.testing.assert_array_equal(counts.nonzero_pairs, pairs.numpy())
    assert counts.events_per_step_token.shape == (3, 9 * 7)
    assert counts.events_per_step_token.sum() == float(x.sum())


@pytest.mark.parametrize("make_input", [spikes, small_integers])
def test_conv_counts_with_different_row_and_column_geometry(make_input):
    """A 3x2 kernel with stride (2, 1), padding (1, 0) and dilation (1, 2): a kernel that mixed
    up the row and column geometry would count other taps."""
    x = make_input(2, 2, 3, 9, 8)
    weight = pruned(torch.randn(4, 3, 3, 2))
    conv = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    out_hw = F.conv2d(x.flatten(0, 1).float(), weight, **conv).shape[2:]
    counts = conv2d_counts(x, weight, tuple(out_hw), **conv)
    sops, effective, pairs = brute_conv(x, weight, **conv)
    np.testing.assert_array_equal(counts.sops, sops.numpy())
    np.testing.assert_array_equal(counts.effective_ops, effective.numpy())
    np.testing.assert_array_equal(counts.nonzero_pairs, pairs.numpy())


@pytest.mark.parametrize("make_input", [spikes, small_integers])
def test_linear_counts_match_brute_force(make_input):
    x = make_input(4, 3, 6, 8)  # (T, B, N, C_in)
    weight = pruned(torch.randn(5, 8))
    counts = linear_counts(x, weight)
    mask = (weight != 0).double()
    # brute force: explicit loops over (t, b, n, i, o)
    for b in range(3):
        sample = x[:, b]
        sops = sum(float(sample[t, n, i]) * 5 for t in range(4) for n in range(6)
                   for i in range(8))
        effective = sum(float(sample[t, n, i] * mask[o, i]) for t in range(4) for n in range(6)
                        for i in range(8) for o in range(5))
        pairs = sum(float((sample[t, n, i] != 0) * mask[o, i]) for t in range(4)
                    for n in range(6) for i in range(8) for o in range(5))
        assert counts.sops[b] == sops
        assert counts.effective_ops[b] == effective
        assert counts.nonzero_pairs[b] == pairs


def test_attention_counts_match_explicit_matmuls():
    q, k, v = spikes(2, 3, 2, 5, 4, seed=1), spikes(2, 3, 2, 5, 4, seed=2), spikes(2, 3, 2, 5, 4,
                                                                                 seed=3)
    qk = matmul_counts(q, k.transpose(-2, -1))
    # Q·Kᵀ: every (query n, key m, channel c) product; a pair counts when both are non-zero.
    products = q.unsqueeze(4) * (k != 0).double().unsqueeze(3)  # (T,B,H,N,M,d)
    np.testing.assert_allclose(qk.effective_ops, products.sum(dim=(0, 2, 3, 4, 5)).numpy())
    np.testing.assert_allclose(qk.sops, (q.sum(dim=(0, 2, 3, 4)) * 5).numpy())
    scores = q @ k.transpose(-2, -1)
    av = matmul_counts(scores, v)
    products = scores.unsqueeze(-1) * (v != 0).double().unsqueeze(3)  # (T,B,H,N,M,d)
    np.testing.assert_allclose(av.effective_ops, products.sum(dim=(0, 2, 3, 4, 5)).numpy())
    pairs = (scores != 0).double().unsqueeze(-1) * (v != 0).double().unsqueeze(3)
    np.testing.assert_allclose(av.nonzero_pairs, pairs.sum(dim=(0, 2, 3, 4, 5)).numpy())


def test_batches_of_different_value_kinds_concatenate_exactly():
    """A layer whose input is 0/1 in one batch (no separate non-zero sums kept) and small
    integers in the next: the joined counts equal those of the whole input."""
    from sparsespikformer.model.tracing.counts import (
        LayerCounts,
        linear_counts_from,
        nonzero_fanout,
        reduce_tokens,
    )
    from sparsespikformer.model.tracing.tensor_stats import classify

    binary, integer = spikes(2, 3, 6, 8, seed=4), small_integers(2, 3, 6, 8, seed=5)
    weight = pruned(torch.randn(5, 8))
    parts = [reduce_tokens(x, classify(x)) for x in (binary, integer)]
    assert parts[0].per_step_feature_nz is None and parts[1].per_step_feature_nz is not None
    together = LayerCounts.concat([linear_counts_from(part, 5, nonzero_fanout(weight))
                                   for part in parts])
    whole = linear_counts(torch.cat([binary, integer], dim=1), weight)
    for key in ("sops", "effective_ops", "nonzero_pairs", "in_events", "events_per_step_token"):
        np.testing.assert_array_equal(getattr(together, key), getattr(whole, key), err_msg=key)


@pytest.mark.parametrize("make_operands", [
    lambda g: (torch.rand(2, 3, 2, 5, 4, generator=g) < 0.4, torch.rand(2, 3, 2, 4, 6, generator=g)
               < 0.4),  # spikes: a sparse attention map
    lambda g: (torch.rand(2, 3, 2, 5, 4, generator=g) < 0.1, torch.rand(2, 3, 2, 4, 6, generator=g)
               < 0.1),  # mostly-zero rows
    lambda g: (torch.ones(2, 3, 2, 5, 4), torch.ones(2, 3, 2, 4, 6)),  # dense: min from a pass
    lambda g: (torch.randint(0, 3, (2, 3, 2, 5, 4), generator=g), torch.rand(2, 3, 2, 4, 6,
               generator=g) < 0.5),  # integer input
    lambda g: (torch.rand(2, 3, 2, 5, 4, generator=g), torch.rand(2, 3, 2, 4, 6, generator=g)),
])
def test_product_output_from_operands_equals_reading_the_product(make_operands):
    from sparsespikformer.model.tracing.counts import (
        reduce_matmul,
        reduce_product_input,
        reduce_product_output,
    )
    from sparsespikformer.model.tracing.tensor_stats import classify

    a, b = (t.float() for t in make_operands(torch.Generator().manual_seed(9)))
    product = a @ b
    stats_a, stats_b = classify(a), classify(b)
    stats, sums = reduce_product_output(product, a, b, stats_a, stats_b,
                                        reduce_matmul(a, b, stats_a, stats_b))
    expected_stats = classify(product)
    expected = reduce_product_input(product, expected_stats)
    assert stats == expected_stats
    for field in ("rows", "columns"):
        np.testing.assert_array_equal(getattr(sums, field).numpy(),
                                      getattr(expected, field).numpy(), err_msg=field)
    assert sums.nonzero() == expected.nonzero() == float((product != 0).sum())
