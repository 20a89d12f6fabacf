"""The schedule: the fold rule by brute force, fused pipelines, replay, live sets, membranes."""

import numpy as np
import pytest
from spikformer_shapes import spikformer_shapes
from tiny_traces import attn_row, gemm_row, make_trace, os_reference_cycles

from sparsespikformer.simulator import load_hwconfig, simulate, synthetic_trace
from sparsespikformer.simulator.layer_table import build_layer_table
from sparsespikformer.simulator.pe_array import pe_work
from sparsespikformer.simulator.timing import layer_cycles


def brute_force_cycles(x, rows, cols, n):
    """The fold rule on explicit per-sample tensors (tiny_traces.os_reference_cycles), output
    stationary, zero inputs skipped, summed over heads, the mean over samples.
    x: (S, T, G, M, K)."""
    S, _, G, _, K = x.shape
    outputs = np.zeros((K, n))  # only the output count matters to the rule
    return sum(os_reference_cycles(x[s, :, g], outputs, rows, cols)
               for s in range(S) for g in range(G)) / S


@pytest.mark.parametrize("seed", range(8))
def test_engine_agrees_with_the_brute_force_fold_rule_on_random_layers(seed):
    """Random small layers: spikes or replayed integers (values up to 3: a value v costs v
    slots, never capped at the dense length), several samples, several heads."""
    rng = np.random.default_rng(seed)
    S, T, G = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    M, K, N = (int(v) for v in rng.integers(3, 40, size=3))
    rows, cols = int(rng.integers(2, 9)), int(rng.integers(2, 9))
    high = int(rng.choice([2, 4]))  # spikes (0/1) or integers 0..3
    density = rng.uniform(0.2, 1.0)
    x = rng.integers(0, high, size=(S, T, G, M, K)).astype(float) * (rng.random((S, T, G, M, K))
                                                                      < density)
    hw = load_hwconfig("dense_systolic", {
        "pe_array.rows": rows, "pe_array.cols": cols, "pe_array.dataflow": "output_stationary",
        "policies.input_sparsity": "skip", "policies.weight_sparsity": "none",
        "policies.integer_inputs": "replay"})
    if G == 1:
        row = gemm_row("fc", x[:, :, 0], np.ones((K, N)))
    else:
        row = attn_row("qk", x, np.ones((S, T, G, K, N)))
    cycles = simulate(make_trace([row], T=T), hw).totals["cycles"]
    assert cycles == pytest.approx(brute_force_cycles(x, rows, cols, N), abs=1.0)


def test_a_busy_replayed_row_is_never_capped_at_the_dense_length():
    """16 tokens x 32 features -> 16, one token holds the value 2 in every feature, the rest
    are 0: the mean input is far below one event per element, but the busiest row streams
    2 x 32 = 64 slots, not the dense 32: 30 + 64 - 1 = 93 cycles (one 16x16 fold)."""
    x = np.zeros((1, 1, 1, 16, 32))
    x[0, 0, 0, 5] = 2.0
    hw = load_hwconfig("dense_systolic", {
        "pe_array.rows": 16, "pe_array.cols": 16, "pe_array.dataflow": "output_stationary",
        "policies.input_sparsity": "skip", "policies.weight_sparsity": "none",
        "policies.integer_inputs": "replay"})
    trace = make_trace([gemm_row("fc", x[:, :, 0], np.ones((32, 16)))], T=1)
    assert simulate(trace, hw).totals["cycles"] == 93 == brute_force_cycles(x, 16, 16, 16)


def test_fused_latency_lies_between_the_busiest_resource_and_the_sum():
    rng = np.random.default_rng(5)
    for _ in range(200):
        compute = rng.uniform(0, 100, size=4)
        levels = rng.uniform(0, 100, size=(5, 4))
        fused = np.array([True, False, True, False])
        fill = np.array([0.0, 3.0, 0.0, 5.0])
        cycles = layer_cycles(compute, levels, np.zeros(4), fused, fill)
        for g in (0, 2):
            resources = np.r_[compute[g], compute[g + 1], levels[:, g] + levels[:, g + 1]]
            pair = cycles[g] + cycles[g + 1]
            assert resources.max() <= pair <= np.ceil(resources.sum())


@pytest.mark.parametrize("compute, levels, stall, fill, expected", [
    # GEMM alone ceil(max(10, 6) + 3) = 13; pair: busiest max(10, 4, 6 + 2) = 10, + fill 1,
    # under the sum 10 + 4 + 8 = 22, + both stalls 3 + 2: 16; the LIF row gets 16 - 13 = 3
    ([10.0, 4.0], [[6.0, 2.0]], [3.0, 2.0], [0.0, 1.0], [13.0, 3.0]),
    # the sum binds: busiest 2 + fill 10 = 12 > 2 + 1 + (1 + 1) = 5; GEMM alone 2, LIF 3
    ([2.0, 1.0], [[1.0, 1.0]], [0.0, 0.0], [0.0, 10.0], [2.0, 3.0]),
    # a LIF hidden entirely behind its GEMM adds nothing: pair 10 = GEMM alone, LIF 0
    ([10.0, 0.0], [[5.0, 0.0]], [0.0, 0.0], [0.0, 0.0], [10.0, 0.0]),
])
def test_fused_pair_cycles_worked_on_paper(compute, levels, stall, fill, expected):
    cycles = layer_cycles(np.array(compute), np.array(levels), np.array(stall),
                          np.array([True, False]), np.array(fill))
    assert cycles.tolist() == expected


@pytest.mark.parametrize("mode", ["none", "gate", "skip"])
def test_a_replayed_value_costs_its_slots_under_every_sparsity_policy(mode):
    """Integer inputs 0, 2 or 3 on a dense 4 -> 5 linear: a value v is v accumulate slots
    under every policy; a zero takes one slot unless skipped. Per token [0, 2, 3, 0]:
    skip 5 events x 5 outputs = 25 slots; none/gate (2 zeros + 5) x 5 = 35."""
    x = np.tile(np.array([0.0, 2.0, 3.0, 0.0]), (1, 1, 1, 1))  # (S, T, M, K) = 1, 1, 1, 4
    trace = make_trace([gemm_row("fc", x, np.ones((4, 5)))], T=1)
    hw = load_hwconfig("sparse_int8_45nm", {"policies.input_sparsity": mode,
                                            "policies.weight_sparsity": "none"})
    work = pe_work(build_layer_table(trace), hw)
    assert work.slots[0] == (25 if mode == "skip" else 35)
    assert work.accumulates[0] == (35 if mode == "none" else 25)


def test_rate_inputs_cost_their_spike_counts_and_one_shift_per_output():
    """A head on time-averaged spikes (T = 4): rates 0.25 and 0.75 are 1 and 3 spike events,
    so 128 features x 10 classes with rates [0.25, 0.75, 0, ...] cost (1 + 3) x 10 = 40
    accumulates and 10 shifts (divide by T); the papers' convention (`fraction`) charges
    (0.25 + 0.75) x 10 = 10 accumulates."""
    x = np.zeros((1, 1, 1, 128))
    x[0, 0, 0, :2] = [0.25, 0.75]
    row = gemm_row("head", x, np.ones((128, 10)), kind="head")
    trace = make_trace([row], T=4)
    table = build_layer_table(trace)
    counts = pe_work(table, load_hwconfig("sparse_int8_45nm"))
    assert (counts.accumulates[0], counts.shifts[0]) == (40, 10)
    papers = pe_work(table, load_hwconfig("sparse_int8_45nm",
                                          {"policies.rate_inputs": "fraction"}))
    assert (papers.accumulates[0], papers.shifts[0]) == (10, 0)


def test_residual_stream_is_written_by_residual_adds_and_live_across_the_block():
    """Spikformer blocks: the attention projection's and fc2's LIFs (and the position
    embedding's) add their spikes into the residual stream, one add per output spike; the
    stream occupies the global buffer across its block, so a small buffer spills there."""
    trace = synthetic_trace(spikformer_shapes(), firing_rate=0.2)
    hw = load_hwconfig("sparse_int8_45nm")
    layers = simulate(trace, hw).layers
    adds = layers[layers.action == "residual_add"]
    names = set(adds.layer)
    assert names == {"patch_embed.rpe_lif", *(f"block.{b}.{n}" for b in (0, 1)
                                              for n in ("attn.proj_lif", "mlp.fc2_lif"))}
    lif = trace.layers.set_index("layer")
    for name, count in adds.set_index("layer")["count"].items():
        row = lif.loc[name]
        assert count == pytest.approx(row.out_numel * row.timesteps * row.out_nonzero_fraction)
    # (Q·Kᵀ)·V reads the attention map from the global buffer; with a buffer that holds the
    # map of all T timesteps but not the map plus the block's residual stream, it spills
    rows = trace.layers.set_index("layer")
    steps = rows.loc["block.0.attn.av_matmul", "timesteps"]
    map_bits = rows.loc["block.0.attn.av_matmul", "in_numel"] * steps  # 1-bit integers here
    stream_bits = rows.loc["block.0.attn.q_linear", "in_numel"] * steps
    size_kib = (map_bits + stream_bits / 2) / 8192
    roomy = simulate(trace, load_hwconfig("sparse_int8_45nm", {
        "global_buffer.size_kib": 2 * (map_bits + stream_bits) / 8192}))
    tight = simulate(trace, load_hwconfig("sparse_int8_45nm", {
        "global_buffer.size_kib": size_kib}))
    av = "block.0.attn.av_matmul"
    assert roomy.per_layer.set_index("layer").loc[av, "dram_bits"] == 0
    assert tight.per_layer.set_index("layer").loc[av, "dram_bits"] > 0


def test_network_time_loop_keeps_all_membranes_layer_by_layer_only_a_tile():
    trace = synthetic_trace(spikformer_shapes(), firing_rate=0.2)
    lif = trace.layers[trace.layers.kind == "lif"]
    total_bits = float(lif.out_numel.sum()) * 16
    capacity = 2 * 8192.0  # 2 KiB
    hw = {"membrane_buffer.size_kib": 2, "spike_buffer.size_kib": 65536,
          "global_buffer.size_kib": 65536, "weight_memory.size_kib": 65536}
    network = simulate(trace, load_hwconfig("sparse_int8_45nm", {
        **hw, "schedule.time_loop": "network"})).layers
    dram = network[(network.component == "dram") & network.kind.eq("lif")]["count"].sum()
    moved = float((lif.out_numel * (lif.timesteps - 1)).sum()) * 16 * 2
    assert dram == pytest.approx(moved * (1 - capacity / total_bits))
    layer = simulate(trace, load_hwconfig("sparse_int8_45nm", {
        **hw, "schedule.time_placement": "inside_tile"})).layers
    assert layer[(layer.component == "dram")]["count"].sum() == 0
