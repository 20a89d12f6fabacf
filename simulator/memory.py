"""Memories: sparse weight formats, on-chip buffers, DRAM traffic, bandwidth cycles.

Traffic is counted in bits and priced per `word_bits` access (SRAM) or per bit (DRAM).
docs/schedule.md explains the loop nest all of it follows (schedule.py).

* Weight memory stores each static weight tensor in its format (per tensor, rows = output
  channels):
      dense     values numel·vb
      bitmask   values nnz·vb, metadata numel·1
      csr       values nnz·vb, metadata nnz·ib + (out_channels + 1)·ib (indices, row pointers)
      rle       values (nnz + fills)·vb, metadata (nnz + fills)·ib; a b-bit run field covers at
                most 2^b zeros per entry, so a longer run needs fill entries; with zeros at
                random positions (density d) their expected number is
                (nnz + 1)·q/(1 - q), q = (1 - d)^(2^b)
  Which bits stay resident is planned for the whole model (residency.py); the rest is
  streamed from DRAM, and written into the weight memory, every time the schedule fetches
  it: once per run with the weights' fold loop outside, once per fold of the other operand
  with it inside, over the batch.
* On-chip reads per inference follow the mapping (mapping.py): the weight set is read
  `weight_set_reads` times, each input element `input_reuse` times per run (SCALE-Sim's
  im2col operand reads), partial sums written and read back `k_folds - 1` times.
* Spike inputs (1 bit) and attention's K / V spikes live in the spike buffer; integer inputs
  (ceil(log2(max + 1)) bits), rate and real inputs (`real_value_bits`) in the global buffer,
  with the partial sums parked there between K folds and the residual stream across its
  block (read-modify-written by the residual adds). A GEMM fused with its LIF hands over its
  sums; any other GEMM (unfused, Q·Kᵀ, selector, head) writes them to the global buffer,
  and an unfused LIF reads them back.
* Spills: each buffer holds the live set of the schedule at each row (activations of one
  run: one timestep, or all T layer by layer, times the batch; the residual stream; Q, K, V
  at Q·Kᵀ; partial and parked sums of the chosen loop nest; membranes of one tile, of the
  layer, or of the whole network). The fraction of the live set beyond the buffer lives in
  DRAM: that fraction of the row's own accesses of the buffer's tensors goes to DRAM
  (inputs once per fetch of the loop order, outputs once, parked sums each way).
* Bandwidth: an SRAM moves `banks x word_bits` bits per cycle; DRAM `bandwidth_gbps` at the
  clock. A layer's memory time is the slowest level's; the first tile of a layer that
  touches DRAM cannot overlap compute (a stall).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sparsespikformer.simulator.config import (
    BITS_PER_KIB,
    BufferConfig,
    HwConfig,
    WeightMemoryConfig,
)
from sparsespikformer.simulator.layer_table import INTEGER, SPIKE, LayerTable
from sparsespikformer.simulator.mapping import GemmMapping
from sparsespikformer.simulator.residency import ResidencyPlan
from sparsespikformer.simulator.result import Activity
from sparsespikformer.simulator.schedule import Schedule, candidate_mappings

SPIKE_BITS = 1.0


def weight_storage_bits(numel: np.ndarray, nnz: np.ndarray, out_channels: np.ndarray, *,
                        fmt: str, value_bits: int, index_bits: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(value bits, metadata bits) of each weight tensor stored in `fmt`."""
    if fmt == "dense":
        return numel * value_bits, np.zeros_like(numel)
    if fmt == "bitmask":
        return nnz * value_bits, numel * 1.0
    if fmt == "csr":
        return nnz * value_bits, (nnz + np.where(numel > 0, out_channels + 1.0, 0.0)) * index_bits
    if fmt == "rle":
        entries = nnz + rle_fill_entries(numel, nnz, index_bits)
        return entries * value_bits, entries * index_bits
    raise ValueError(f"unknown sparse weight format {fmt!r}")


def rle_fill_entries(numel: np.ndarray, nnz: np.ndarray, run_bits: int) -> np.ndarray:
    """Expected fill entries of run-length coding with zeros at random positions."""
    span = 2.0 ** run_bits  # zeros one entry covers: its run plus its own (zero) value
    safe_numel = np.where(numel > 0, numel, 1.0)
    density = nnz / safe_numel
    q = (1.0 - density) ** span
    with np.errstate(divide="ignore", invalid="ignore"):
        random_fills = (nnz + 1.0) * q / (1.0 - q)
    all_zero = np.floor(numel / span)
    return np.where(numel <= 0, 0.0, np.where(nnz <= 0, all_zero, random_fills))


def activation_bits(table: LayerTable, real_value_bits: int) -> np.ndarray:
    """Bits per input element: 1 for spikes, just enough for integers, else real width."""
    integer_bits = np.maximum(1.0, np.ceil(np.log2(np.maximum(table.in_value_max, 0.0) + 1.0)))
    return np.where(table.value_kind == SPIKE, SPIKE_BITS,
                    np.where(table.value_kind == INTEGER, integer_bits, float(real_value_bits)))


@dataclass(frozen=True)
class MemoryTraffic:
    """Bits moved per layer and level per inference, shape (L,)."""

    weight_value_reads: np.ndarray
    weight_metadata_reads: np.ndarray
    weight_writes: np.ndarray  # streamed weights written into the weight memory
    spike_reads: np.ndarray
    spike_writes: np.ndarray
    global_reads: np.ndarray
    global_writes: np.ndarray
    membrane_reads: np.ndarray
    membrane_writes: np.ndarray
    dram_reads: np.ndarray
    dram_writes: np.ndarray
    weight_dram: np.ndarray  # the part of `dram_reads` that is streamed weights
    loop_order: np.ndarray  # int: schedule.WEIGHTS_OUTER or INPUTS_OUTER per layer
    time_placement: np.ndarray  # int: schedule.INSIDE or OUTSIDE (timestep loop) per layer


def weight_stored_bits(table: LayerTable, hw: HwConfig) -> tuple[np.ndarray, np.ndarray]:
    """(value bits, metadata bits) of every layer's static weights in the memory's format."""
    wm = hw.weight_memory
    values, metadata = weight_storage_bits(
        table.weight_numel, table.weight_nnz, table.n, fmt=wm.format,
        value_bits=wm.value_bits, index_bits=wm.index_bits)
    static = table.is_gemm & table.is_static
    return np.where(static, values, 0.0), np.where(static, metadata, 0.0)


def memory_traffic(table: LayerTable, hw: HwConfig, mapping: GemmMapping, schedule: Schedule,
                   plan: ResidencyPlan, membrane_bits_moved: tuple[np.ndarray, np.ndarray],
                   residual_adds: np.ndarray, act_bits: np.ndarray) -> MemoryTraffic:
    """Per-level traffic of one inference under `schedule` and the residency `plan`."""
    pe = hw.pe_array
    gemm, steps = table.is_gemm, table.timesteps
    spike_input = table.value_kind == SPIKE
    batch = float(schedule.batch)
    t = table.cached(("traffic", pe.real_value_bits), lambda: _trace_terms(table, act_bits))

    input_reads = t.input_row_bits * mapping.input_reuse
    values, metadata = weight_stored_bits(table, hw)
    psum_round_trips = t.outputs * (mapping.k_folds - 1.0) * pe.psum_bits  # between folds
    result_bits = np.where(schedule.fused, 0.0, t.outputs * pe.psum_bits)  # unless fused
    sums_read = np.where(schedule.unfused_sums, table.out_numel * steps * pe.psum_bits, 0.0)
    residual_rmw = residual_adds * schedule.residual_value_bits  # read-modify-write in place
    operand_step, pool_input, spikes_out = t.operand_step, t.pool_input, t.spikes_out
    spike_input_once, global_input_once = t.spike_input_once, t.global_input_once

    # Live sets of one run (schedule.py): spikes, and the global buffer's values and sums.
    live_scale = schedule.scope_steps * batch
    spike_live = t.spike_live_step * live_scale
    global_live = (schedule.residual_bits + np.where(schedule.input_is_residual, 0.0,
                                                     t.global_input_step)) * live_scale
    sums_live_step = (result_bits + sums_read) / steps * batch  # parked sums, one timestep
    spill_spike = spill_fraction(spike_live, hw.spike_buffer)
    membrane_reads, membrane_writes = membrane_bits_moved

    # Each candidate (fold-loop order, time placement) gives every row's DRAM bits; a GEMM
    # picks the cheapest for itself and the LIF it feeds (whose membranes and parked sums
    # live as the GEMM's timestep loop dictates), the LIF follows its GEMM.
    streamed = np.where(gemm & table.is_static, plan.streamed_bits, 0.0)
    spike_in_once = operand_step * steps + pool_input
    candidates = candidate_mappings(hw, schedule)  # all evaluated at once: (C, L) arrays
    order_of = np.array([c[0] for c in candidates])
    place_of = np.array([c[1] for c in candidates])
    weight_factor, fetch_runs = np.stack(schedule.weight_factor), np.stack(schedule.fetch_runs)
    input_factor = np.stack(schedule.input_factor)[order_of]
    weights_c = streamed * weight_factor[order_of] * fetch_runs[place_of] / batch
    psum_live = np.stack([schedule.psum_live_bits[c] for c in candidates])
    sums_live = sums_live_step * np.stack(schedule.sums_steps)[place_of]
    spill_global = spill_fraction(global_live + sums_live + psum_live, hw.global_buffer)
    spill_membrane = spill_fraction(np.stack(schedule.membrane_live_bits)[place_of],
                                    hw.membrane_buffer)
    reads_c = (weights_c + spill_spike * (spike_input_once * input_factor + spike_in_once)
               + spill_global * (global_input_once * input_factor + sums_read + residual_rmw
                                 + psum_round_trips)
               + spill_membrane * membrane_reads)
    writes_c = (spill_spike * spikes_out
                + spill_global * (result_bits + residual_rmw + psum_round_trips)
                + spill_membrane * membrane_writes)
    own = reads_c + writes_c  # (candidates, L)
    follows = table.is_lif & np.r_[False, gemm[:-1]]  # a LIF row fed by a GEMM row
    with_next = own + np.where(np.r_[follows[1:], False], np.roll(own, -1, axis=1), 0.0)
    choice = np.argmin(with_next, axis=0)  # ties: the first candidate
    choice = np.where(follows, np.r_[0, choice[:-1]], choice)
    pick = np.arange(choice.size)
    reads, writes, weight_dram = reads_c[choice, pick], writes_c[choice, pick], \
        weights_c[choice, pick]
    order, placement = order_of[choice], place_of[choice]
    return MemoryTraffic(
        weight_value_reads=values * mapping.weight_set_reads,
        weight_metadata_reads=metadata * mapping.weight_set_reads,
        weight_writes=weight_dram,
        spike_reads=np.where(spike_input, input_reads, 0.0)
        + operand_step * mapping.weight_set_reads + pool_input,
        spike_writes=spikes_out,
        global_reads=np.where(spike_input, 0.0, input_reads) + psum_round_trips + sums_read
        + residual_rmw,
        global_writes=psum_round_trips + result_bits + residual_rmw,
        membrane_reads=membrane_reads,
        membrane_writes=membrane_writes,
        dram_reads=reads,
        dram_writes=writes,
        weight_dram=weight_dram,
        loop_order=order,
        time_placement=placement,
    )


@dataclass(frozen=True)
class _TraceTerms:
    """Bits that depend on the trace alone (and the real-value width), cached per trace."""

    input_row_bits: np.ndarray  # GEMM inputs read once per fold of N: x input_reuse
    operand_step: np.ndarray  # attention's K / V spikes, per timestep
    outputs: np.ndarray  # GEMM outputs, all timesteps
    pool_input: np.ndarray  # max-pool and scorer spikes read
    spikes_out: np.ndarray  # LIF and max-pool spikes written
    spike_input_once: np.ndarray  # GEMM spike inputs, each once
    global_input_once: np.ndarray  # GEMM integer / rate / real inputs, each once
    global_input_step: np.ndarray  # the same, one timestep
    spike_live_step: np.ndarray  # spikes live at the row, one timestep (Q·Kᵀ: Q, K and V)


def _trace_terms(table: LayerTable, act_bits: np.ndarray) -> _TraceTerms:
    gemm, steps = table.is_gemm, table.timesteps
    spike_input = table.value_kind == SPIKE
    input_once = np.where(gemm, table.in_numel * steps * act_bits, 0.0)
    operand_step = np.where(gemm & table.is_attention,
                            table.groups * table.k * table.n * SPIKE_BITS, 0.0)  # K / V spikes
    pool_input = np.where(table.is_pool | (table.is_selector & ~gemm),
                          table.in_numel * steps * SPIKE_BITS, 0.0)
    spikes_out = np.where(table.is_lif | table.is_pool,
                          table.out_numel * steps * SPIKE_BITS, 0.0)
    global_input_once = np.where(~spike_input & gemm, input_once, 0.0)
    return _TraceTerms(
        input_row_bits=np.where(gemm, steps * table.groups * table.m * table.k * act_bits, 0.0),
        operand_step=operand_step,
        outputs=np.where(gemm, table.groups * table.m * table.n * table.gemm_extra, 0.0) * steps,
        pool_input=pool_input,
        spikes_out=spikes_out,
        spike_input_once=np.where(spike_input & gemm, input_once, 0.0),
        global_input_once=global_input_once,
        global_input_step=global_input_once / steps,
        spike_live_step=(np.where(spike_input & gemm, table.in_numel, 0.0)
                         + (pool_input + spikes_out) / steps + operand_step
                         + np.where(table.kinds == "attn_qk", operand_step, 0.0)),  # + V
    )


def spill_fraction(live_bits: np.ndarray, buffer: BufferConfig) -> np.ndarray:
    """Fraction of a working set that does not fit in `buffer` (0 when it fits)."""
    capacity = buffer.size_kib * BITS_PER_KIB
    safe = np.where(live_bits > 0, live_bits, 1.0)
    return np.where(live_bits > capacity, 1.0 - capacity / safe, 0.0)


def dram_bits_per_cycle(hw: HwConfig) -> float:
    # Gbit/s over MHz: (bandwidth_gbps * 1e9 bit/s) / (clock_mhz * 1e6 cycle/s)
    return hw.dram.bandwidth_gbps * 1e3 / hw.clock_mhz


def _sram_cycles(bits: np.ndarray, buffer: BufferConfig | WeightMemoryConfig) -> np.ndarray:
    return bits / (buffer.banks * buffer.word_bits)


def memory_cycles(traffic: MemoryTraffic, hw: HwConfig
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(memory-bound cycles, DRAM stall cycles, per-level cycles (5, L)) per layer; levels:
    weight memory, spike, global and membrane buffers, DRAM."""
    weight_bits = (traffic.weight_value_reads + traffic.weight_metadata_reads
                   + traffic.weight_writes)
    dram_bits = traffic.dram_reads + traffic.dram_writes
    per_level = np.stack((
        _sram_cycles(weight_bits, hw.weight_memory),
        _sram_cycles(traffic.spike_reads + traffic.spike_writes, hw.spike_buffer),
        _sram_cycles(traffic.global_reads + traffic.global_writes, hw.global_buffer),
        _sram_cycles(traffic.membrane_reads + traffic.membrane_writes, hw.membrane_buffer),
        dram_bits / dram_bits_per_cycle(hw),
    ))
    bound = per_level.max(axis=0)
    first_tile = hw.pe_array.rows * hw.pe_array.cols * hw.weight_memory.value_bits
    stall = np.minimum(dram_bits, first_tile) / dram_bits_per_cycle(hw)
    return bound, stall, per_level


def memory_activities(traffic: MemoryTraffic, hw: HwConfig) -> list[Activity]:
    def sram(component: str, action: str, bits: np.ndarray,
             buffer: BufferConfig | WeightMemoryConfig, energy_pj: float) -> Activity:
        words = bits / buffer.word_bits
        return Activity(component, action, words, words * energy_pj, words / buffer.banks)

    wm, sb, gb, mb = hw.weight_memory, hw.spike_buffer, hw.global_buffer, hw.membrane_buffer
    bits_per_cycle = dram_bits_per_cycle(hw)
    return [
        sram("weight_memory", "read_values", traffic.weight_value_reads, wm, wm.read_pj),
        sram("weight_memory", "read_metadata", traffic.weight_metadata_reads, wm, wm.read_pj),
        sram("weight_memory", "write", traffic.weight_writes, wm, wm.write_pj),
        sram("spike_buffer", "read", traffic.spike_reads, sb, sb.read_pj),
        sram("spike_buffer", "write", traffic.spike_writes, sb, sb.write_pj),
        sram("global_buffer", "read", traffic.global_reads, gb, gb.read_pj),
        sram("global_buffer", "write", traffic.global_writes, gb, gb.write_pj),
        sram("membrane_buffer", "read", traffic.membrane_reads, mb, mb.read_pj),
        sram("membrane_buffer", "write", traffic.membrane_writes, mb, mb.write_pj),
        Activity("dram", "read", traffic.dram_reads,
                 traffic.dram_reads * hw.dram.energy_pj_per_bit,
                 traffic.dram_reads / bits_per_cycle),
        Activity("dram", "write", traffic.dram_writes,
                 traffic.dram_writes * hw.dram.energy_pj_per_bit,
                 traffic.dram_writes / bits_per_cycle),
    ]


__all__ = ["weight_storage_bits", "rle_fill_entries", "activation_bits", "MemoryTraffic",
           "memory_traffic", "weight_stored_bits", "spill_fraction", "dram_bits_per_cycle",
           "memory_cycles",
           "memory_activities"]
