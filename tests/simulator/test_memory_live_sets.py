"""Residual-stream traffic and global-buffer spills worked on paper (memory.py, schedule.py).

One block, T = 2, sparse_int8_45nm (output stationary 16 x 16, GEMM->LIF fused):

    row  name          kind    input     M  K  N   notes
     0   b0.proj       linear  spikes    4  3  8
     1   b0.proj_lif   lif               4  -  8   25 % fire: 4 x 8 x 2 x 0.25 = 16 spikes,
                                                   each added into the residual stream
     2   b0.fc1        linear  integers  4  8  5   values up to 3: 2-bit stream values
     3   b0.fc1_lif    lif               4  -  5   the last row: adds nothing

The stream is what fc1 reads: 4 x 8 values x 2 bits = 64 bits a timestep, live across the
block for both timesteps (128 bits a sample).
"""

import numpy as np
import pytest
from tiny_traces import action_counts, gemm_row, lif_row, make_trace

from sparsespikformer.simulator import load_hwconfig, simulate

T, GLOBAL_WORD_BITS, PSUM_BITS = 2, 256, 24


def block_trace():
    fc1_inputs = np.zeros((1, T, 4, 8))
    fc1_inputs[0, :, :, 0] = 3.0  # integers up to 3
    return make_trace([gemm_row("b0.proj", np.ones((1, T, 4, 3)), np.ones((3, 8)), block=0),
                       lif_row("b0.proj_lif", T, 4, 8, rate=0.25, block=0),
                       gemm_row("b0.fc1", fc1_inputs, np.ones((8, 5)), block=0),
                       lif_row("b0.fc1_lif", T, 4, 5, block=0)], T=T)



def test_residual_adds_read_and_write_their_stream_values_in_the_global_buffer():
    """16 adds x 2-bit values, read and written back: 32 bits = 1/8 of a 256-bit word each
    way; fused, the GEMM hands its sums to the LIF without the buffer."""
    layers = action_counts(simulate(block_trace(), load_hwconfig("sparse_int8_45nm")))
    assert layers[("b0.proj_lif", "global_buffer", "read")] == pytest.approx(32 / 256)
    assert layers[("b0.proj_lif", "global_buffer", "write")] == pytest.approx(32 / 256)
    assert layers[("b0.proj_lif", "neuron_unit", "residual_add")] == pytest.approx(16)
    assert ("b0.fc1_lif", "global_buffer", "read") not in layers.index


def test_unfused_sums_are_parked_and_read_back():
    """Unfused, proj writes its 4 x 8 x 2 = 64 sums of 24 bits (1536 bits = 6 words) and its
    LIF reads them back, besides the stream's 32 bits each way."""
    hw = load_hwconfig("sparse_int8_45nm", {"schedule.lif_fusion": "unfused"})
    layers = action_counts(simulate(block_trace(), hw))
    assert layers[("b0.proj", "global_buffer", "write")] == pytest.approx(1536 / 256)
    assert layers[("b0.proj_lif", "global_buffer", "read")] == pytest.approx((1536 + 32) / 256)
    assert layers[("b0.proj_lif", "global_buffer", "write")] == pytest.approx(32 / 256)


@pytest.mark.parametrize("batch", [1, 2])
def test_a_small_global_buffer_spills_its_share_of_the_stream(batch):
    """Global buffer 0.01 KiB = 81.92 bits. Every row of the block holds the 128-bit stream
    per sample, x batch (fc1 reads its input from the stream itself; the fused rows park no
    sums): spill = 1 - 81.92 / (128 x batch) of what the row moves through the buffer.
    proj_lif moves 32 + 32 stream bits, fc1 reads its 4 x 8 x 2 x 2 = 128 input bits once;
    proj (spikes in, sums fused) and fc1_lif move nothing there."""
    hw = load_hwconfig("sparse_int8_45nm", {"global_buffer.size_kib": 0.01,
                                            "schedule.batch": batch})
    spill = 1 - 81.92 / (128 * batch)
    per_layer = simulate(block_trace(), hw).per_layer.set_index("layer")["dram_bits"]
    assert per_layer["b0.proj_lif"] == pytest.approx(64 * spill)
    assert per_layer["b0.fc1"] == pytest.approx(128 * spill)
    assert per_layer["b0.proj"] == 0 and per_layer["b0.fc1_lif"] == 0


def test_unfused_parked_sums_join_the_live_set():
    """Unfused, with T = 2 inside the tile: proj parks 2 timesteps x 32 sums x 24 bits = 1536
    bits besides the 128-bit stream; with 1 KiB (8192 bits) of global buffer it all fits, with
    0.125 KiB (1024 bits) 1 - 1024 / 1664 spills of its 1536 written bits, and its LIF spills
    as much of the 1536 bits it reads back plus 64 stream bits (both rows see the same
    1664-bit set)."""
    base = {"schedule.lif_fusion": "unfused", "schedule.time_placement": "inside_tile"}
    roomy = simulate(block_trace(), load_hwconfig("sparse_int8_45nm", {
        **base, "global_buffer.size_kib": 1})).per_layer.set_index("layer")["dram_bits"]
    assert roomy["b0.proj"] == 0 and roomy["b0.proj_lif"] == 0
    tight = simulate(block_trace(), load_hwconfig("sparse_int8_45nm", {
        **base, "global_buffer.size_kib": 0.125})).per_layer.set_index("layer")["dram_bits"]
    spill = 1 - 1024 / 1664
    assert tight["b0.proj"] == pytest.approx(1536 * spill)
    assert tight["b0.proj_lif"] == pytest.approx((1536 + 64) * spill)


@pytest.mark.parametrize("input_sparsity, adds", [("skip", 16), ("none", 64)])
def test_residual_adds_take_neuron_unit_cycles(input_sparsity, adds):
    """proj_lif updates 4 x 8 neurons x 2 timesteps = 64 membranes and adds into the stream
    once per spike (16) when zero spikes are skipped, once per update (64) when they are not;
    its 16 neuron units do one update or add a cycle: ceil((64 + adds) / 16) cycles."""
    hw = load_hwconfig("sparse_int8_45nm", {"policies.input_sparsity": input_sparsity})
    result = simulate(block_trace(), hw)
    assert action_counts(result)[("b0.proj_lif", "neuron_unit", "residual_add")] == adds
    compute = result.per_layer.set_index("layer")["compute_cycles"]
    assert compute["b0.proj_lif"] == np.ceil((64 + adds) / 16)
