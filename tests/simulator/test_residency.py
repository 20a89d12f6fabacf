"""Whole-model weight residency, batches and DRAM traffic in closed form (hand oracles)."""

import numpy as np
import pytest
from tiny_traces import gemm_row, lif_row, make_trace

from sparsespikformer.simulator import load_hwconfig, simulate
from sparsespikformer.simulator.residency import plan_residency

KIB = 8192  # bits
# Activations never spill here, memories cost fixed numbers: only weights reach DRAM.
ROOMY = {"spike_buffer.size_kib": 65536, "global_buffer.size_kib": 65536,
         "membrane_buffer.size_kib": 65536, "weight_memory.format": "dense",
         "weight_memory.read_pj": 10.0, "weight_memory.write_pj": 10.0,
         "spike_buffer.read_pj": 1.0, "spike_buffer.write_pj": 1.0,
         "global_buffer.read_pj": 1.0, "global_buffer.write_pj": 1.0,
         "membrane_buffer.read_pj": 1.0, "membrane_buffer.write_pj": 1.0,
         "weight_memory.leakage_mw": 0.0, "spike_buffer.leakage_mw": 0.0,
         "global_buffer.leakage_mw": 0.0, "membrane_buffer.leakage_mw": 0.0}


def three_layers(T=4, head=False):
    """Dense int8 linears on 16 tokens: A 64x128 (8 KiB), B 128x128 (16 KiB), C 128x256
    (32 KiB); optionally a head 128x128 run once per image (T = 1, 16 KiB)."""
    rng = np.random.default_rng(1)
    rows = []
    for name, k, n in (("A", 64, 128), ("B", 128, 128), ("C", 128, 256)):
        x = (rng.random((1, T, 16, k)) < 0.2).astype(float)
        rows.append(gemm_row(name, x, np.ones((k, n))))
    if head:
        x = (rng.random((1, 1, 1, 128)) < 0.2).astype(float)
        rows.append(gemm_row("head", x, np.ones((128, 128)), kind="head"))
    return make_trace(rows, T=T)


def weight_dram(trace, capacity_kib, **extra):
    hw = load_hwconfig("sparse_int8_45nm", {**ROOMY, "weight_memory.size_kib": capacity_kib,
                                            **extra})
    return simulate(trace, hw)


@pytest.mark.parametrize("capacity_kib, streamed_kib", [
    (4, 52), (8, 48), (20, 36), (24, 32), (40, 16), (56, 0), (64, 0)])
def test_hand_residency_layer_by_layer(capacity_kib, streamed_kib):
    """Layer by layer with the timestep loop inside each tile every weight is fetched once
    per inference (f = 1 for all), so the plan fills in execution order: A 8, B 16, C 32 KiB.
    4 KiB: half of A resident, 4 + 16 + 32 = 52 KiB streamed; 8: A; 48. 20: A + 12 of B;
    4 + 32 = 36. 24: A, B; 32. 40: A, B, 16 of C; 16. 56 and 64: everything; 0.
    DRAM bits = streamed KiB x 8192 (= max(0, 56 KiB - capacity) here)."""
    result = weight_dram(three_layers(), capacity_kib)
    assert result.totals["dram_bits"] == streamed_kib * KIB
    assert result.totals["weight_dram_bits"] == streamed_kib * KIB
    plan = result.residency.set_index("tensor")
    assert plan.stored_bits.to_dict() == {"A": 8 * KIB, "B": 16 * KIB, "C": 32 * KIB}
    assert plan.resident_bits.sum() == min(capacity_kib, 56) * KIB


def test_the_plan_lists_only_tensors_with_weights():
    """A LIF after each linear holds no weights: the plan has rows for A, B and C only,
    each with its own stored bits (8, 16 and 32 KiB)."""
    rng = np.random.default_rng(1)
    rows = []
    for name, k, n in (("A", 64, 128), ("B", 128, 128), ("C", 128, 256)):
        x = (rng.random((1, 4, 16, k)) < 0.2).astype(float)
        rows += [gemm_row(name, x, np.ones((k, n))), lif_row(f"{name}_lif", 4, 16, n)]
    plan = weight_dram(make_trace(rows, T=4), 20).residency
    assert list(plan.tensor) == ["A", "B", "C"]
    assert plan.stored_bits.tolist() == [8 * KIB, 16 * KIB, 32 * KIB]


def test_hand_residency_ranks_tensors_by_fetches_saved_per_bit():
    """Timestep outermost (network): A, B, C are fetched T = 4 times per inference, the head
    (once per image) once. 40 KiB: A 8 + B 16 + 16 of C resident (f = 4 first), the head
    streams: DRAM = 4 x 16 KiB (rest of C) + 1 x 16 KiB (head) = 80 KiB = 655,360 bits.
    Filling in execution order but the head first would have cost 4 x 32 = 128 KiB."""
    result = weight_dram(three_layers(head=True), 40, **{"schedule.time_loop": "network"})
    assert result.totals["dram_bits"] == 80 * KIB
    plan = result.residency.set_index("tensor")
    assert plan.resident_bits.to_dict() == {"A": 8 * KIB, "B": 16 * KIB, "C": 16 * KIB,
                                            "head": 0.0}
    assert plan.fetches_per_inference.to_dict() == {"A": 4, "B": 4, "C": 4, "head": 1}


def test_closed_form_dram_t4_serial_output_stationary_half_memory():
    """One dense int8 linear, 64 tokens x 256 -> 256, T = 4, serial, output stationary,
    weight memory at half the stored size: stored 256 x 256 x 8 = 524,288 bits, 32 KiB =
    262,144 bits resident, 262,144 streamed.
      timestep outermost: fetched once per timestep (column folds outside): 4 x 262,144
                          = 1,048,576 bits   <- catches "weight-overflow DRAM traffic not
                          multiplied by weight-set reads"
      row folds outside (fixed inputs_outer): 4 row folds x 4 timesteps x 262,144 = 4,194,304
      layer by layer, timesteps inside each tile: once, 262,144 bits."""
    rng = np.random.default_rng(2)
    x = (rng.random((1, 4, 64, 256)) < 0.15).astype(float)
    trace = make_trace([gemm_row("fc", x, np.ones((256, 256)))], T=4)
    network = {"schedule.time_loop": "network"}
    assert weight_dram(trace, 32, **network).totals["dram_bits"] == 1_048_576
    fixed = weight_dram(trace, 32, **network, **{"schedule.loop_order": "inputs_outer"})
    assert fixed.totals["dram_bits"] == 4_194_304
    assert weight_dram(trace, 32).totals["dram_bits"] == 262_144


def test_partial_sums_round_trip_k_folds_minus_one_times():
    """Weight stationary, 16 rows, K = 64 > R: 4 K folds, so every output's partial sum is
    parked in the global buffer and read back k_folds - 1 = 3 times. 8 tokens x 64 -> 16,
    T = 1, 24-bit sums: 128 outputs x 3 x 24 = 9,216 bits each way, plus the 128 final sums
    written (3,072 bits: no LIF follows). 256-bit words: 36 reads, 48 writes.
    Catches "partial-sum round trips k_folds-1 -> k_folds" (that would give 48 and 60)."""
    x = np.ones((1, 1, 8, 64))  # spikes: inputs live in the spike buffer, not here
    trace = make_trace([gemm_row("fc", x, np.ones((64, 16)))], T=1)
    hw = load_hwconfig("sparse_int8_45nm", {**ROOMY, "pe_array.dataflow": "weight_stationary",
                                            "weight_memory.size_kib": 1024})
    layers = simulate(trace, hw).layers
    gb = layers[layers.component == "global_buffer"].set_index("action")["count"]
    assert gb["read"] == 36 and gb["write"] == 48


def test_a_batch_shares_each_weight_fetch_and_reports_the_cold_start():
    """Layer by layer, capacity 20 KiB of 56: 36 KiB streamed per weight load. A batch of 4
    shares each load: 36 / 4 = 9 KiB per inference. The cold (first) batch also loads the
    20 resident KiB once: + 20 / 4 KiB per inference of that batch."""
    one = weight_dram(three_layers(), 20)
    four = weight_dram(three_layers(), 20, **{"schedule.batch": 4})
    assert one.totals["dram_bits"] == 36 * KIB
    assert four.totals["dram_bits"] == 9 * KIB
    assert four.totals["cold_dram_bits"] == (9 + 5) * KIB
    assert four.totals["batch"] == 4
    assert four.totals["batch_latency_s"] == pytest.approx(4 * four.totals["latency_s"])
    assert four.totals["cold_energy_pj"] > four.totals["energy_pj"]


def test_a_model_that_fits_moves_only_its_first_load():
    result = weight_dram(three_layers(), 64)
    totals = result.totals
    assert totals["dram_bits"] == 0
    assert totals["cold_dram_bits"] == 56 * KIB == totals["resident_weight_bits"]
    # the load: 56 KiB from DRAM at 8 pJ/bit + 56 KiB / 256-bit words written at 10 pJ,
    # and the logic's 5 mW of leakage while 458,752 bits cross 204.8 Gbit/s (2.24 us):
    # 5e-3 W x 2.24e-6 s = 11.2 nJ = 11,200 pJ
    load_pj = 56 * KIB * 8.0 + 56 * KIB / 256 * 10.0 + 11_200.0
    assert totals["cold_energy_pj"] == pytest.approx(totals["energy_pj"] + load_pj)


# ----------------------------------------------------------------------------- properties


def random_model(rng):
    layers = int(rng.integers(2, 6))
    T = int(rng.integers(1, 5))
    rows = []
    for i in range(layers):
        k, n = (int(v) for v in rng.integers(8, 200, size=2))
        x = (rng.random((1, T, int(rng.integers(4, 40)), k)) < 0.3).astype(float)
        rows.append(gemm_row(f"l{i}", x, (rng.random((k, n)) < rng.uniform(0.2, 1)) * 1.0))
    return make_trace(rows, T=T)


def random_config(rng, capacity_kib):
    return {**ROOMY, "weight_memory.size_kib": capacity_kib,
            "weight_memory.format": str(rng.choice(["dense", "bitmask", "csr", "rle"])),
            "pe_array.dataflow": str(rng.choice(["output_stationary", "weight_stationary",
                                                 "input_stationary"])),
            "policies.time_handling": str(rng.choice(["serial", "parallel"])),
            "schedule.time_loop": str(rng.choice(["layer", "network"])),
            "schedule.batch": int(rng.integers(1, 5))}


def test_property_dram_weight_bits_at_least_the_overflow_over_the_batch():
    rng = np.random.default_rng(10)
    for _ in range(40):
        trace = random_model(rng)
        overrides = random_config(rng, float(rng.uniform(1, 60)))
        result = simulate(trace, load_hwconfig("sparse_int8_45nm", overrides))
        stored = result.totals["stored_weight_bits"]
        overflow = max(0.0, stored - overrides["weight_memory.size_kib"] * KIB)
        assert result.totals["weight_dram_bits"] >= overflow / overrides["schedule.batch"] - 1e-6


def test_property_splitting_a_layer_moves_dram_by_at_most_a_word_per_slice():
    rng = np.random.default_rng(11)
    for _ in range(20):
        T, M, K, N, k = (int(rng.integers(1, 5)), int(rng.integers(4, 40)),
                         int(rng.integers(8, 200)), 64 * int(rng.integers(1, 5)),
                         int(rng.choice([2, 4])))
        x = (rng.random((1, T, M, K)) < 0.3).astype(float)
        w = np.ones((K, N))
        whole = make_trace([gemm_row("fc", x, w)], T=T)
        pieces = make_trace([gemm_row(f"fc{i}", x, w[:, i * N // k:(i + 1) * N // k])
                             for i in range(k)], T=T)
        overrides = random_config(rng, float(rng.uniform(1, 40)))
        hw = load_hwconfig("sparse_int8_45nm", overrides)
        a, b = simulate(whole, hw).totals, simulate(pieces, hw).totals
        assert abs(a["dram_bits"] - b["dram_bits"]) <= k * hw.weight_memory.word_bits


def test_property_a_bigger_weight_memory_never_costs_more():
    """Per-access costs held fixed (numbers, not `auto`): energy, DRAM bits and cycles never
    increase as the capacity grows."""
    rng = np.random.default_rng(12)
    for _ in range(15):
        trace = random_model(rng)
        overrides = random_config(rng, 1.0)
        results = [simulate(trace, load_hwconfig("sparse_int8_45nm", {
            **overrides, "weight_memory.size_kib": size})).totals for size in (1, 4, 16, 64)]
        for key in ("energy_pj", "dram_bits", "cycles"):
            values = [r[key] for r in results]
            assert all(b <= a * (1 + 1e-12) for a, b in zip(values, values[1:])), key


def test_plan_is_the_optimal_fractional_knapsack():
    """Brute force over resident fractions on a grid: no plan saves more DRAM bits."""
    rng = np.random.default_rng(13)
    for _ in range(30):
        stored = rng.integers(1, 10, size=3).astype(float)
        fetches = rng.integers(1, 5, size=3).astype(float)
        capacity = float(rng.integers(0, 30))
        plan = plan_residency(stored, fetches, capacity)
        saved = float((plan.resident_bits * fetches).sum())
        assert plan.resident_bits.sum() <= capacity + 1e-9
        grid = np.stack(np.meshgrid(*[np.arange(s + 1) for s in stored]), -1).reshape(-1, 3)
        feasible = grid[grid.sum(1) <= capacity]
        assert saved >= (feasible * fetches).sum(1).max() - 1e-9
