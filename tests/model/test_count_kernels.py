"""Every output field of the count kernels in counts.py against explicit float64 loops.

test_trace_counts.py checks the MAC counts against masked layer runs; here each kernel's
other fields (events, per-sample sums, reductions) are pinned too, and inputs whose sums pass
2**24 check that nothing is summed in float32 where float32 would round: 2**24 + 1 is the
smallest integer float32 cannot hold, so a float32 sum of 2**24 - 1 and 2 gives 2**24.
"""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sparsespikformer.model.tracing.counts import (
    ConvGeometry,
    LayerCounts,
    conv2d_counts,
    conv_tap_sums,
    linear_counts,
    matmul_counts,
    reduce_conv,
    reduce_matmul,
    reduce_product_input,
    reduce_product_output,
    reduce_tokens,
    taps_inside,
    token_events_counts,
)
from sparsespikformer.model.tracing.tensor_stats import classify

BIG = 2.0 ** 24 - 1  # float32-exact; BIG + 2 = 2**24 + 1 is not


def integers(*shape, low=0, high=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(low, high, shape, generator=generator).float()


def spikes(*shape, seed=0):
    return integers(*shape, high=2, seed=seed)


def tap_positions(size, out_size, taps, stride, padding, dilation):
    """(output index, tap index, input index) of every tap that reads inside the input."""
    for o, i in itertools.product(range(out_size), range(taps)):
        p = o * stride - padding + i * dilation
        if 0 <= p < size:
            yield o, i, p


# ------------------------------------------------------------------------- taps_inside

GEOMETRIES = [  # (kernel, out_hw, stride, padding, dilation, H, W)
    ((3, 3), (5, 4), (1, 1), (1, 1), (1, 1), 5, 4),
    ((3, 2), (5, 4), (2, 1), (1, 0), (1, 2), 9, 6),
    ((2, 3), (3, 7), (1, 2), (0, 2), (2, 1), 5, 11),
    ((1, 1), (2, 3), (2, 2), (0, 0), (1, 1), 4, 6),
]


@pytest.mark.parametrize("kernel, out_hw, stride, padding, dilation, h, w", GEOMETRIES)
def test_taps_inside_counts_pairs_off_the_padding(kernel, out_hw, stride, padding, dilation,
                                                  h, w):
    """Two oracles: a loop over (output, tap) pairs, and NeuroBench's definition (an
    all-ones conv of an all-ones input: each output sums the taps reading inside)."""
    geometry = ConvGeometry(kernel, out_hw, stride, padding, dilation)
    pairs = sum(1 for (ho, i, _), (wo, j, _) in itertools.product(
        tap_positions(h, out_hw[0], kernel[0], stride[0], padding[0], dilation[0]),
        tap_positions(w, out_hw[1], kernel[1], stride[1], padding[1], dilation[1])))
    ones = F.conv2d(torch.ones(1, 1, h, w, dtype=torch.float64),
                    torch.ones(1, 1, *kernel, dtype=torch.float64),
                    stride=stride, padding=padding, dilation=dilation)
    assert ones.shape[2:] == out_hw
    assert taps_inside(geometry, h, w) == pairs == int(ones.sum())


# ------------------------------------------------------------------------- event-only rows

def test_events_only_row_has_events_and_no_macs():
    events, per_sample = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([5.0, 6.0, 7.0])
    row = LayerCounts.events_only(events, per_sample)
    for field in ("sops", "effective_ops", "nonzero_pairs"):  # (B,): concat joins them
        np.testing.assert_array_equal(getattr(row, field), np.zeros(3), err_msg=field,
                                      strict=True)
    np.testing.assert_array_equal(row.in_events, per_sample)
    np.testing.assert_array_equal(row.events_per_step_token, events)


def token_event_oracle(x):
    """(T, N) Σ|x| over batch and channels, (B,) Σ|x| per sample: plain loops."""
    a = np.abs(x.double().numpy())
    steps, batch, tokens, channels = a.shape
    events, per_sample = np.zeros((steps, tokens)), np.zeros(batch)
    for t, b, n, c in itertools.product(range(steps), range(batch), range(tokens),
                                        range(channels)):
        events[t, n] += a[t, b, n, c]
        per_sample[b] += a[t, b, n, c]
    return events, per_sample


def test_token_events_counts_of_signed_input():
    """Events of a pool / selector input: magnitudes, per token and per sample."""
    x = integers(3, 2, 5, 4, low=-3, high=4, seed=1)
    row = token_events_counts(reduce_tokens(x, classify(x), features=False))
    events, per_sample = token_event_oracle(x)
    np.testing.assert_array_equal(row.events_per_step_token, events)
    np.testing.assert_array_equal(row.in_events, per_sample)
    np.testing.assert_array_equal(row.sops, np.zeros(2))


def test_reduce_tokens_reuses_the_given_per_token_sums():
    x = spikes(2, 2, 3, 4, seed=2)
    given = x.sum(dim=3)
    for features in (False, True):
        assert reduce_tokens(x, classify(x), features, per_token=given).per_token is given


def test_linear_counts_sum_past_float32_exactly():
    """x (T=2, B=2, N=1, C=1) = [[BIG, 2], [2, 0]], weight (3, 1) with two non-zeros.
    Sample 0 sums BIG + 2 over time, step 0 sums BIG + 2 over the batch:
    in_events = [2**24 + 1, 2], events = [[2**24 + 1], [2]], sops = 3 · in_events,
    effective_ops = 2 · in_events, nonzero_pairs = 2 · (non-zero inputs) = [4, 2]."""
    x = torch.tensor([[BIG, 2.0], [2.0, 0.0]]).view(2, 2, 1, 1)
    counts = linear_counts(x, torch.tensor([[1.0], [0.0], [-2.0]]))
    in_events = np.array([2.0 ** 24 + 1, 2.0])
    np.testing.assert_array_equal(counts.in_events, in_events)
    np.testing.assert_array_equal(counts.events_per_step_token, [[2.0 ** 24 + 1], [2.0]])
    np.testing.assert_array_equal(counts.sops, 3 * in_events)
    np.testing.assert_array_equal(counts.effective_ops, 2 * in_events)
    np.testing.assert_array_equal(counts.nonzero_pairs, [4.0, 2.0])


# ------------------------------------------------------------------------- convolutions

def tap_sum_oracle(x, kernel, out_hw, stride, padding, dilation):
    """S[b, (c, i, j)] = Σ over outputs of the input value tap (i, j) reads: loops."""
    a = x.double().numpy()
    batch, channels, h, w = a.shape
    taps = np.zeros((batch, channels, *kernel))
    rows = list(tap_positions(h, out_hw[0], kernel[0], stride[0], padding[0], dilation[0]))
    cols = list(tap_positions(w, out_hw[1], kernel[1], stride[1], padding[1], dilation[1]))
    for (_, i, p), (_, j, q) in itertools.product(rows, cols):
        taps[:, :, i, j] += a[:, :, p, q]
    return taps.reshape(batch, -1)


@pytest.mark.parametrize("kernel, out_hw, stride, padding, dilation, h, w", GEOMETRIES)
@pytest.mark.parametrize("kind", ["spikes", "real"])
def test_conv_tap_sums_match_the_definition(kind, kernel, out_hw, stride, padding, dilation,
                                            h, w):
    """Shape (B, C·kh·kw); float32 for spikes (exact there), float64 for real values,
    whose float32 sums would round (hence the 1e-12 tolerance: float32 is ~1e-7 off)."""
    generator = torch.Generator().manual_seed(3)
    x = spikes(2, 3, h, w) if kind == "spikes" else torch.rand(2, 3, h, w, generator=generator)
    geometry = ConvGeometry(kernel, out_hw, stride, padding, dilation)
    taps = conv_tap_sums(x, geometry, classify(x))
    assert taps.dtype == (torch.float32 if kind == "spikes" else torch.float64)
    expected = tap_sum_oracle(x, kernel, out_hw, stride, padding, dilation)
    assert taps.shape == expected.shape
    np.testing.assert_allclose(taps.double().numpy(), expected, rtol=1e-12)


def test_conv_tap_sums_of_a_7x8_spike_map_stay_float32():
    """H·W·bound = 56 is far below 2**24: the cheap float32 path is exact and is taken."""
    x = spikes(1, 2, 7, 8, seed=4)
    geometry = ConvGeometry((3, 3), (7, 8), (1, 1), (1, 1), (1, 1))
    assert conv_tap_sums(x, geometry, classify(x)).dtype == torch.float32


def test_conv_counts_sum_past_float32_exactly():
    """x (T=1, B=1, C=1, H=1, W=2) = [BIG, 2], a 1x1 kernel of weight 1: one tap reads both
    inputs, so sops = effective_ops = in_events = 2**24 + 1, nonzero_pairs = 2."""
    x = torch.tensor([BIG, 2.0]).view(1, 1, 1, 1, 2)
    counts = conv2d_counts(x, torch.ones(1, 1, 1, 1), (1, 2))
    for field in ("sops", "effective_ops", "in_events"):
        np.testing.assert_array_equal(getattr(counts, field), [2.0 ** 24 + 1], err_msg=field)
    np.testing.assert_array_equal(counts.nonzero_pairs, [2.0])
    np.testing.assert_array_equal(counts.events_per_step_token, [[BIG, 2.0]])


def test_conv_counts_events_match_loops():
    """in_events (B,) and events_per_step_token (T, H·W) of a signed conv input."""
    x = integers(2, 3, 2, 3, 4, low=-2, high=3, seed=5)  # (T, B, C, H, W)
    counts = conv2d_counts(x, torch.ones(2, 2, 3, 3), (3, 4), padding=(1, 1))
    tokens = x.permute(0, 1, 3, 4, 2).reshape(2, 3, 12, 2)  # (T, B, H·W, C)
    events, per_sample = token_event_oracle(tokens)
    np.testing.assert_array_equal(counts.in_events, per_sample)
    np.testing.assert_array_equal(counts.events_per_step_token, events)


def test_spike_inputs_keep_no_separate_nonzero_sums():
    """For 0/1 inputs [x != 0] is x: the reductions document None for the copy."""
    x = spikes(2, 2, 3, 4, 4, seed=6)
    geometry = ConvGeometry((3, 3), (4, 4), (1, 1), (1, 1), (1, 1))
    assert reduce_conv(x, geometry, classify(x)).taps_nz is None
    a = spikes(2, 2, 2, 3, 4, seed=7)
    assert reduce_product_input(a, classify(a)).columns_nz is None


# ------------------------------------------------------------------------- attention products

def test_matmul_counts_every_field_matches_loops():
    """a (T, B, heads, M, K) integers, b spikes: a[m, k] meets the non-zeros of b's row k."""
    a, b = integers(2, 3, 2, 4, 5, seed=8), spikes(2, 3, 2, 5, 6, seed=9)
    counts = matmul_counts(a, b)
    a64, b64 = a.double().numpy(), b.double().numpy()
    per_sample, effective, pairs = np.zeros(3), np.zeros(3), np.zeros(3)
    events = np.zeros((2, 4))  # (T, M)
    for t, s, h, m, k in itertools.product(range(2), range(3), range(2), range(4), range(5)):
        value, row_nonzeros = a64[t, s, h, m, k], np.count_nonzero(b64[t, s, h, k])
        per_sample[s] += value
        events[t, m] += value
        effective[s] += value * row_nonzeros
        pairs[s] += (value != 0) * row_nonzeros
    np.testing.assert_array_equal(counts.in_events, per_sample)
    np.testing.assert_array_equal(counts.sops, per_sample * 6)
    np.testing.assert_array_equal(counts.effective_ops, effective)
    np.testing.assert_array_equal(counts.nonzero_pairs, pairs)
    np.testing.assert_array_equal(counts.events_per_step_token, events)


def test_reduce_matmul_reuses_the_given_input_sums():
    a, b = spikes(1, 2, 2, 3, 4, seed=10), spikes(1, 2, 2, 4, 3, seed=11)
    stats_a, stats_b = classify(a), classify(b)
    given = reduce_product_input(a, stats_a)
    reduced = reduce_matmul(a, b, stats_a, stats_b, a_sums=given)
    assert reduced.a_rows is given.rows and reduced.a_columns is given.columns


def product_output(a, b):
    """reduce_product_output of a @ b (single head, single sample) and the float64 product."""
    a, b = a.view(1, 1, 1, *a.shape), b.view(1, 1, 1, *b.shape)
    stats_a, stats_b = classify(a), classify(b)
    stats, sums = reduce_product_output(a @ b, a, b, stats_a, stats_b,
                                        reduce_matmul(a, b, stats_a, stats_b))
    product = a.double().numpy()[0, 0, 0] @ b.double().numpy()[0, 0, 0]
    return stats, sums, product


def assert_sums_of(sums, product):
    """rows: Σ over a product row, columns: Σ over a column, columns_nz: non-zeros per column."""
    np.testing.assert_array_equal(sums.rows.double().numpy()[0, 0, 0], product.sum(axis=1))
    np.testing.assert_array_equal(sums.columns.double().numpy()[0, 0, 0], product.sum(axis=0))


P = 2.0 ** 23 - 1  # an odd integer: 2P + 3 and 3P are odd and above 2**24


@pytest.mark.parametrize("a, b", [
    # M decides: columns BIG + 2; float32 only if the bound used heads instead of M = 2
    ([[BIG], [2.0]], [[1.0]]),
    # K decides: a row sums 2P + 3; float32 only if the bound used B or M instead of K = 2
    ([[P, 3.0]], [[1.0, 1.0], [1.0, 0.0]]),
    # N decides: a row sums 3P; float32 only if the bound used B or K instead of N = 2
    ([[P]], [[1.0, 2.0]]),
])
def test_product_sums_past_float32_are_read_exactly(a, b):
    """Every product entry is below 2**24 (float32 holds the product) but a row or column
    sum is an odd integer above it, which only a float64 sum holds."""
    stats, sums, product = product_output(torch.tensor(a), torch.tensor(b))
    assert max(product.sum(axis=1).max(), product.sum(axis=0).max()) > 2.0 ** 24
    assert_sums_of(sums, product)
    assert stats.high == product.max()


@pytest.mark.parametrize("a, b", [([[0.0]], [[BIG, 2.0]]), ([[BIG], [2.0]], [[0.0]])])
def test_product_with_an_all_zero_operand_is_zero(a, b):
    """A head without spikes: the product is 0 whatever the other operand holds, even when
    that operand's own sums (BIG + 2) need float64."""
    stats, sums, product = product_output(torch.tensor(a), torch.tensor(b))
    assert not product.any()
    assert_sums_of(sums, product)
    assert (stats.high, stats.binary, sums.nonzero()) == (0.0, True, 0.0)


def test_product_with_twos_from_spikes_is_not_binary():
    """a = [[1, 1], [1, 0]], b = [[1, 0, 2], [1, 0, 0]]: a @ b = [[2, 0, 2], [1, 0, 2]].
    Row sums need b's row sums [3, 1] (not its non-zeros [2, 1]); non-zeros per column
    [2, 0, 2]; a maximum of 2 is not 0/1."""
    stats, sums, product = product_output(torch.tensor([[1.0, 1.0], [1.0, 0.0]]),
                                          torch.tensor([[1.0, 0.0, 2.0], [1.0, 0.0, 0.0]]))
    np.testing.assert_array_equal(product, [[2, 0, 2], [1, 0, 2]])
    assert_sums_of(sums, product)
    assert (stats.low, stats.high, stats.binary, stats.integer) == (0.0, 2.0, False, True)
    np.testing.assert_array_equal(sums.columns_nz.numpy()[0, 0, 0], [2, 0, 2])
    assert sums.nonzero() == 4


def test_binary_product_keeps_no_separate_nonzero_sums():
    """a = b = the 2x2 identity: a @ b is 0/1, so [product != 0] is the product itself."""
    stats, sums, product = product_output(torch.eye(2), torch.eye(2))
    assert stats.binary and sums.columns_nz is None
    assert_sums_of(sums, product)
    assert sums.nonzero() == 2
