"""The PE array: which operations a layer issues, which cost energy, which are skipped.

Every count comes from the trace's exact per-layer counts (docs/trace-format.md):
`dense_macs` D, `sops` (Σ value × dense fan-out), `effective_ops` (Σ value × non-zero fan-out),
`nonzero_pairs`, the input firing rate fr (fraction of non-zero inputs) and the operand
density d. Which count a layer uses depends on its input kind and the policies:

* accumulate path (spike inputs; integer and rate inputs under `integer_inputs: replay`):
  a value v is replayed as v accumulate events, a zero input takes one (empty) slot unless
  zeros are skipped:
      neither operand sparse   spike: D              integer/rate: (1 - fr)·D + sops
      inputs sparse            sops
      weights sparse           spike: D·d            integer/rate: (1 - fr)·D·d + effective_ops
      both                     effective_ops
* rate inputs (a time average of spikes, r = c / T) under `rate_inputs: counts` are replayed
  as their spike counts: r·T events per element (sops and effective_ops times the trace's T),
  then one shift per output (the division by T, priced as one accumulate: a shift by a
  constant costs no more than an add); under `rate_inputs: fraction` (the papers'
  convention) r costs r of an accumulate and no shift;
* multiplier path (real inputs; integer and rate under `integer_inputs: multiply`): one MAC
  per (input, weight) pair: D, fr·D, D·d, nonzero_pairs. With no multiplier in the PE
  (`multiply_units_per_pe: 0`) a real-valued MAC runs bit-serially: `real_value_bits`
  accumulates, each its own slot.

A replayed value v costs v slots under every policy: the load-imbalance stretch of a fold is
never capped at the dense length for replayed (integer, rate) inputs, only for 0/1 spikes and
multiplier MACs, whose rows can never exceed it.
"Sparse" for energy means `gate` or `skip` (a gated zero costs `gated_op_pj`, not the op);
for slots (cycles) only `skip` removes the zero. So `gate` saves energy, never cycles.
Max-pool rows use the PEs as comparators: 8 compares per output (Spikformer's 3x3 window).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sparsespikformer.simulator.config import HwConfig
from sparsespikformer.simulator.layer_table import RATE, REAL, SPIKE, LayerTable
from sparsespikformer.simulator.result import Activity

POOL_COMPARES_PER_OUTPUT = 8  # a 3x3 max-pool window: 8 compares per output element


@dataclass(frozen=True)
class PeWork:
    """What each layer asks of the PE array, shape (L,)."""

    accumulates: np.ndarray  # accumulate ops that cost energy
    multiplies: np.ndarray  # multiply-accumulates that cost energy
    gated: np.ndarray  # issued slots whose zero operand was gated
    slots: np.ndarray  # issued slots (in the units' own ops), what costs cycles
    useful_ops: np.ndarray  # MACs / accumulate events performed (bit-serial not expanded)
    units: np.ndarray  # units per PE working on the layer
    slot_ratio: np.ndarray  # slots / dense MACs: the streamed work relative to dense
    input_skipped: np.ndarray  # bool: zero inputs are skipped (cycles follow the input)
    weight_skipped: bool  # zero weights / K / V entries are skipped
    compares: np.ndarray  # max-pool compares
    shifts: np.ndarray  # rate inputs replayed as counts: one shift (divide by T) per output
    capped: np.ndarray  # bool: a fold never streams more than its dense length (not replay)


def _by_sparsity(inputs_sparse: np.ndarray, weights_sparse: bool, neither: np.ndarray,
                 inputs: np.ndarray, weights: np.ndarray, both: np.ndarray) -> np.ndarray:
    if weights_sparse:
        return np.where(inputs_sparse, both, weights)
    return np.where(inputs_sparse, inputs, neither)


def pe_work(table: LayerTable, hw: HwConfig) -> PeWork:
    policies, pe = hw.policies, hw.pe_array
    dense = np.where(table.is_gemm, table.dense_macs, 0.0)
    fr, density = table.in_nonzero_fraction, table.operand_density
    sops = np.where(table.is_gemm, table.sops, 0.0)
    effective = np.where(table.is_gemm, table.effective_ops, 0.0)
    pairs = np.where(table.is_gemm, table.nonzero_pairs, 0.0)
    real = table.value_kind == REAL
    spike = table.value_kind == SPIKE

    uses_multiplier = real | ((~spike) & (policies.integer_inputs == "multiply"))
    zero_slots = (1.0 - fr) * dense  # replayed zeros still take a slot when not skipped
    # rate r = c / T replayed as its c spike events (then one shift per output)
    counted = (table.value_kind == RATE) & ~uses_multiplier & (policies.rate_inputs == "counts")
    window = np.where(counted, table.window_steps, 1.0)
    sops, effective = sops * window, effective * window
    outputs = np.where(table.is_gemm, table.timesteps * table.groups * table.m * table.n, 0.0)
    shifts = np.where(counted, outputs, 0.0)
    acc = (np.where(spike, dense, zero_slots + sops), sops,
           np.where(spike, dense * density, zero_slots * density + effective), effective)
    mul = (dense, fr * dense, dense * density, pairs)
    paths = tuple(np.where(uses_multiplier, a, b) for a, b in zip(mul, acc))

    real_mode, other_mode = policies.real_input_sparsity, policies.input_sparsity
    input_sparse = np.where(real, real_mode != "none", other_mode != "none")
    input_skipped = np.where(real, real_mode == "skip", other_mode == "skip")
    weight_mode = policies.weight_sparsity
    active = _by_sparsity(input_sparse, weight_mode != "none", *paths)
    issued = _by_sparsity(input_skipped, weight_mode == "skip", *paths)

    bit_serial = uses_multiplier & (pe.multiply_units_per_pe == 0)
    expand = np.where(bit_serial, float(pe.real_value_bits), 1.0)
    on_multiplier = uses_multiplier & ~bit_serial
    units = np.where(on_multiplier, pe.multiply_units_per_pe, pe.accumulate_units_per_pe)
    slots = issued * expand + shifts
    return PeWork(
        accumulates=np.where(on_multiplier, 0.0, active * expand),
        multiplies=np.where(on_multiplier, active, 0.0),
        gated=(issued - active) * expand,
        slots=slots,
        useful_ops=active,
        units=units.astype(np.float64),
        slot_ratio=np.where(dense > 0, slots / np.where(dense > 0, dense, 1.0), 0.0),
        input_skipped=input_skipped,
        weight_skipped=weight_mode == "skip",
        compares=np.where(table.is_pool, POOL_COMPARES_PER_OUTPUT * table.out_numel
                          * table.timesteps, 0.0),
        shifts=shifts,
        capped=spike | uses_multiplier,
    )


def streamed_work(work: PeWork, input_imbalance: np.ndarray,
                  weight_imbalance: np.ndarray, volume: np.ndarray | float = 1.0) -> np.ndarray:
    """Streamed cycles per fold relative to dense: slot ratio x volume x load imbalance.

    Imbalance only applies to an operand whose zeros are skipped (otherwise every PE does
    the same dense work). Skipping never makes a fold of 0/1 spikes (or of multiplier MACs)
    longer than its dense length; a replayed value v always costs its v slots. Arguments
    broadcast: (L,) for the layer mean, (L, S) per sample with `volume` that sample's work
    over the mean.
    """
    slot_ratio, capped = work.slot_ratio, work.capped
    if np.ndim(input_imbalance) == 2:
        slot_ratio, capped = slot_ratio[:, None], capped[:, None]
        skipped, weight_imbalance = work.input_skipped[:, None], weight_imbalance[:, None]
    else:
        skipped = work.input_skipped
    ratio = slot_ratio * np.where(skipped, input_imbalance * volume, 1.0)
    if work.weight_skipped:
        ratio = ratio * weight_imbalance
    return np.where(capped & (slot_ratio <= 1.0), np.minimum(ratio, 1.0), ratio)


def pool_cycles(work: PeWork, hw: HwConfig) -> np.ndarray:
    pes = hw.pe_array.rows * hw.pe_array.cols
    return np.ceil(work.compares / pes)


def pe_activities(work: PeWork, compute_cycles: np.ndarray, compare_cycles: np.ndarray,
                  hw: HwConfig) -> list[Activity]:
    energy = hw.energy
    on_multiplier = work.multiplies > 0
    return [
        Activity("pe_array", "accumulate", work.accumulates,
                 work.accumulates * energy.accumulate_pj,
                 np.where(on_multiplier, 0.0, compute_cycles)),
        Activity("pe_array", "multiply_accumulate", work.multiplies,
                 work.multiplies * energy.multiply_accumulate_pj,
                 np.where(on_multiplier, compute_cycles, 0.0)),
        Activity("pe_array", "gated", work.gated, work.gated * energy.gated_op_pj,
                 np.zeros_like(compute_cycles)),
        Activity("pe_array", "compare", work.compares, work.compares * energy.compare_pj,
                 compare_cycles),
        Activity("pe_array", "shift", work.shifts, work.shifts * energy.accumulate_pj,
                 np.zeros_like(compute_cycles)),
    ]


__all__ = ["PeWork", "pe_work", "streamed_work", "pool_cycles", "pe_activities",
           "POOL_COMPARES_PER_OUTPUT"]
