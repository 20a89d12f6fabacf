"""Worked values of the accelerator-modelling review (shared/field-cases/review-*), each a test.

Traces are built from explicit tensors (tiny_traces.py); expected values are the READMEs'
hand computations or the simulator's own fold rule evaluated by brute force on the tensors.
"""

import numpy as np
import pytest
from tiny_traces import (
    attn_row,
    conv_row,
    gemm_row,
    lif_row,
    make_trace,
    os_reference_cycles,
)

from sparsespikformer.simulator import load_hwconfig, simulate

# Stall-free 16x16 output-stationary array that skips zero inputs (weights dense here).
OS16 = {"pe_array.rows": 16, "pe_array.cols": 16, "pe_array.dataflow": "output_stationary",
        "policies.input_sparsity": "skip", "policies.weight_sparsity": "none"}


def os16(**extra):
    return load_hwconfig("dense_systolic", {**OS16, **extra})


def conv_cycles(x, c_out=16, row_events=True):
    w = np.ones((c_out, x.shape[2], 3, 3))
    row, arrays, cols = conv_row("conv", x, w, row_events=row_events)
    cycles = simulate(make_trace([(row, arrays)], T=x.shape[1]), os16()).totals["cycles"]
    return cycles, os_reference_cycles(cols[0], w.reshape(c_out, -1).T, 16, 16)


# ----------------------------------------------------------------------------- review-01


@pytest.mark.parametrize("row_events", [True, False])
def test_review01_conv_rows_hold_receptive_fields(row_events):
    """4x4 map, 16 channels, 3x3 'same' conv to 16 channels on a 16x16 OS array (one fold,
    fill/drain R + C - 2 = 30, SCALE-Sim's -1 per run):
    (a) spikes only at pixel (1,1): nine outputs see its 16 events, so the busiest row streams
        16: 30 + 16 - 1 = 45 cycles;
    (b) every input spikes: interior outputs see 9 x 16 = 144 events, corners 64: the busiest
        row 144: 30 + 144 - 1 = 173 cycles.
    Without per-sample row events (schema 2) the input-position events are summed over each
    receptive field, exact for one sample."""
    x = np.zeros((1, 1, 16, 4, 4))
    x[0, 0, :, 1, 1] = 1
    assert conv_cycles(x, row_events=row_events) == (45, 45)
    assert conv_cycles(np.ones((1, 1, 16, 4, 4)), row_events=row_events) == (173, 173)


@pytest.mark.parametrize("name, c_in, side, c_out, expected", [
    ("proj_conv1", 48, 32, 96, 161_354), ("proj_conv2", 96, 32, 192, 530_216),
    ("proj_conv3", 192, 16, 384, 458_828), ("rpe_conv", 384, 8, 384, 222_116)])
def test_review01_sps_conv_shapes_match_the_brute_force(name, c_in, side, c_out, expected):
    """README (c): i.i.d. 15 % spikes, T=4 (numpy default_rng(0), the four shapes drawn in
    order), brute-force cycles 161,354 / 530,216 / 458,828 / 222,116."""
    rng = np.random.default_rng(0)
    for shape in ((48, 32), (96, 32), (192, 16), (384, 8)):
        x = (rng.random((1, 4, shape[0], shape[1], shape[1])) < 0.15).astype(float)
        if shape == (c_in, side):
            break
    sim, brute = conv_cycles(x, c_out)
    assert brute == expected
    assert abs(sim - expected) <= 1  # the engine rounds up once per layer


# ----------------------------------------------------------------------------- review-03


def test_review03_imbalance_is_per_sample_not_of_the_sample_mean():
    """(a) 2 samples, 32 tokens x 64 -> 16, T=1; sample A spikes on every feature of tokens
    0-7 and 16-23, B on the others: in each sample every 16-row fold has a token with 64
    events, so each inference takes 2 folds x (30 + 64) - 1 = 187 cycles; the mean over samples
    is flat (32 per token), which would give 2 x (30 + 32) - 1 = 123. p50 = p95 = 187."""
    M, K, N = 32, 64, 16
    hot = (np.arange(M) % 16) < 8
    x = np.zeros((2, 1, M, K))
    x[0, 0, hot, :] = 1
    x[1, 0, ~hot, :] = 1
    hw = os16()
    totals = simulate(make_trace([gemm_row("fc", x, np.ones((K, N)))], T=1), hw).totals
    clock_hz = hw.clock_mhz * 1e6
    assert totals["cycles"] == 187
    assert totals["latency_p50_s"] * clock_hz == pytest.approx(187)
    assert totals["latency_p95_s"] * clock_hz == pytest.approx(187)
    # a schema-2 trace (mean events only) can only give the mean's answer
    old = gemm_row("fc", x, np.ones((K, N)), row_events=False)
    assert simulate(make_trace([old], T=1), hw).totals["cycles"] == 123


def test_review03_iid_samples_match_the_mean_of_per_sample_brute_force():
    """(b) i.i.d. spikes, 32 samples, T=4 (default_rng(0), drawn in this order): the mean of
    per-sample brute force is 38,439 / 109,512 / 21,882 cycles."""
    rng = np.random.default_rng(0)
    for (m, k, n, rate), expected in zip(((64, 384, 384, 0.15), (64, 1536, 384, 0.15),
                                          (64, 384, 384, 0.05)), (38_439, 109_512, 21_882)):
        x = (rng.random((32, 4, m, k)) < rate).astype(float)
        w = np.ones((k, n))
        brute = np.mean([os_reference_cycles(x[s], w, 16, 16) for s in range(32)])
        assert round(brute) == expected
        sim = simulate(make_trace([gemm_row("fc", x, w)], T=4), os16()).totals["cycles"]
        assert abs(sim - brute) <= 1


def test_review03_attention_imbalance_is_per_head():
    """(d) Q·Kᵀ, 12 heads x 64 tokens x 32, Q spikes at 15 % (default_rng(3)), K dense: each
    head is its own GEMM, brute force summed over heads 29,708 cycles."""
    rng = np.random.default_rng(3)
    a = (rng.random((1, 4, 12, 64, 32)) < 0.15).astype(float)
    b = np.ones((1, 4, 12, 32, 64))
    brute = sum(os_reference_cycles(a[0][:, g], b[0, 0, g], 16, 16) for g in range(12))
    assert brute == 29_708
    sim = simulate(make_trace([attn_row("qk", a, b)], T=4), os16()).totals["cycles"]
    assert sim == pytest.approx(brute, abs=1)


# ----------------------------------------------------------------------------- review-04


def review04_trace():
    """linear 64 tokens x 384 -> 384 + LIF, T=4, exactly 48 of 384 input spikes per
    (timestep, token), dense int8 weights: no load imbalance."""
    T, M, K, N = 4, 64, 384, 384
    x = np.zeros((1, T, M, K))
    for t in range(T):
        for m in range(M):
            x[0, t, m, np.arange(48) * 8 + (m + t) % 8] = 1
    return make_trace([gemm_row("fc", x, np.ones((K, N))), lif_row("lif", T, M, N)], T=T)


def test_review04_fused_pair_is_bounded_by_its_busiest_resource_plus_fill():
    """sparse_int8_45nm (16x16 OS, 16 neuron units, 4 x 256-bit weight banks, 2 x 64-bit
    spike and membrane banks). Hand resource times of the pair:
      PE array   4 timesteps x 96 folds x (30 + 48) - 4        = 29,948
      weights    16 set reads x 147,456 x 9 bit / 1024 b/cycle  = 20,736
      spikes     (2,359,296 input + 98,304 output bits) / 128   = 19,200
      membranes  3 x 24,576 x 16 bit x 2 / 128                  = 18,432
      neurons    98,304 updates / 16                            =  6,144
    Fused: the busiest (29,948) plus the last 16x16 tile's LIF updates (256 / 16 = 16):
    29,964 cycles, >= every resource and <= their sum."""
    result = simulate(review04_trace(), load_hwconfig("sparse_int8_45nm"))
    pair = result.per_layer.cycles.sum()
    assert result.per_layer.compute_cycles[0] == 29_948
    assert pair == 29_948 + 16
    resources = [29_948, 20_736, 19_200, 18_432, 6_144]
    assert max(resources) <= pair <= sum(resources)


def test_review04_unfused_pair_pays_for_its_sums_and_runs_in_turn():
    """Unfused, the 4 x 64 x 384 sums of 24 bits (2,359,296 bits) are written to the global
    buffer and read back: 9,216 256-bit words each way, at the 256 KiB / 256-bit CACTI costs
    (124.61 pJ read, 118.033 pJ write): 2.236 uJ more global-buffer energy. The LIF runs after
    the GEMM: 29,948 + max(6,144 neurons, 18,432 membranes, 2,304 sum reads) = 48,380."""
    trace = review04_trace()
    fused = simulate(trace, load_hwconfig("sparse_int8_45nm"))
    unfused = simulate(trace, load_hwconfig("sparse_int8_45nm",
                                            {"schedule.lif_fusion": "unfused"}))
    assert unfused.per_layer.cycles.sum() == 48_380
    extra = unfused.totals["energy_global_buffer_pj"] - fused.totals["energy_global_buffer_pj"]
    assert extra == pytest.approx(9_216 * (124.61 + 118.033), rel=1e-4)


# ----------------------------------------------------------------------------- review-05


def fc_lif_trace(n_out, parts, layers=1):
    rng = np.random.default_rng(0)
    T, M, K = 4, 64, 384
    x = (rng.random((1, T, M, K)) < 0.15).astype(float)
    rows = []
    for layer in range(layers):
        for p in range(parts):
            w = np.ones((K, n_out // parts))
            rows += [gemm_row(f"fc{layer}.{p}", x, w), lif_row(f"lif{layer}.{p}", T, M,
                                                              n_out // parts)]
    return make_trace(rows, T=T)


def test_review05_layer_by_layer_membranes_never_leave_the_tile():
    """(a) fc1-like 64 x 384 -> 1536 + LIF: 98,304 neurons = 192 KiB of 16-bit membranes on
    a 64 KiB membrane buffer (weight memory 4 MiB: weights resident). Layer by layer with the
    timestep loop inside each output tile only a 16x16 tile's membranes are live: 0 DRAM bits,
    as for the same layer split into 4 x 384 outputs. Forcing the timestep loop outside the
    fold loops (the old per-layer scope) spills 2/3 of 98,304 x 3 x 16 bits, read and
    written: 6,291,456 bits."""
    hw = load_hwconfig("sparse_int8_45nm", {"weight_memory.size_kib": 4096})
    one, four = simulate(fc_lif_trace(1536, 1), hw), simulate(fc_lif_trace(1536, 4), hw)
    assert one.totals["dram_bits"] == four.totals["dram_bits"] == 0
    assert one.totals["energy_pj"] == pytest.approx(four.totals["energy_pj"], rel=1e-3)
    outside = simulate(fc_lif_trace(1536, 1), load_hwconfig(
        "sparse_int8_45nm", {"weight_memory.size_kib": 4096,
                             "schedule.time_placement": "outside_folds"}))
    assert outside.totals["dram_bits"] == pytest.approx(6_291_456)


def test_review05_timestep_outer_streaming_keeps_every_layers_membranes():
    """(b) three 64 x 384 -> 384 + LIF layers (48 KiB of membranes each, 144 KiB together),
    time loop outermost: all 144 KiB persist across each of the 3 step boundaries in a 64 KiB
    buffer: (1 - 64/144) x 3 x 24,576 x 3 x 16 bits x 2 (read, write) = 3,932,160 bits."""
    hw = load_hwconfig("sparse_int8_45nm", {"weight_memory.size_kib": 4096,
                                            "schedule.time_loop": "network"})
    totals = simulate(fc_lif_trace(384, 1, layers=3), hw).totals
    assert totals["dram_bits"] == pytest.approx(3_932_160)


# ----------------------------------------------------------------------------- review-06


@pytest.mark.parametrize("dataflow", ["output_stationary", "weight_stationary"])
@pytest.mark.parametrize("time, expected", [
    ({"policies.time_handling": "serial", "schedule.time_loop": "network"}, 4 * 3_211_264),
    ({"policies.time_handling": "serial", "schedule.time_loop": "layer"}, 3_211_264),
    ({"policies.time_handling": "parallel"}, 3_211_264)])
def test_review06_non_resident_weights_cross_dram_once_per_run(dataflow, time, expected):
    """fc1-like 64 x 384 -> 1536, dense int8 weights as a bitmask: 589,824 x 9 = 5,308,416
    bits, 3,211,264 beyond the 256 KiB weight memory. With the column folds outside, one
    K x 16 weight tile serves every row fold, so the part that does not fit crosses the DRAM
    interface once per run: 4 times (timestep outermost), once (timesteps inside each tile,
    or time-parallel), for output and weight stationary alike."""
    rng = np.random.default_rng(0)
    x = (rng.random((1, 4, 64, 384)) < 0.15).astype(float)
    trace = make_trace([gemm_row("fc1", x, np.ones((384, 1536))),
                        lif_row("lif", 4, 64, 1536)], T=4)
    hw = load_hwconfig("sparse_int8_45nm", {**time, "pe_array.dataflow": dataflow})
    result = simulate(trace, hw)
    assert result.totals["weight_dram_bits"] == pytest.approx(expected)
    assert result.per_layer.loop_order[0] == "weights_outer"
    # the config may fix the dominated order: row folds outside, 4 per timestep
    if dataflow == "output_stationary" and time.get("schedule.time_loop") == "network":
        fixed = simulate(trace, load_hwconfig("sparse_int8_45nm", {
            **time, "schedule.loop_order": "inputs_outer"}))
        assert fixed.totals["weight_dram_bits"] == pytest.approx(16 * 3_211_264)
