"""The schedule's per-layer quantities worked by hand on an eleven-row table (docs/schedule.md).

The table (T = 2, one sample) is a stem LIF, two Spikformer-like blocks and a head:

    row  name         kind      block  input    M  K  N  out_numel  act_bits
     0   stem_lif     lif        -1    real     4  -  3     12         16
     1   b0.q         linear      0    integer  4  3  5     20          2
     2   b0.q_lif     lif         0    real     4  -  5     20         16
     3   b0.proj      linear      0    spike    4  5  3     12          1
     4   b0.proj_lif  lif         0    real     4  -  3     12         16
     5   sel.1        selector    1    spike    (a firing-rate selector: no GEMM)
     6   b1.fc1       linear      1    integer  2  3  6     12          3
     7   b1.fc1_lif   lif         1    real     2  -  6     12         16
     8   b1.fc2       linear      1    spike    2  6  3      6          1
     9   b1.fc2_lif   lif         1    real     2  -  3      6         16
    10   head         linear     -1    rate     1  3  2      2          8

The mapping is given by hand (not folded by mapping.py), so every expected value below is the
schedule's own rule applied on paper to these numbers.
"""

import numpy as np
import pytest
from tiny_traces import gemm_row, lif_row, make_trace

from sparsespikformer.simulator import load_hwconfig
from sparsespikformer.simulator.layer_table import build_layer_table
from sparsespikformer.simulator.mapping import GemmMapping
from sparsespikformer.simulator.schedule import (
    INPUTS_OUTER,
    INSIDE,
    OUTSIDE,
    WEIGHTS_OUTER,
    build_schedule,
    candidate_mappings,
)

T = 2
ACT_BITS = np.array([16, 2, 16, 1, 16, 1, 3, 16, 1, 16, 8], dtype=float)
LIF_ROWS = [0, 2, 4, 7, 9]
MEMBRANE_BITS = 16  # sparse_int8_45nm's neuron_unit.membrane_bits
PSUM_BITS = 24  # its pe_array.psum_bits
ONES = np.ones(11)


def _linear(name, block, m, k, n, values):
    x = np.zeros((1, T, m, k))
    x[0, 0, 0, 0] = values  # only the value range matters here: it sets the input kind
    return gemm_row(name, x, np.ones((k, n)), block=block)


def _selector(name, block, m):
    row, arrays = lif_row(name, T, m, 3, block=block)
    row.update(kind="selector", in_value_kind="spike", input_is_spike=True)
    return row, {**arrays, "nnz_per_out_channel": np.zeros(0, np.int64)}


def _head():
    x = np.full((1, T, 1, 3), 0.5)  # firing rates
    return gemm_row("head", x, np.ones((3, 2)))


@pytest.fixture  # per test: mutation testing attributes a build to each test that uses it
def table():
    rows = [lif_row("stem_lif", T, 4, 3),
            _linear("b0.q", 0, 4, 3, 5, 3.0), lif_row("b0.q_lif", T, 4, 5, block=0),
            _linear("b0.proj", 0, 4, 5, 3, 1.0), lif_row("b0.proj_lif", T, 4, 3, block=0),
            _selector("sel.1", 1, 4),
            _linear("b1.fc1", 1, 2, 3, 6, 7.0), lif_row("b1.fc1_lif", T, 2, 6, block=1),
            _linear("b1.fc2", 1, 2, 6, 3, 1.0), lif_row("b1.fc2_lif", T, 2, 3, block=1),
            _head()]
    built = build_layer_table(make_trace(rows, T=T))
    assert list(built.value_kind) == [3, 1, 3, 0, 3, 0, 1, 3, 0, 3, 2]  # the table's premise
    return built


# Fold counts given by hand: K folds 1, 2, 3, 1 on the four block GEMMs (the head: 1).
MAPPING = GemmMapping(
    passes=ONES * T, time_passes=np.array([T, T, T, T, T, 0, T, T, T, T, T], dtype=float),
    m_eff=ONES, stream=ONES, folds=ONES, fill_drain=ONES,
    weight_set_reads=np.array([0, 6, 0, 8, 0, 0, 10, 0, 4, 0, 2], dtype=float),
    input_reuse=np.array([1, 2, 1, 1, 1, 1, 3, 1, 1, 1, 1], dtype=float),
    k_folds=np.array([1, 1, 1, 2, 1, 1, 3, 1, 1, 1, 1], dtype=float))


def schedule_for(table, **overrides):
    keys = {"pe_array.rows": 3, "pe_array.cols": 4, **overrides}
    return build_schedule(table, load_hwconfig("sparse_int8_45nm", keys), MAPPING, ACT_BITS)


def lif_values(values):
    """An (11,) array with `values` on the five LIF rows and 0 elsewhere."""
    out = np.zeros(11)
    out[LIF_ROWS] = values
    return out


def test_residual_stream_rows_and_bits(table):
    """Readers: the integer-input linears inside blocks (b0.q, b1.fc1), not the head's rate
    input. Stream bits per block: the largest reader's in_numel x bits: block 0 4x3 x 2 = 24,
    block 1 2x3 x 3 = 18, rows outside blocks 0. Adds: a LIF whose GEMM took spikes and whose
    next row, selectors skipped, takes integers or rates: b0.proj_lif (next b1.fc1, past
    sel.1) and b1.fc2_lif (next the head). The stem LIF has no producer row: no add.
    Residual value width: the widest reader, 3 bits."""
    s = schedule_for(table)
    assert list(np.flatnonzero(s.input_is_residual)) == [1, 6]
    assert list(s.residual_bits) == [0, 24, 24, 24, 24, 18, 18, 18, 18, 18, 0]
    assert list(np.flatnonzero(s.residual_add)) == [4, 9]
    assert s.residual_value_bits == 3.0


def test_a_table_without_residual_readers_has_one_bit_values():
    lone = build_layer_table(make_trace([_head(), lif_row("lif", T, 1, 2)], T=T))
    mapping = GemmMapping(**{name: np.ones(2) for name in GemmMapping.__dataclass_fields__})
    s = build_schedule(lone, load_hwconfig("sparse_int8_45nm"), mapping, np.array([8.0, 16.0]))
    assert s.residual_value_bits == 1.0
    assert not s.input_is_residual.any() and not s.residual_add.any()


@pytest.mark.parametrize("dataflow, tiles", [
    # the GEMM feeding each LIF (rows 1, 3, 6, 8: M x N = 4x5, 4x3, 2x6, 2x3) on a 3x4 array
    ("output_stationary", [0, 3 * 4, 3 * 3, 2 * 4, 2 * 3]),  # min(M, R) x min(N, C)
    ("weight_stationary", [0, 4 * 4, 4 * 3, 2 * 4, 2 * 3]),  # M x min(N, C)
    ("input_stationary", [0, 4 * 5, 4 * 3, 2 * 6, 2 * 3]),  # min(M, C) x N
])
def test_lif_tile_neurons_per_dataflow(table, dataflow, tiles):
    s = schedule_for(table, **{"pe_array.dataflow": dataflow})
    assert list(s.tile_neurons) == list(lif_values(tiles))


def test_one_table_swept_over_dataflows_keeps_each_arrays_tiles(table):
    """A sweep reuses one layer table for every config: the per-table cache of LIF tiles
    is keyed by the array shape and dataflow, so each config sees its own tiles."""
    expected = {"output_stationary": [0, 12, 9, 8, 6], "weight_stationary": [0, 16, 12, 8, 6],
                "input_stationary": [0, 20, 12, 12, 6]}
    for dataflow in [*expected, *reversed(expected)]:
        s = schedule_for(table, **{"pe_array.dataflow": dataflow})
        assert list(s.tile_neurons) == list(lif_values(expected[dataflow]))


@pytest.mark.parametrize("batch", [1, 3])
def test_membrane_live_sets_per_time_loop(table, batch):
    """Layer by layer: inside the tile, one output tile's membranes (OS tiles 12, 9, 8, 6
    neurons x 16 bits, one inference at a time); outside the folds, the layer's (out_numel x
    16 bits x batch). Network time loop: every LIF layer's (12+20+12+12+6 = 62 neurons x 16
    x batch) on each LIF row, both placements. Parallel time: none stored."""
    layer = schedule_for(table, **{"schedule.batch": batch})
    assert list(layer.membrane_live_bits[INSIDE]) == list(lif_values([0, 192, 144, 128, 96]))
    assert list(layer.membrane_live_bits[OUTSIDE]) == list(
        lif_values([192 * batch, 320 * batch, 192 * batch, 192 * batch, 96 * batch]))
    network = schedule_for(table, **{"schedule.batch": batch, "schedule.time_loop": "network"})
    assert len(network.membrane_live_bits) == 2  # one per placement
    for placement in (INSIDE, OUTSIDE):
        assert list(network.membrane_live_bits[placement]) == list(lif_values(992 * batch))
    parallel = schedule_for(table, **{"schedule.batch": batch,
                                      "policies.time_handling": "parallel"})
    for live in parallel.membrane_live_bits:
        assert live.shape == (11,) and not np.any(live)
    assert layer.batch == network.batch == batch


def test_time_loops_set_steps_fetch_runs_and_placements(table):
    """Layer by layer (auto): T = 2 timesteps live between layers and of parked sums inside
    the tile; weights fetched once per inference inside the tile, T times outside. Network:
    one timestep live, weights fetched T times, only outside-folds placement. Parallel: T
    stacked into one run: one fetch, only the inside placement, T timesteps live."""
    layer = schedule_for(table)
    assert layer.placements == (INSIDE, OUTSIDE)
    assert list(layer.scope_steps) == [T] * 11
    assert [list(f) for f in layer.fetch_runs] == [[1] * 11, [T] * 11]
    assert [list(f) for f in layer.sums_steps] == [[T] * 11, [1] * 11]
    network = schedule_for(table, **{"schedule.time_loop": "network"})
    assert network.placements == (OUTSIDE,)
    assert list(network.scope_steps) == [1] * 11
    assert [list(f) for f in network.fetch_runs] == [[T] * 11, [T] * 11]
    assert [list(f) for f in network.sums_steps] == [[1] * 11, [1] * 11]
    parallel = schedule_for(table, **{"policies.time_handling": "parallel",
                                      "schedule.time_loop": "network"})
    assert parallel.placements == (INSIDE,)
    assert list(parallel.scope_steps) == [T] * 11
    assert [list(f) for f in parallel.fetch_runs] == [[1] * 11, [1] * 11]
    for placement, fixed in (("inside_tile", (INSIDE,)), ("outside_folds", (OUTSIDE,))):
        assert schedule_for(table, **{"schedule.time_placement": placement}).placements == fixed


def test_operand_fetches_per_fold_loop_order(table):
    """Weights outer: each weight once per run, each input `input_reuse` times. Inputs outer:
    each input once, each weight weight_set_reads / time passes times (6/2, 8/2, 10/2, 4/2,
    2/2 on the GEMMs; a row with 0 time passes divides by 1)."""
    s = schedule_for(table)
    assert list(s.weight_factor[WEIGHTS_OUTER]) == [1] * 11
    assert list(s.weight_factor[INPUTS_OUTER]) == [0, 3, 0, 4, 0, 0, 5, 0, 2, 0, 1]
    assert list(s.input_factor[WEIGHTS_OUTER]) == [1, 2, 1, 1, 1, 1, 3, 1, 1, 1, 1]
    assert list(s.input_factor[INPUTS_OUTER]) == [1] * 11


def test_fusion_hands_sums_to_the_lif_or_parks_them(table):
    fused = schedule_for(table, **{"schedule.lif_fusion": "fused"})
    assert list(np.flatnonzero(fused.fused)) == [1, 3, 6, 8]
    assert not fused.unfused_sums.any()
    unfused = schedule_for(table, **{"schedule.lif_fusion": "unfused"})
    assert not unfused.fused.any()
    assert list(np.flatnonzero(unfused.unfused_sums)) == [2, 4, 7, 9]


def _psums(s, order, placement):
    return list(s.psum_live_bits[order, placement])


def test_partial_sum_live_sets_worked_on_paper(table):
    """Only GEMMs with K split over more than one fold park sums: b0.proj (2 folds; M 4,
    N 3) and b1.fc1 (3 folds; M 2, N 6), 24 bits each, on a 3x4 array.

    Weight stationary, weights outer (an N-fold outer loop): one column fold's sums,
    rows x min(N, 4); inputs outer (K outer): all rows x N. Input stationary, weights outer:
    all rows x N; inputs outer: min(rows, 4) x N. Rows: M x T inside the tile (layer by layer
    or parallel), M outside the folds or under the network time loop. Output stationary: none.
    """
    def rows_of(proj, fc1):
        out = np.zeros(11)
        out[[3, 6]] = proj, fc1
        return list(out * PSUM_BITS)

    ws = schedule_for(table, **{"pe_array.dataflow": "weight_stationary"})
    assert _psums(ws, WEIGHTS_OUTER, INSIDE) == rows_of(8 * 3, 4 * 4)
    assert _psums(ws, INPUTS_OUTER, INSIDE) == rows_of(8 * 3, 4 * 6)
    assert _psums(ws, WEIGHTS_OUTER, OUTSIDE) == rows_of(4 * 3, 2 * 4)
    assert _psums(ws, INPUTS_OUTER, OUTSIDE) == rows_of(4 * 3, 2 * 6)
    is_ = schedule_for(table, **{"pe_array.dataflow": "input_stationary"})
    assert _psums(is_, WEIGHTS_OUTER, INSIDE) == rows_of(8 * 3, 4 * 6)
    assert _psums(is_, INPUTS_OUTER, INSIDE) == rows_of(4 * 3, 4 * 6)
    assert _psums(is_, INPUTS_OUTER, OUTSIDE) == rows_of(4 * 3, 2 * 6)
    network = schedule_for(table, **{"pe_array.dataflow": "weight_stationary",
                                     "schedule.time_loop": "network"})
    assert _psums(network, INPUTS_OUTER, INSIDE) == rows_of(4 * 3, 2 * 6)
    parallel = schedule_for(table, **{"pe_array.dataflow": "weight_stationary",
                                      "policies.time_handling": "parallel",
                                      "schedule.time_loop": "network"})
    assert _psums(parallel, INPUTS_OUTER, INSIDE) == rows_of(8 * 3, 4 * 6)
    os_ = schedule_for(table)
    assert set(os_.psum_live_bits) == {(order, placement) for order in (WEIGHTS_OUTER, INPUTS_OUTER)
                                       for placement in (INSIDE, OUTSIDE)}
    for live in os_.psum_live_bits.values():
        assert live.shape == (11,) and live.dtype == np.float64 and not np.any(live)


@pytest.mark.parametrize("loop_order, placement, expected", [
    ("auto", "auto", [(WEIGHTS_OUTER, INSIDE), (INPUTS_OUTER, INSIDE),
                      (WEIGHTS_OUTER, OUTSIDE), (INPUTS_OUTER, OUTSIDE)]),
    ("weights_outer", "auto", [(WEIGHTS_OUTER, INSIDE), (WEIGHTS_OUTER, OUTSIDE)]),
    ("inputs_outer", "outside_folds", [(INPUTS_OUTER, OUTSIDE)]),
    ("weights_outer", "inside_tile", [(WEIGHTS_OUTER, INSIDE)]),
])
def test_candidate_mappings_in_preference_order(table, loop_order, placement, expected):
    hw = load_hwconfig("sparse_int8_45nm", {"schedule.loop_order": loop_order,
                                            "schedule.time_placement": placement})
    assert candidate_mappings(hw, build_schedule(table, hw, MAPPING, ACT_BITS)) == expected
