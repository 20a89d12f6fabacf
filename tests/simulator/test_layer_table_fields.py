"""The layer table of a hand-built trace, field by field, and its load-imbalance routing.

The trace (T = 2, three samples) has eight rows chosen so that each mask, ratio and
fallback of `build_layer_table` has a case that tells it apart from its neighbours:

    row  name          kind      block  what it exercises
     0   embed         linear     -1    integer inputs, row events kept for 2 of 3 samples
     1   embed_lif     lif        -1    all-zero per-sample ops (ratio 1)
     2   sel.0         selector    0    a firing-rate selector: no GEMM, no weights
     3   sel.1.mlp.0   selector    1    first linear of a learned selector (not the top-k row)
     4   sel.1.mlp.2   selector    1    a 1x1x1 GEMM with dense MACs 3x its M·N·K·T (top-k row)
     5   attn.av       attn_v      1    attention: no static weights, never time-stacked
     6   conv2x2       conv       -1    a 2x2-kernel stride-2 conv: no receptive-field rule
     7   late          linear      1    no per-sample row events: the events fallback
"""

import gc

import numpy as np
import pytest
from tiny_traces import attn_row, conv_row, gemm_row, lif_row, make_trace

from sparsespikformer.simulator.layer_table import _TABLES, build_layer_table, layer_table
from sparsespikformer.simulator.mapping import (
    INPUT_STATIONARY,
    OUTPUT_STATIONARY,
    WEIGHT_STATIONARY,
)

T, S = 2, 3
# Row events of `embed` (one input feature carries them; the other is 0): per sample, per
# timestep, the 4 tokens.
EMBED_EVENTS = np.array([[[1, 0, 0, 0], [0, 0, 2, 2]],
                         [[1, 1, 1, 1], [0, 0, 0, 0]],
                         [[3, 0, 0, 0], [0, 0, 0, 0]]], dtype=float)
EMBED_WEIGHTS = np.array([[1, 0, 0, 0, 1], [1, 0, 0, 0, 0]], dtype=float)  # nnz 2,0,0,0,1
LATE_EVENTS = np.array([[2, 0, 0, 0], [0, 0, 0, 0]], dtype=float)  # every sample alike


def _embed():
    x = np.zeros((S, T, 4, 2))
    x[..., 0] = EMBED_EVENTS
    row, arrays = gemm_row("embed", x, EMBED_WEIGHTS)
    arrays["sample_row_events"] = arrays["sample_row_events"][:2]  # 2 of 3 samples kept
    return row, arrays


def _firing_rate_selector():
    row, arrays = lif_row("sel.0", T, 4, 5, S=S, block=0)
    row.update(kind="selector", in_value_kind="spike")
    arrays = {**arrays, "sample_in_events": np.array([0.2, 0.4, 0.6]),
              "nnz_per_out_channel": np.zeros(0, np.int64)}
    return row, arrays


def _tiny_selector_linear():
    row, arrays = gemm_row("sel.1.mlp.2", np.ones((S, T, 1, 1)), np.ones((1, 1)),
                           kind="selector", block=1)
    row["dense_macs"] = 3.0 * T  # three times M·N·K·T
    return row, arrays


def _attention():
    a = np.zeros((S, T, 1, 4, 1))
    a[:, :, 0, :, 0] = LATE_EVENTS  # every sample alike
    return attn_row("attn.av", a, np.ones((S, T, 1, 1, 3)), kind="attn_v", block=1)


def _stride_two_conv():
    """A 1->2 channel conv on 4x4 inputs recorded as 2x2 kernel, stride 2: 4 taps per
    channel is an even square, so receptive fields are not summed (the input positions'
    16 events stay, and they do not match the 4 output rows: no input imbalance)."""
    row, arrays, _ = conv_row("conv2x2", np.ones((S, T, 1, 4, 4)), np.ones((2, 1, 3, 3)),
                              row_events=False)
    row.update(out_shape="2x2x2x2", gemm_m=4, gemm_k=4, weight_numel=8, weight_nnz=8,
               dense_macs=float(T * 4 * 2 * 4))
    arrays["events_per_step_token"] = arrays["events_per_step_token"].astype(np.float32)
    arrays["nnz_per_out_channel"] = np.array([4, 4])
    return row, arrays


def _late():
    x = np.zeros((S, T, 4, 1))
    x[..., 0] = LATE_EVENTS
    return gemm_row("late", x, np.ones((1, 2)), block=1, row_events=False)


def hand_trace():
    rows = [_embed(), lif_row("embed_lif", T, 4, 5, S=S), _firing_rate_selector(),
            gemm_row("sel.1.mlp.0", np.ones((S, T, 1, 2)), np.ones((2, 1)), kind="selector",
                     block=1),
            _tiny_selector_linear(), _attention(), _stride_two_conv(), _late()]
    return make_trace(rows, T=T)


@pytest.fixture  # per test: mutation testing attributes a build to each test that uses it
def table():
    return build_layer_table(hand_trace())


def test_masks_worked_by_hand(table):
    assert list(table.is_gemm) == [1, 0, 0, 1, 1, 1, 1, 1]  # a 1x1x1 GEMM is a GEMM
    assert list(table.is_static) == [1, 0, 0, 1, 1, 0, 1, 1]  # not the weightless selector
    assert list(table.is_attention) == [0, 0, 0, 0, 0, 1, 0, 0]
    assert list(table.is_lif) == [0, 1, 0, 0, 0, 0, 0, 0]
    assert list(table.is_selector) == [0, 0, 1, 1, 1, 0, 0, 0]
    # sel.0's next row is a selector of another block: it is its own selector's top-k row
    assert list(table.is_top_k) == [0, 0, 1, 0, 1, 0, 0, 0]
    assert list(table.feeds_lif) == [1, 0, 0, 0, 0, 0, 0, 0]
    assert list(table.blocks) == [-1, -1, 0, 1, 1, 1, -1, 1]
    assert list(table.value_kind) == [1, 3, 0, 0, 0, 1, 0, 1]


def test_numbers_are_float64_columns(table):
    assert list(table.m) == [4, 0, 0, 1, 1, 4, 4, 4]
    for column in (table.m, table.n, table.k, table.timesteps, table.groups, table.weight_numel):
        assert column.dtype == np.float64


def test_selector_second_linear_share(table):
    """gemm_extra = dense MACs / (T·groups·M·N·K): 3 on the tiny selector linear, 1 on every
    other row (the LIF and the weightless selector have no GEMM: 1 by definition)."""
    assert list(table.gemm_extra) == [1, 1, 1, 1, 3, 1, 1, 1]


def test_a_one_step_one_mac_selector_linear_keeps_its_share():
    """T = 1 and a 1x1x1 GEMM: T·groups·M·N·K = 1, dense MACs 3: gemm_extra 3."""
    row, arrays = gemm_row("sel.1.mlp.2", np.ones((1, 1, 1, 1)), np.ones((1, 1)),
                           kind="selector", block=1)
    row["dense_macs"] = 3.0
    assert list(build_layer_table(make_trace([(row, arrays)], T=1)).gemm_extra) == [3.0]


def test_per_sample_ratios_to_each_layer_mean(table):
    """sample_effective_ops of embed: events 5, 4, 3 per sample, each on an input feature with
    2 nonzero weights: 10, 8, 6 over their mean 8. The LIF's are all 0: ratio 1. Input events
    of the firing-rate selector: 0.2, 0.4, 0.6 over their mean 0.4 (a mean below 1)."""
    assert list(table.sample_ops_ratio[0]) == [1.25, 1.0, 0.75]
    assert list(table.sample_ops_ratio[1]) == [1.0, 1.0, 1.0]
    assert table.sample_events_ratio[2] == pytest.approx([0.5, 1.0, 1.5])
    assert table.in_events[0] == 4.0 and table.in_events[2] == pytest.approx(0.4)


def test_events_and_channel_counts_per_row(table):
    """The stride-two 2x2 conv keeps its 16 input-position events (as float64); embed's
    channel nonzeros are its weight columns' 2, 0, 0, 0, 1."""
    conv = table.events[6]
    assert conv.shape == (T, 16) and conv.dtype == np.float64
    assert list(table.channel_nnz[0]) == [2, 0, 0, 0, 1]
    assert table.row_events[7] is None and table.row_events[0].shape == (2, T, 1, 4)


@pytest.mark.parametrize("dataflow, rows, cols, parallel, embed, per_sample, weight", [
    # Output stationary: token rows grouped by R = 2, channels by C = 3. Per sample, the mean
    # over (timestep, fold) of each fold's maximum: s0 (1+0+0+2)/4 = 0.75 over its mean
    # element 5/8; s1 (1+1+0+0)/4 = 0.5 over 4/8. Layer: mean 0.625 over mean 0.5625 = 10/9.
    # Sample 3 had no row events kept: it takes the kept samples' mean. Channel nnz
    # 2,0,0,0,1 in folds of 3: (2+1)/2 over 0.6 = 2.5.
    (OUTPUT_STATIONARY, 2, 3, False, 10 / 9, [1.2, 1.0, 1.1], 2.5),
    # Weight stationary: token rows stream in time (no input factor), channels by C = 3.
    (WEIGHT_STATIONARY, 2, 3, False, 1.0, [1.0, 1.0, 1.0], 2.5),
    # Input stationary: token rows grouped by C = 3: s0 (1+0+2+2)/4 = 1.25, s1 0.5: 14/9.
    # Channels are not grouped.
    (INPUT_STATIONARY, 2, 3, False, 14 / 9, [2.0, 1.0, 1.5], 1.0),
    (INPUT_STATIONARY, 4, 2, False, 10 / 9, [1.2, 1.0, 1.1], 1.0),
    # Parallel time stacks the timesteps into 8 rows per sample, groups of R = 3:
    # s0 [1,0,0|0,0,0|2,2] -> (1+0+2)/3 = 1, s1 [1,1,1|1,0,0|0,0] -> 2/3: (5/6)/0.5625 = 40/27.
    # Channels in folds of 2: (2+0+1)/3 over 0.6 = 5/3.
    (OUTPUT_STATIONARY, 3, 2, True, 40 / 27, [1.6, 4 / 3, 22 / 15], 5 / 3),
])
def test_imbalance_routes_each_dataflow_to_its_groups(table, dataflow, rows, cols, parallel,
                                                      embed, per_sample, weight):
    inputs, weights, samples = table.imbalance(dataflow, rows, cols, parallel)
    assert inputs[0] == pytest.approx(embed)
    assert samples[0] == pytest.approx(per_sample)
    assert weights[0] == pytest.approx(weight)
    assert weights[6] == 1.0  # equal channels (4, 4)
    assert inputs[1] == inputs[2] == inputs[6] == 1.0  # no GEMM, or events that miss the rows


@pytest.mark.parametrize("parallel, late, attention", [
    # late (sample mean events [2,0,0,0],[0,0,0,0], mean element 0.25), groups of 3:
    # serial: folds 2,0 | 0,0 -> 0.5 / 0.25 = 2; stacked [2,0,0|0,0,0|0,0] -> (2/3)/0.25 = 8/3.
    # The attention row has the same events but is never stacked: 2 either way.
    (False, 2.0, 2.0),
    (True, 8 / 3, 2.0),
])
def test_rows_after_fallbacks_and_attention_are_not_stacked(table, parallel, late, attention):
    inputs, _, samples = table.imbalance(OUTPUT_STATIONARY, 3, 2, parallel)
    assert inputs[7] == pytest.approx(late) and samples[7] == pytest.approx([late] * 3)
    assert inputs[5] == pytest.approx(attention)


def test_imbalance_and_derived_arrays_are_computed_once_per_key(table):
    first = table.imbalance(OUTPUT_STATIONARY, 2, 3, False)
    again = table.imbalance(OUTPUT_STATIONARY, 2, 3, False)
    assert all(a is b for a, b in zip(first, again))
    builds = []
    value = table.cached(("test", 1), lambda: builds.append(1) or np.zeros(2))
    assert table.cached(("test", 1), lambda: builds.append(1) or np.ones(2)) is value
    assert builds == [1]


def test_one_table_per_live_trace():
    trace, other = hand_trace(), make_trace([lif_row("only", T, 1, 1)], T=T)
    assert layer_table(trace) is layer_table(trace)
    assert list(layer_table(other).names) == ["only"]
    key = id(other)
    del other
    gc.collect()
    assert key not in _TABLES
    assert id(trace) in _TABLES
