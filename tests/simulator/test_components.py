"""Component models against brute-force or closed-form oracles written here."""

import math

import numpy as np
import pytest
from spikformer_shapes import spikformer_shapes

from sparsespikformer.simulator import Trace, gemm_trace, load_hwconfig, synthetic_trace
from sparsespikformer.simulator.layer_table import build_layer_table, group_max_ratio
from sparsespikformer.simulator.mapping import (
    INPUT_STATIONARY,
    OUTPUT_STATIONARY,
    WEIGHT_STATIONARY,
    map_gemms,
)
from sparsespikformer.simulator.memory import (
    activation_bits,
    rle_fill_entries,
    spill_fraction,
    weight_storage_bits,
)
from sparsespikformer.simulator.neuron_unit import neuron_work
from sparsespikformer.simulator.pe_array import pe_work
from sparsespikformer.simulator.selector_unit import selector_work


def brute_force_rle_entries(weights_row_major: np.ndarray, run_bits: int) -> int:
    """Encode with (run of zeros, value) pairs; a run longer than the field needs fills."""
    max_run = 2 ** run_bits - 1
    entries, run = 0, 0
    for value in weights_row_major:
        if value == 0:
            if run == max_run:  # emit a fill entry: max run + an explicit zero value
                entries += 1
                run = 0
            else:
                run += 1
        else:
            entries += 1
            run = 0
    return entries


def test_weight_formats_match_hand_counts():
    weights = np.array([[0, 3, 0, 0], [1, 0, 0, 2], [0, 0, 0, 0]])  # 3 output channels
    numel, nnz = np.array([12.0]), np.array([3.0])
    channels = np.array([3.0])
    values, meta = weight_storage_bits(numel, nnz, channels, fmt="dense", value_bits=8,
                                       index_bits=4)
    assert (values[0], meta[0]) == (12 * 8, 0)
    values, meta = weight_storage_bits(numel, nnz, channels, fmt="bitmask", value_bits=8,
                                       index_bits=4)
    assert (values[0], meta[0]) == (3 * 8, 12)
    values, meta = weight_storage_bits(numel, nnz, channels, fmt="csr", value_bits=8,
                                       index_bits=4)
    column_indices, row_pointers = np.count_nonzero(weights), weights.shape[0] + 1
    assert (values[0], meta[0]) == (3 * 8, (column_indices + row_pointers) * 4)


@pytest.mark.parametrize("density, run_bits", [(0.5, 2), (0.1, 3), (0.02, 4), (0.3, 1)])
def test_rle_fill_entries_match_brute_force_encoding(density, run_bits):
    rng = np.random.default_rng(0)
    numel, trials = 2048, 60
    counted = []
    for _ in range(trials):
        weights = rng.random(numel) < density
        counted.append(brute_force_rle_entries(weights, run_bits) - int(weights.sum()))
    nnz = density * numel
    expected = rle_fill_entries(np.array([float(numel)]), np.array([nnz]), run_bits)[0]
    assert np.mean(counted) == pytest.approx(expected, rel=0.05, abs=0.5)


def test_rle_of_an_all_zero_tensor_is_fills_only():
    assert rle_fill_entries(np.array([1024.0]), np.array([0.0]), 4)[0] == 1024 // 16


def test_group_max_ratio_matches_a_loop():
    rng = np.random.default_rng(1)
    values = rng.poisson(3.0, size=(3, 37)).astype(float)
    for group in (1, 4, 16, 37, 64):
        fold_maxima = []
        for row in values:
            for start in range(0, row.size, group):
                fold_maxima.append(row[start:start + group].max())
        expected = np.mean(fold_maxima) / values.mean()
        assert group_max_ratio(values, group) == pytest.approx(expected)
    assert group_max_ratio(np.ones((2, 10)), 4) == 1.0
    assert group_max_ratio(np.zeros((2, 10)), 4) == 1.0


def test_mapping_folds_and_reuse_follow_scale_sim():
    m, n, k = (np.array([100.0]), np.array([50.0]), np.array([30.0]))
    one, no = np.array([1.0]), np.array([False])
    ws = map_gemms(m, n, k, one, one, no, rows=8, cols=16, dataflow=WEIGHT_STATIONARY,
                   parallel_time=False)
    assert ws.folds[0] == math.ceil(30 / 8) * math.ceil(50 / 16)
    assert (ws.stream[0], ws.fill_drain[0]) == (100, 2 * 8 + 16 - 2)
    assert (ws.weight_set_reads[0], ws.input_reuse[0], ws.k_folds[0]) == (1, 4, 4)
    os_ = map_gemms(m, n, k, one, one, no, rows=8, cols=16, dataflow=OUTPUT_STATIONARY,
                    parallel_time=False)
    assert os_.folds[0] == math.ceil(100 / 8) * math.ceil(50 / 16)
    assert (os_.stream[0], os_.fill_drain[0]) == (30, 8 + 16 - 2)
    assert (os_.weight_set_reads[0], os_.k_folds[0]) == (math.ceil(100 / 8), 1)
    is_ = map_gemms(m, n, k, one, one, no, rows=8, cols=16, dataflow=INPUT_STATIONARY,
                    parallel_time=False)
    assert is_.folds[0] == math.ceil(30 / 8) * math.ceil(100 / 16)
    assert (is_.stream[0], is_.input_reuse[0]) == (50, 1)


def test_time_parallel_stacks_timesteps_except_for_attention():
    m, n, k = np.array([10.0, 10.0]), np.array([20.0, 20.0]), np.array([30.0, 30.0])
    groups, steps = np.array([1.0, 1.0]), np.array([4.0, 4.0])
    attention = np.array([False, True])
    mapping = map_gemms(m, n, k, groups, steps, attention, rows=4, cols=4,
                        dataflow=WEIGHT_STATIONARY, parallel_time=True)
    assert list(mapping.m_eff) == [40.0, 10.0]
    assert list(mapping.passes) == [1.0, 4.0]
    assert list(mapping.weight_set_reads) == [1.0, 4.0]


def tiny_trace(**kwargs):
    return synthetic_trace(spikformer_shapes(selector=True), **kwargs)


def test_pe_counts_are_the_trace_counts_each_policy_selects():
    trace = tiny_trace(firing_rate=0.2, weight_density=0.5)
    table = build_layer_table(trace)
    layers = trace.layers
    spike = (layers.in_value_kind == "spike").to_numpy()
    integer = (layers.in_value_kind == "integer").to_numpy()
    real = (layers.in_value_kind == "real").to_numpy()
    dense = layers.dense_macs.to_numpy()

    def work(**policies):
        overrides = {f"policies.{key}": value for key, value in policies.items()}
        return pe_work(table, load_hwconfig("sparse_int8_45nm", overrides))

    both = work(input_sparsity="skip", weight_sparsity="skip")
    assert np.allclose(both.accumulates[spike], layers.effective_ops[spike])
    # real inputs: zero pixels are not skipped (real_input_sparsity: none), zero weights are
    density = layers.operand_density.to_numpy()
    assert np.allclose(both.multiplies[real], dense[real] * density[real])
    assert np.allclose(both.gated, 0.0)

    neither = work(input_sparsity="none", weight_sparsity="none")
    assert np.allclose(neither.accumulates[spike], dense[spike])
    fr = layers.in_nonzero_fraction.to_numpy()
    replayed = (1 - fr) * dense + layers.sops.to_numpy()  # zeros: one slot; v: v events
    assert np.allclose(neither.accumulates[integer], replayed[integer])

    gated = work(input_sparsity="gate", weight_sparsity="gate")
    assert np.allclose(gated.accumulates, both.accumulates)
    assert np.allclose(gated.slots, neither.slots)
    assert np.allclose(gated.gated[spike], dense[spike] - layers.effective_ops[spike])

    weights_only = work(input_sparsity="none", weight_sparsity="skip")
    # integer inputs replayed, zero inputs keep a slot, zero weights skipped:
    # (1 - fr) x D x d empty slots + the effective events
    kept_zero_slots = (1 - fr) * dense * density + layers.effective_ops.to_numpy()
    assert np.allclose(weights_only.accumulates[integer], kept_zero_slots[integer])
    assert np.allclose(weights_only.accumulates[spike], (dense * density)[spike])

    multiply = work(input_sparsity="skip", weight_sparsity="skip", integer_inputs="multiply")
    assert np.allclose(multiply.multiplies[integer], layers.nonzero_pairs[integer])
    assert np.allclose(multiply.accumulates[integer], 0.0)


def test_real_input_sparsity_policy_on_the_multipliers():
    """An 8 x 8 x 8 GEMM on real inputs of which a quarter are non-zero (512 MACs): `none`
    does all 512, `gate` pays for the 128 with a non-zero input but keeps 512 slots (384
    gated), `skip` issues only the 128."""
    base = gemm_trace(8, 8, 8)
    layers = base.layers.assign(in_nonzero_fraction=0.25, sops=128.0, effective_ops=128.0,
                                nonzero_pairs=128.0)
    table = build_layer_table(Trace(manifest=base.manifest, layers=layers, arrays=base.arrays))
    expected = {"none": (512, 512, 0), "gate": (128, 512, 384), "skip": (128, 128, 0)}
    for mode, (multiplies, slots, gated) in expected.items():
        hw = load_hwconfig("sparse_int8_45nm", {"policies.real_input_sparsity": mode,
                                                "policies.weight_sparsity": "none"})
        work = pe_work(table, hw)
        assert (work.multiplies[0], work.slots[0], work.gated[0]) == (multiplies, slots, gated)
        assert bool(work.input_skipped[0]) == (mode == "skip")


def test_without_multipliers_real_macs_run_bit_serially():
    trace = gemm_trace(8, 8, 8)
    hw = load_hwconfig("loihi_like")
    work = pe_work(build_layer_table(trace), hw)
    assert work.multiplies[0] == 0
    assert work.accumulates[0] == 8 * 8 * 8 * hw.pe_array.real_value_bits
    assert work.useful_ops[0] == 8 * 8 * 8


def test_lif_updates_and_membrane_traffic():
    trace = tiny_trace(timesteps=4)
    table = build_layer_table(trace)
    lif = (trace.layers.kind == "lif").to_numpy()
    out_numel = trace.layers.out_numel.to_numpy()
    serial = neuron_work(table, load_hwconfig("sparse_int8_45nm"))
    assert np.array_equal(serial.updates[lif], out_numel[lif] * 4)
    assert np.array_equal(serial.updates[~lif], np.zeros((~lif).sum()))
    bits = load_hwconfig("sparse_int8_45nm").neuron_unit.membrane_bits
    assert np.array_equal(serial.membrane_read_bits[lif], out_numel[lif] * 3 * bits)
    parallel = neuron_work(table, load_hwconfig("sparse_int8_45nm",
                                                {"policies.time_handling": "parallel"}))
    assert parallel.membrane_read_bits.sum() == 0
    assert np.array_equal(parallel.updates, serial.updates)


def test_lif_cycles_are_updates_over_the_units_rate():
    """128 neurons x 4 timesteps = 512 updates: 16 units at 1 update a cycle take 32 cycles,
    at 3 a cycle ceil(512 / 48) = 11; 5 units at 2 a cycle ceil(512 / 10) = 52."""
    lif = {"layer": "lif", "kind": "lif", "block": 0, "tokens_in": 16, "tokens_out": 16,
           "in_numel": 128, "out_numel": 128, "gemm_m": 0, "gemm_n": 0, "gemm_k": 0,
           "gemm_groups": 0, "weight_numel": 0, "in_value_kind": "real"}
    table = build_layer_table(synthetic_trace([lif], timesteps=4))
    for count, rate, cycles in ((16, 1, 32), (16, 3, 11), (5, 2, 52)):
        hw = load_hwconfig("sparse_int8_45nm", {"neuron_unit.count": count,
                                                "neuron_unit.updates_per_cycle": rate})
        work = neuron_work(table, hw)
        assert (work.updates[0], work.cycles[0]) == (512, cycles)


def test_top_k_runs_once_per_selector_on_its_last_row():
    trace = tiny_trace()
    table = build_layer_table(trace)
    work = selector_work(table, load_hwconfig("sparse_int8_45nm"))
    names = list(trace.layers.layer)
    tokens = trace.layers.tokens_in.to_numpy()
    (rows,) = np.nonzero(work.compares)
    assert [names[i] for i in rows] == ["token_selectors.1.mlp.2"]
    assert work.compares[rows[0]] == tokens[rows[0]] * math.ceil(math.log2(tokens[rows[0]]))


def test_activation_bits_per_value_kind():
    trace = tiny_trace()
    table = build_layer_table(trace)
    bits = activation_bits(table, 8)
    kinds = trace.layers.in_value_kind.to_numpy()
    assert set(bits[kinds == "spike"]) == {1.0}
    assert set(bits[kinds == "real"]) == {8.0}
    # synthetic integer inputs top out at 1: one bit; a max of 4 needs 3
    assert set(bits[kinds == "integer"]) == {1.0}
    object.__setattr__(table, "in_value_max", np.full(len(table), 4.0))
    assert set(activation_bits(table, 8)[kinds == "integer"]) == {3.0}


def test_spill_fraction():
    buffer = load_hwconfig("sparse_int8_45nm").spike_buffer  # 64 KiB
    capacity = 64 * 1024 * 8
    live = np.array([0.0, capacity / 2, capacity, 4.0 * capacity])
    assert list(spill_fraction(live, buffer)) == [0.0, 0.0, 0.0, 0.75]


def test_parameter_free_scorer_adds_its_input_events():
    shapes = spikformer_shapes(depth=2)
    tokens, dim = 16, 32
    scorer = {"layer": "token_selectors.1", "kind": "selector", "block": 1,
              "tokens_in": tokens, "tokens_out": 11, "in_numel": tokens * dim,
              "out_numel": 11 * dim, "gemm_m": 0, "gemm_n": 0, "gemm_k": 0, "gemm_groups": 0,
              "weight_numel": 0, "in_value_kind": "spike"}
    at = next(i for i, row in enumerate(shapes) if row["layer"] == "block.1.attn.q_linear")
    trace = synthetic_trace(shapes[:at] + [scorer] + shapes[at:], timesteps=4)
    table = build_layer_table(trace)
    row = list(trace.layers.layer).index("token_selectors.1")
    skip = selector_work(table, load_hwconfig("sparse_int8_45nm"))
    events = trace.arrays["token_selectors.1"]["sample_in_events"].mean()
    assert skip.adds[row] == pytest.approx(events)
    assert skip.compares[row] == tokens * math.ceil(math.log2(tokens))
    dense = selector_work(table, load_hwconfig("sparse_int8_45nm",
                                               {"policies.input_sparsity": "none"}))
    assert dense.adds[row] == tokens * dim * 4
    assert np.count_nonzero(dense.adds) == 1
    adders = load_hwconfig("sparse_int8_45nm").selector_unit.adders
    assert skip.add_cycles[row] == math.ceil(events / adders)
    assert dense.add_cycles[row] == tokens * dim * 4 / adders
    # gate: the energy of the events only, the cycles of every element
    gate = selector_work(table, load_hwconfig("sparse_int8_45nm",
                                              {"policies.input_sparsity": "gate"}))
    assert gate.adds[row] == pytest.approx(events)
    assert gate.add_cycles[row] == dense.add_cycles[row]
