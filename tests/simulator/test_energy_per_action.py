"""Energy per action, worked on paper: every (layer, component, action) of a small trace has
the count derived by hand below, and costs that count times the loaded config's constant.

The per-action constants are read from the loaded config (`hw.spike_buffer.read_pj`, ...),
never copied here, so the tests check the counts and that each count is priced with its
own constant: a spike-buffer write must cost `spike_buffer.write_pj`, not `read_pj`; an
output spike `neuron_unit.spike_pj` on top of its update. `loihi_like` is the config whose
spike energy is not zero (Davies et al. 2018; docs/references.md), `sparse_int8_45nm` the one
whose buffer reads and writes differ (CACTI 45 nm; docs/references.md).

Buffers are made large by overrides, so nothing spills to DRAM: these counts are on-chip
traffic only (DRAM traffic has its own closed-form tests).
"""

from __future__ import annotations

import pytest

from sparsespikformer.simulator import gemm_trace, load_hwconfig, simulate, synthetic_trace

BIG_BUFFERS = {"weight_memory.size_kib": 4096, "spike_buffer.size_kib": 4096,
               "global_buffer.size_kib": 4096, "membrane_buffer.size_kib": 4096}
PJ_PER_MW_S = 1e9  # 1 mW for 1 s = 1 mJ = 1e9 pJ
SRAMS = ("weight_memory", "spike_buffer", "global_buffer", "membrane_buffer")


def static_power_mw(hw):
    """Logic leakage plus each SRAM's own (an `auto` SRAM's comes from its CACTI row)."""
    return hw.leakage_mw + sum(getattr(hw, name).leakage_mw for name in SRAMS)

# A linear layer on spikes followed by its LIF neurons: M = 16 tokens, K = 16 input channels,
# N = 8 output channels, T = 4 timesteps, firing rate 0.25, weight density 0.5.
SPIKING_LAYERS = [
    dict(layer="fc", kind="linear", block=0, tokens_in=16, tokens_out=16, in_numel=16 * 16,
         out_numel=16 * 8, gemm_m=16, gemm_n=8, gemm_k=16, gemm_groups=1,
         weight_numel=16 * 8, in_value_kind="spike"),
    dict(layer="fc_lif", kind="lif", block=0, tokens_in=16, tokens_out=16, in_numel=16 * 8,
         out_numel=16 * 8, gemm_m=0, gemm_n=0, gemm_k=0, gemm_groups=0, weight_numel=0,
         in_value_kind="real"),
]


def spiking_trace():
    return synthetic_trace(SPIKING_LAYERS, firing_rate=0.25, weight_density=0.5, timesteps=4)


def spiking_counts_sparse_int8(hw):
    """Counts of `spiking_trace()` on sparse_int8_45nm (16 x 16 PEs, output stationary, serial
    time, skip zero spikes and zero weights, bitmask weights, 16-bit membranes).

    fc (M=16, K=16, N=8, T=4; 128 weights, nnz = 0.5 x 128 = 64):
      dense MACs T.M.N.K = 4 x 16 x 8 x 16 = 8192; SOPs = 0.25 x 8192 = 2048;
      spike x non-zero-weight events = 0.5 x 2048 = 1024 accumulates (both zeros skipped).
      Output stationary on 16 x 16: M=16 rows fill ceil(16/16) = 1 row fold, N=8 columns
      ceil(8/16) = 1 column fold, K=16 streamed: one fold, no partial sums.
      Spike buffer reads: each timestep reads the M x K input bitmap once per column fold:
        4 x 16 x 16 x 1 = 1024 bits = 1024 / 64 = 16 words of 64 bits.
      Weight memory (bitmask): values 64 x 8 = 512 bits, mask 128 x 1 = 128 bits, read once
        per row fold and timestep (4 times): 2048 bits = 8 words of 256 bits, and
        512 bits = 2 words.
      Global buffer: nothing (spike input; final sums go straight to the LIF neurons).
    fc_lif (128 neurons = 16 tokens x 8 channels):
      updates 128 x 4 = 512; output spikes 0.25 x 512 = 128;
      spike buffer writes: 128 x 4 = 512 bits = 8 words;
      membrane buffer (serial time): each potential written after timesteps 1..3 and read
        before 2..4: 128 x 3 x 16 bits = 6144 bits = 96 words of 64 bits each way.
    """
    return {
        ("fc", "pe_array", "accumulate"): (1024, hw.energy.accumulate_pj),
        ("fc", "spike_buffer", "read"): (16, hw.spike_buffer.read_pj),
        ("fc", "weight_memory", "read_values"): (8, hw.weight_memory.read_pj),
        ("fc", "weight_memory", "read_metadata"): (2, hw.weight_memory.read_pj),
        ("fc_lif", "neuron_unit", "update"): (512, hw.neuron_unit.update_pj),
        ("fc_lif", "neuron_unit", "spike"): (128, hw.neuron_unit.spike_pj),
        ("fc_lif", "spike_buffer", "write"): (8, hw.spike_buffer.write_pj),
        ("fc_lif", "membrane_buffer", "read"): (96, hw.membrane_buffer.read_pj),
        ("fc_lif", "membrane_buffer", "write"): (96, hw.membrane_buffer.write_pj),
    }


def spiking_counts_loihi(hw):
    """Counts of `spiking_trace()` on loihi_like (8 x 16 cores, output stationary, serial
    time, skip zero spikes and synapses, CSR weights with 10-bit indices, 24-bit membranes).

    fc: the same 1024 accumulates (spike x non-zero synapse events, as above).
      Output stationary on 8 x 16: M=16 rows take ceil(16/8) = 2 row folds, N=8 one column
      fold; K=16 streamed, no partial sums.
      Spike buffer reads: once per column fold: 4 x 16 x 16 x 1 = 1024 bits = 16 words.
      Weight memory (CSR): values 64 x 8 = 512 bits; metadata (64 column indices + 9 row
        pointers) x 10 = 730 bits; read once per row fold and timestep (2 x 4 = 8 times):
        4096 bits = 64 words of 64 bits, and 5840 bits = 91.25 words.
    fc_lif: updates 512, spikes 128, spike writes 512 bits = 8 words;
      membrane 128 x 3 x 24 = 9216 bits = 144 words each way.
    """
    return {
        ("fc", "pe_array", "accumulate"): (1024, hw.energy.accumulate_pj),
        ("fc", "spike_buffer", "read"): (16, hw.spike_buffer.read_pj),
        ("fc", "weight_memory", "read_values"): (64, hw.weight_memory.read_pj),
        ("fc", "weight_memory", "read_metadata"): (91.25, hw.weight_memory.read_pj),
        ("fc_lif", "neuron_unit", "update"): (512, hw.neuron_unit.update_pj),
        ("fc_lif", "neuron_unit", "spike"): (128, hw.neuron_unit.spike_pj),
        ("fc_lif", "spike_buffer", "write"): (8, hw.spike_buffer.write_pj),
        ("fc_lif", "membrane_buffer", "read"): (144, hw.membrane_buffer.read_pj),
        ("fc_lif", "membrane_buffer", "write"): (144, hw.membrane_buffer.write_pj),
    }


def gemm_counts_sparse_int8(hw):
    """Counts of `gemm_trace(16, 16, 16)` (real-valued 16 x 16 input, dense 16 x 16 weights,
    one timestep) on sparse_int8_45nm.

    4096 MACs on the multipliers (real inputs: no zero skipping; weights all non-zero).
    One fold (M = N = K = 16 on 16 x 16, output stationary), no partial sums.
    Global buffer reads: the 16 x 16 input, 8 bits each, once: 2048 bits = 8 words of 256.
    Global buffer writes: no LIF follows, so the 16 x 16 sums are written, 24 bits each:
      6144 bits = 24 words.
    Weight memory (bitmask): values 256 x 8 = 2048 bits = 8 words; mask 256 bits = 1 word.
    Latency: SCALE-Sim's output-stationary form (R + C + K - 2) x 1 x 1 - 1 = 45 cycles.
    """
    return {
        ("gemm", "pe_array", "multiply_accumulate"): (4096, hw.energy.multiply_accumulate_pj),
        ("gemm", "global_buffer", "read"): (8, hw.global_buffer.read_pj),
        ("gemm", "global_buffer", "write"): (24, hw.global_buffer.write_pj),
        ("gemm", "weight_memory", "read_values"): (8, hw.weight_memory.read_pj),
        ("gemm", "weight_memory", "read_metadata"): (1, hw.weight_memory.read_pj),
    }, 45


def gemm_counts_loihi(hw):
    """Counts of `gemm_trace(16, 16, 16)` on loihi_like: no multipliers, so each real MAC runs
    bit-serially as `real_value_bits` = 8 accumulates: 4096 x 8 = 32768.

    Output stationary on 8 x 16: ceil(16/8) = 2 row folds x 1 column fold.
    Global buffer reads: 16 x 16 x 8 bits = 2048 bits = 32 words of 64 bits (one column fold).
    Global buffer writes: 256 sums x 24 bits = 6144 bits = 96 words.
    Weight memory (CSR): values 2048 bits, metadata (256 + 17) x 10 = 2730 bits, read once per
      row fold (2 times): 4096 bits = 64 words and 5460 bits = 85.3125 words.
    Latency: 2 folds x (fill R + C - 2 = 22, plus K x 8 bit-serial slots = 128) - 1 = 299.
    """
    return {
        ("gemm", "pe_array", "accumulate"): (32768, hw.energy.accumulate_pj),
        ("gemm", "global_buffer", "read"): (32, hw.global_buffer.read_pj),
        ("gemm", "global_buffer", "write"): (96, hw.global_buffer.write_pj),
        ("gemm", "weight_memory", "read_values"): (64, hw.weight_memory.read_pj),
        ("gemm", "weight_memory", "read_metadata"): (85.3125, hw.weight_memory.read_pj),
    }, 299


RESIDENCY_ROWS = ("stored_bits", "resident_bits")  # the residency plan: sizes, never priced


def actions(result):
    """{(layer, component, action): (count, energy_pj)} of every priced action but leakage."""
    plan = result.layers[result.layers.action.isin(RESIDENCY_ROWS)]
    assert (plan.energy_pj == 0).all(), "a residency size was priced as an action"
    layers = result.layers[(result.layers.component != "leakage")
                           & ~result.layers.action.isin(RESIDENCY_ROWS)]
    return {(row.layer, row.component, row.action): (row.count, row.energy_pj)
            for row in layers.itertuples()}


def assert_actions_match(result, expected):
    got = actions(result)
    assert set(got) == set(expected), "actions with a count or energy differ"
    for key, (count, pj_each) in expected.items():
        assert got[key][0] == pytest.approx(count, rel=1e-12), key
        assert got[key][1] == pytest.approx(count * pj_each, rel=1e-12), key


@pytest.mark.parametrize("name, counts", [("sparse_int8_45nm", spiking_counts_sparse_int8),
                                          ("loihi_like", spiking_counts_loihi)])
def test_spiking_layer_energy_is_hand_counts_times_config_constants(name, counts):
    hw = load_hwconfig(name, BIG_BUFFERS)
    result = simulate(spiking_trace(), hw)
    expected = counts(hw)
    assert_actions_match(result, expected)
    totals = result.totals
    assert totals["dram_bits"] == 0
    leakage = static_power_mw(hw) * totals["latency_s"] * PJ_PER_MW_S
    assert totals["energy_leakage_pj"] == pytest.approx(leakage, rel=1e-12)
    assert totals["energy_pj"] == pytest.approx(
        sum(count * pj for count, pj in expected.values()) + leakage, rel=1e-12)


def test_lif_spikes_cost_their_own_energy_on_loihi():
    """Loihi: 52 pJ per neuron update plus 29 + 1.7 pJ per output spike (docs/references.md):
    128 spikes add 128 x spike_pj over the 512 updates' energy."""
    hw = load_hwconfig("loihi_like", BIG_BUFFERS)
    assert hw.neuron_unit.spike_pj > 0  # else this test could not see a dropped spike energy
    totals = simulate(spiking_trace(), hw).totals
    assert totals["energy_neuron_unit_pj"] == pytest.approx(
        512 * hw.neuron_unit.update_pj + 128 * hw.neuron_unit.spike_pj, rel=1e-12)


def test_buffer_reads_and_writes_cost_different_energies_on_sparse_int8():
    """CACTI 45 nm (docs/references.md): 64 KB read 25.87 / write 19.65 pJ, 256 KB read
    124.61 / write 118.03 pJ. The spike buffer reads 16 words and writes 8; the global
    buffer reads 8 words and writes 24: a swapped read/write price shows in the totals."""
    hw = load_hwconfig("sparse_int8_45nm", BIG_BUFFERS)
    assert hw.spike_buffer.read_pj != hw.spike_buffer.write_pj
    assert hw.global_buffer.read_pj != hw.global_buffer.write_pj
    spiking = simulate(spiking_trace(), hw).totals
    assert spiking["energy_spike_buffer_pj"] == pytest.approx(
        16 * hw.spike_buffer.read_pj + 8 * hw.spike_buffer.write_pj, rel=1e-12)
    gemm = simulate(gemm_trace(16, 16, 16), hw).totals
    assert gemm["energy_global_buffer_pj"] == pytest.approx(
        8 * hw.global_buffer.read_pj + 24 * hw.global_buffer.write_pj, rel=1e-12)


@pytest.mark.parametrize("name, counts", [("sparse_int8_45nm", gemm_counts_sparse_int8),
                                          ("loihi_like", gemm_counts_loihi)])
def test_gemm_energy_and_leakage_worked_on_paper(name, counts):
    hw = load_hwconfig(name, BIG_BUFFERS)
    result = simulate(gemm_trace(16, 16, 16), hw)
    expected, cycles = counts(hw)
    assert_actions_match(result, expected)
    assert result.totals["cycles"] == cycles
    latency_s = cycles / (hw.clock_mhz * 1e6)
    # sparse_int8: logic 5 mW x 90 ns = 450 pJ, plus the four 4 MiB SRAMs' leakage
    leakage_pj = static_power_mw(hw) * latency_s * PJ_PER_MW_S
    assert result.totals["latency_s"] == pytest.approx(latency_s, rel=1e-12)
    assert result.totals["energy_leakage_pj"] == pytest.approx(leakage_pj, rel=1e-12)
    assert result.totals["energy_pj"] == pytest.approx(
        sum(count * pj for count, pj in expected.values()) + leakage_pj, rel=1e-12)
