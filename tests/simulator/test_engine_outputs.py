"""The engine's reported columns and totals against independent oracles: numpy's percentiles,
per-sample fold rules by brute force, schedule names, residency fetch counts and the cold
start worked on paper."""

import numpy as np
import pytest
from tiny_traces import gemm_row, lif_row, make_trace, os_reference_cycles

from sparsespikformer.simulator import load_hwconfig, simulate
from sparsespikformer.simulator.engine import _percentiles

EXACT_OS = {"pe_array.rows": 4, "pe_array.cols": 4, "pe_array.dataflow": "output_stationary",
            "policies.input_sparsity": "skip", "policies.integer_inputs": "replay"}


@pytest.mark.parametrize("size", [1, 2, 3, 7, 20])
def test_latency_percentiles_are_numpys_linear_percentiles(size):
    values = np.random.default_rng(size).uniform(0, 100, size=size)
    percents = (0, 37, 50, 95, 100)
    assert _percentiles(values, percents) == pytest.approx(np.percentile(values, percents))


def uneven_samples(seed):
    """Five samples of integer inputs (T=2, M=6, K=5) of very different volumes, and sparse
    weights whose rows differ in nonzeros (so per-sample ops and events differ in ratio)."""
    rng = np.random.default_rng(seed)
    scale = np.array([0.1, 0.3, 0.5, 0.8, 1.0])[:, None, None, None]
    x = rng.integers(0, 3, size=(5, 2, 6, 5)) * (rng.random((5, 2, 6, 5)) < scale)
    w = (rng.random((5, 7)) < np.linspace(0.2, 1.0, 5)[:, None]).astype(float)
    return x.astype(float), w


@pytest.mark.parametrize("time_handling", ["serial", "parallel"])
@pytest.mark.parametrize("seed", [0, 1])
def test_mean_and_percentile_latencies_follow_each_samples_fold_rule(seed, time_handling):
    """Weights streamed dense (no weight skipping): each sample's cycles depend on its own
    events only. Mean, p50 and p95 of the brute-force per-sample cycles (the fold rule,
    serial or over time-stacked rows; numpy percentiles)."""
    x, w = uneven_samples(seed)
    hw = load_hwconfig("dense_systolic", {**EXACT_OS, "policies.weight_sparsity": "none",
                                          "policies.time_handling": time_handling})
    totals = simulate(make_trace([gemm_row("fc", x, w)], T=2), hw).totals
    per_sample = [os_reference_cycles(s, w, 4, 4, stack_time=time_handling == "parallel")
                  for s in x]
    clock_hz = hw.clock_mhz * 1e6
    assert totals["cycles"] == pytest.approx(np.mean(per_sample), abs=1.0)
    p50, p95 = np.percentile(per_sample, (50, 95)) / clock_hz
    assert totals["latency_p50_s"] == pytest.approx(p50, abs=1.0 / clock_hz)
    assert totals["latency_p95_s"] == pytest.approx(p95, abs=1.0 / clock_hz)


def two_layer_trace(m=20, T=3, pruned=False):
    """A linear (M x 4 -> 6, all weights 1, or all 0 if `pruned`) feeding a LIF."""
    x = np.ones((1, T, m, 4))
    w = np.zeros((4, 6)) if pruned else np.ones((4, 6))
    return make_trace([gemm_row("fc", x, w), lif_row("fc_lif", T, m, 6)], T=T)


@pytest.mark.parametrize("overrides, time_loop", [
    ({"policies.time_handling": "parallel"}, "stacked"),
    ({"schedule.time_loop": "network"}, "network"),
    ({"schedule.time_placement": "inside_tile"}, "inside_tile"),
    ({"schedule.time_placement": "outside_folds"}, "outside_folds"),
])
@pytest.mark.parametrize("loop_order", ["weights_outer", "inputs_outer"])
def test_per_layer_names_the_schedule_each_gemm_ran(overrides, time_loop, loop_order):
    hw = load_hwconfig("sparse_int8_45nm", {**overrides, "schedule.loop_order": loop_order})
    layers = simulate(two_layer_trace(), hw).per_layer.set_index("layer")
    assert list(layers.time_loop) == [time_loop, ""]  # the LIF row runs no GEMM
    assert list(layers.loop_order) == [loop_order, ""]


@pytest.mark.parametrize("loop_order, placement, batch, fetches", [
    # OS on 16 rows, M = 20: inputs outer reads the weights once per row fold, ceil(20/16) = 2
    # times a run; inside the tile one run per inference, outside the folds T = 3 runs; one
    # fetch serves the batch.
    ("weights_outer", "inside_tile", 1, 1.0),
    ("inputs_outer", "inside_tile", 1, 2.0),
    ("inputs_outer", "inside_tile", 4, 0.5),
    ("weights_outer", "outside_folds", 4, 0.75),
    ("inputs_outer", "outside_folds", 4, 1.5),
])
def test_residency_ranks_by_fetches_of_the_configured_schedule(loop_order, placement, batch,
                                                              fetches):
    hw = load_hwconfig("sparse_int8_45nm", {"schedule.loop_order": loop_order,
                                            "schedule.time_placement": placement,
                                            "schedule.batch": batch})
    residency = simulate(two_layer_trace(), hw).residency
    assert list(residency.tensor) == ["fc"]
    assert list(residency.fetches_per_inference) == [fetches]


def test_a_fully_pruned_tensor_stores_its_bitmask_but_is_never_fetched_for_values():
    """24 weights, all 0: the bitmask (24 bits) is stored; no value is ever fetched."""
    hw = load_hwconfig("sparse_int8_45nm", {"schedule.loop_order": "inputs_outer"})
    residency = simulate(two_layer_trace(pruned=True), hw).residency
    assert list(residency.stored_bits) == [24.0]
    assert list(residency.fetches_per_inference) == [0.0]


@pytest.mark.parametrize("batch", [1, 4])
def test_per_layer_weight_columns_and_the_cold_start_worked_on_paper(batch):
    """The linear's 24 weights in a bitmask: 24 x 8 value bits + 24 mask bits = 216 bits, all
    resident (256 KiB). Loading them before the first batch: 216 bits at 8 pJ/bit from DRAM,
    216/256 weight-memory words written, at 204.8e3 / 500 = 409.6 bits per cycle of a 500 MHz
    clock while the chip leaks; that cost is shared by the batch's inferences."""
    hw = load_hwconfig("sparse_int8_45nm", {"schedule.batch": batch})
    result = simulate(two_layer_trace(), hw)
    layers, totals = result.per_layer.set_index("layer"), result.totals
    assert list(layers.resident_weight_bits) == [216.0, 0.0]
    assert list(layers.weight_dram_bits) == [0.0, 0.0]
    assert totals["resident_weight_bits"] == totals["stored_weight_bits"] == 216.0
    load_s = 216 / 409.6 / 500e6
    load_pj = 216 * 8.0 + 216 / 256 * hw.weight_memory.write_pj \
        + hw.total_leakage_mw * load_s * 1e9
    assert totals["cold_latency_s"] == pytest.approx(totals["latency_s"] + load_s / batch)
    assert totals["cold_energy_pj"] == pytest.approx(totals["energy_pj"] + load_pj / batch)
    assert totals["cold_dram_bits"] == pytest.approx(totals["dram_bits"] + 216 / batch)
    assert totals["batch_latency_s"] == pytest.approx(totals["latency_s"] * batch)


def test_an_overflow_after_a_missing_area_is_still_named():
    """paper_fp32_45nm gives no areas (area NaN, allowed). With an absurd DRAM price the
    resident weights' one-off load overflows although no inference touches DRAM."""
    hw = load_hwconfig("paper_fp32_45nm", {"dram.energy_pj_per_bit": 1e308})
    with pytest.raises(ValueError, match=r"values overflow: cold_energy_pj .*absurdly large"):
        simulate(two_layer_trace(m=2, T=1), hw)
