"""Input-stationary operand reads and K folds, and the selector's second-linear share of the
cycles, worked on paper (mapping.py)."""

import numpy as np
import pytest
from tiny_traces import action_counts, gemm_row, make_trace

from sparsespikformer.simulator import load_hwconfig, simulate


def test_input_stationary_reads_weights_per_column_fold_and_parks_sums_per_k_fold():
    """One linear, T = 2, M = 20 tokens, K = 40 -> N = 6, every weight 1, spike inputs, on a
    16 x 16 input-stationary array (no LIF after it, buffers roomy).

    The inputs stay: the weights stream once per fold of the M columns, ceil(20/16) = 2 per
    timestep, 4 per inference. The 240 weights take 240 x 8 value bits and 240 mask bits:
    1920 x 4 / 256 = 30 value words and 240 x 4 / 256 = 3.75 mask words read.
    K splits over the rows in ceil(40/16) = 3 folds: the 20 x 6 x 2 = 240 outputs make
    2 round trips of 24-bit partial sums (11,520 bits each way) and one final write of 5,760
    bits: 45 global-buffer words read, (11,520 + 5,760) / 256 = 67.5 written."""
    x = np.ones((1, 2, 20, 40))
    trace = make_trace([gemm_row("fc", x, np.ones((40, 6)))], T=2)
    hw = load_hwconfig("sparse_int8_45nm", {"pe_array.dataflow": "input_stationary",
                                            "global_buffer.size_kib": 4096,
                                            "spike_buffer.size_kib": 4096})
    counts = action_counts(simulate(trace, hw))
    assert counts[("fc", "weight_memory", "read_values")] == pytest.approx(30)
    assert counts[("fc", "weight_memory", "read_metadata")] == pytest.approx(3.75)
    assert counts[("fc", "global_buffer", "read")] == pytest.approx(45)
    assert counts[("fc", "global_buffer", "write")] == pytest.approx(67.5)


@pytest.mark.parametrize("share", [1.0, 2.0, 3.0])
def test_a_gemms_extra_macs_stretch_its_streaming_cycles(share):
    """A linear whose dense MACs are `share` x T·M·N·K (a learned selector's two linears
    recorded as one row): 4 tokens x 3 -> 4 on a 4 x 4 output-stationary array, T = 1, every
    input 1: one fold of R + C - 2 + K = 9 cycles, stretched by the share, less SCALE-Sim's
    one cycle per run: ceil(9 x share) - 1."""
    row, arrays = gemm_row("fc", np.ones((1, 1, 4, 3)), np.ones((3, 4)))
    row["dense_macs"] = share * 4 * 4 * 3
    hw = load_hwconfig("dense_systolic", {"pe_array.rows": 4, "pe_array.cols": 4,
                                          "pe_array.dataflow": "output_stationary"})
    compute = simulate(make_trace([(row, arrays)], T=1), hw).per_layer["compute_cycles"]
    assert list(compute) == [np.ceil(9 * share) - 1]
