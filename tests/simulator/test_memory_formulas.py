"""The memory module's formulas worked on paper: weight formats, bandwidth cycles, the DRAM
stall of a layer's first tile, and the priced accesses (simulator/memory.py's docstring).

Hardware constants are read from the loaded config (`sparse_int8_45nm`: 500 MHz, DRAM
204.8 Gbit/s = 409.6 bits a cycle, a 16 x 16 array, 8-bit weights; weight memory and global
buffer 4 banks x 256 bits, spike and membrane buffers 2 banks x 64 bits)."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_traces import action_counts

from sparsespikformer.simulator import load_hwconfig, simulate, synthetic_trace
from sparsespikformer.simulator.memory import (
    MemoryTraffic,
    memory_activities,
    memory_cycles,
    rle_fill_entries,
    weight_storage_bits,
)

HW = load_hwconfig("sparse_int8_45nm")
# one tensor of 100 weights, 30 non-zero, 10 output channels; 8-bit values, 4-bit indices
NUMEL, NNZ, ROWS = np.array([100.0]), np.array([30.0]), np.array([10.0])


@pytest.mark.parametrize("fmt, values, metadata", [
    ("dense", 800.0, 0.0),                 # 100 x 8
    ("bitmask", 240.0, 100.0),             # 30 x 8, one bit per weight
    ("csr", 240.0, (30 + 11) * 4.0),       # 30 column indices + 10 + 1 row pointers
])
def test_weight_formats_worked_on_paper(fmt, values, metadata):
    got = weight_storage_bits(NUMEL, NNZ, ROWS, fmt=fmt, value_bits=8, index_bits=4)
    assert (float(got[0][0]), float(got[1][0])) == (values, metadata)


def test_rle_fill_entries_worked_on_paper():
    """4-bit runs cover 2^4 = 16 zeros per entry; density 0.3: q = 0.7^16 = 0.0033233,
    fills = (30 + 1) q / (1 - q) = 0.103367; all-zero 100 weights: floor(100 / 16) = 6."""
    q = 0.7 ** 16
    fills = 31 * q / (1 - q)
    assert rle_fill_entries(NUMEL, NNZ, 4)[0] == pytest.approx(fills, rel=1e-12)
    assert rle_fill_entries(NUMEL, np.array([0.0]), 4)[0] == 6.0
    # one non-zero weight of 100 is random-position coding, not an all-zero run:
    # q = 0.99^16, (1 + 1) q / (1 - q) = 11.47 fills; an empty tensor needs none
    q_one = 0.99 ** 16
    assert rle_fill_entries(NUMEL, np.array([1.0]), 4)[0] == pytest.approx(
        2 * q_one / (1 - q_one), rel=1e-12)
    assert rle_fill_entries(np.array([0.0]), np.array([0.0]), 4)[0] == 0.0
    values, metadata = weight_storage_bits(NUMEL, NNZ, ROWS, fmt="rle", value_bits=8,
                                           index_bits=4)
    assert (values[0], metadata[0]) == pytest.approx(((30 + fills) * 8, (30 + fills) * 4))


def test_an_empty_tensor_stores_nothing_in_csr():
    values, metadata = weight_storage_bits(np.array([0.0]), np.array([0.0]), np.array([10.0]),
                                           fmt="csr", value_bits=8, index_bits=4)
    assert (values[0], metadata[0]) == (0.0, 0.0)


def test_an_unknown_format_is_named():
    with pytest.raises(ValueError, match="unknown sparse weight format 'coo'"):
        weight_storage_bits(NUMEL, NNZ, ROWS, fmt="coo", value_bits=8, index_bits=4)


def traffic(dram_reads: float, dram_writes: float) -> MemoryTraffic:
    one = lambda bits: np.array([float(bits)])  # noqa: E731
    return MemoryTraffic(
        weight_value_reads=one(2048), weight_metadata_reads=one(1024), weight_writes=one(1024),
        spike_reads=one(640), spike_writes=one(384), global_reads=one(2048),
        global_writes=one(6144), membrane_reads=one(256), membrane_writes=one(128),
        dram_reads=one(dram_reads), dram_writes=one(dram_writes), weight_dram=one(0),
        loop_order=np.array([0]), time_placement=np.array([0]))


def test_bandwidth_cycles_per_level_and_the_first_tile_stall():
    """Weight memory (2048 + 1024 + 1024) / (4 x 256) = 4; spike buffer (640 + 384) /
    (2 x 64) = 8; global (2048 + 6144) / 1024 = 8; membrane (256 + 128) / 128 = 3; DRAM
    (8192 + 4096) / 409.6 = 30 cycles: the layer's memory time. Its first tile, 16 x 16
    weights x 8 bits = 2048 bits, cannot overlap compute: a stall of 2048 / 409.6 = 5."""
    bound, stall, levels = memory_cycles(traffic(8192, 4096), HW)
    assert levels[:, 0].tolist() == pytest.approx([4, 8, 8, 3, 30])
    assert (bound[0], stall[0]) == pytest.approx((30, 5))
    # less DRAM traffic than a tile stalls for that traffic only: 1024 / 409.6 = 2.5
    bound, stall, _ = memory_cycles(traffic(512, 512), HW)
    assert (bound[0], stall[0]) == pytest.approx((8, 2.5))


def test_each_access_is_priced_in_words_at_its_own_constant():
    """SRAM: words = bits / word_bits, energy = words x its pJ, cycles = words / banks;
    DRAM: bits x pJ/bit, bits / 409.6 cycles."""
    wm, sb, gb, mb = HW.weight_memory, HW.spike_buffer, HW.global_buffer, HW.membrane_buffer
    expected = {
        ("weight_memory", "read_values"): (8, 8 * wm.read_pj, 2),
        ("weight_memory", "read_metadata"): (4, 4 * wm.read_pj, 1),
        ("weight_memory", "write"): (4, 4 * wm.write_pj, 1),
        ("spike_buffer", "read"): (10, 10 * sb.read_pj, 5),
        ("spike_buffer", "write"): (6, 6 * sb.write_pj, 3),
        ("global_buffer", "read"): (8, 8 * gb.read_pj, 2),
        ("global_buffer", "write"): (24, 24 * gb.write_pj, 6),
        ("membrane_buffer", "read"): (4, 4 * mb.read_pj, 2),
        ("membrane_buffer", "write"): (2, 2 * mb.write_pj, 1),
        ("dram", "read"): (8192, 8192 * 8.0, 20),
        ("dram", "write"): (4096, 4096 * 8.0, 10),
    }
    got = {(a.component, a.action): (a.count[0], a.energy_pj[0], a.cycles[0])
           for a in memory_activities(traffic(8192, 4096), HW)}
    assert set(got) == set(expected)
    for key, values in expected.items():
        assert got[key] == pytest.approx(values, rel=1e-12), key


ATTENTION_AND_POOL = [
    dict(layer="qk", kind="attn_qk", block=0, tokens_in=16, tokens_out=16, in_numel=128,
         out_numel=512, gemm_m=16, gemm_n=16, gemm_k=4, gemm_groups=2, weight_numel=0),
    dict(layer="pool", kind="pool", block=-1, tokens_in=16, tokens_out=4, in_numel=128,
         out_numel=32, gemm_m=0, gemm_n=0, gemm_k=0, gemm_groups=0, weight_numel=0),
]


def test_attention_operands_and_pooling_spikes_on_chip():
    """T = 4, serial time, 16 x 16 output stationary, buffers large enough not to spill.

    Q·Kᵀ (2 heads, M = N = 16 tokens, K = 4 features): one row fold and one column fold, so
    the K spikes (the operand set, 2 x 4 x 16 = 128 bits a timestep) are read once per
    timestep: 512 bits; Q, each element once: 4 x 2 x 16 x 4 = 512 bits; 1024 bits = 16
    spike-buffer words of 64 bits. Its 2 x 16 x 16 x 4 = 2048 sums of 24 bits go to the
    global buffer (no LIF follows): 49,152 bits = 192 words of 256.
    Max-pool: reads its 128 x 4 = 512 input spikes (8 words), writes 32 x 4 = 128 (2 words).
    """
    hw = load_hwconfig("sparse_int8_45nm", {"spike_buffer.size_kib": 4096,
                                            "global_buffer.size_kib": 4096})
    trace = synthetic_trace(ATTENTION_AND_POOL, firing_rate=0.25, timesteps=4)
    result = simulate(trace, hw)
    layers = action_counts(result)
    assert layers[("qk", "spike_buffer", "read")] == 16
    assert layers[("qk", "global_buffer", "write")] == 192
    assert layers[("pool", "spike_buffer", "read")] == 8
    assert layers[("pool", "spike_buffer", "write")] == 2
    assert ("qk", "spike_buffer", "write") not in layers.index
    assert result.totals["dram_bits"] == 0
