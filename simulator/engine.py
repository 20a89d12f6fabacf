"""`simulate(trace, hw)`: per-layer action counts -> energy and cycles -> totals.

For every layer at once (numpy arrays over the layer table, no per-layer Python objects):

1. PE array work (pe_array.py): operations issued and operations that cost energy, from the
   trace's exact counts and the sparsity policies;
2. mapping (mapping.py): folds, fill/drain and streamed length on the R x C array; the
   streamed part scales with the issued work and the load imbalance of the trace's
   per-(timestep, token) events and per-channel non-zeros;
3. LIF updates (neuron_unit.py), top-k compares (selector_unit.py), max-pool compares;
4. memory traffic per level and DRAM spills (memory.py);
5. layer latency = max(compute, memory bandwidth) + DRAM stall; energy = counts x per-action
   energy + leakage x latency.

Per-sample latency scales each layer's streamed work by that sample's events (or effective
ops) over the mean, which gives the latency percentiles.
"""

from __future__ import annotations

import numpy as np

from sparsespikformer.simulator.config import HwConfig
from sparsespikformer.simulator.errors import HwConfigError
from sparsespikformer.simulator.layer_table import REAL, LayerTable, layer_table
from sparsespikformer.simulator.mapping import DATAFLOW_CODES, gemm_compute_cycles, map_gemms
from sparsespikformer.simulator.memory import memory_activities, memory_cycles, memory_traffic
from sparsespikformer.simulator.neuron_unit import neuron_activities, neuron_work
from sparsespikformer.simulator.pe_array import (
    PeWork,
    pe_activities,
    pe_work,
    pool_cycles,
    streamed_work,
)
from sparsespikformer.simulator.result import Activity, SimResult
from sparsespikformer.simulator.selector_unit import selector_activities, selector_work
from sparsespikformer.simulator.trace import Trace

PJ_PER_MILLIJOULE = 1e9  # leakage: mW x s = mJ
OPS_PER_GIGAOP = 1e9
HZ_PER_MHZ = 1e6
LATENCY_PERCENTILES = (50, 95)
COMPONENTS = ("pe_array", "neuron_unit", "selector_unit", "weight_memory", "spike_buffer",
              "global_buffer", "membrane_buffer", "dram", "leakage")
TOTAL_KEYS = (
    "energy_pj", "latency_s", "cycles", "edp_pj_s", "utilization", "dense_gflops",
    "effective_gflops", "sops", "effective_ops", "dram_bits", "area_mm2",
    "latency_p50_s", "latency_p95_s", "memory_bound_layers",
    *(f"energy_{component}_pj" for component in COMPONENTS),
)


def simulate(trace: Trace, hw: HwConfig) -> SimResult:
    """Energy, latency and per-layer breakdown of one inference (one sample) of `trace`.

    ValueError naming the config if a total overflows (an energy of 1e308 pJ, a bandwidth
    of 1e-300 Gb/s): inf or NaN would otherwise pass for a result.
    """
    # Overflow shows up once, as the error below, not as numpy warnings from deep inside.
    with np.errstate(over="ignore", invalid="ignore"):
        result = _simulate(trace, hw)
    _check_finite(result.totals, hw)
    return result


def _check_finite(totals: dict[str, float], hw: HwConfig) -> None:
    for key, value in totals.items():
        if key == "area_mm2" and np.isnan(value):  # NaN area: no component areas given
            continue
        if not np.isfinite(value):
            raise HwConfigError(f"{hw.source}: values overflow: {key} is {value} (is an energy, "
                             "clock, bandwidth or leakage value absurdly large or small?)")


def _simulate(trace: Trace, hw: HwConfig) -> SimResult:
    table = layer_table(trace)
    pe, policies = hw.pe_array, hw.policies
    dataflow = DATAFLOW_CODES[pe.dataflow]
    parallel = policies.time_handling == "parallel"

    work = pe_work(table, hw)
    mapping = map_gemms(table.m, table.n, table.k, table.groups, table.timesteps,
                        table.is_attention, rows=pe.rows, cols=pe.cols, dataflow=dataflow,
                        parallel_time=parallel)
    input_imbalance, weight_imbalance = table.imbalance(dataflow, pe.rows, pe.cols, parallel)
    ratio = streamed_work(work, input_imbalance, weight_imbalance)
    gemm_cycles = np.where(table.is_gemm, gemm_compute_cycles(
        mapping, ratio, work.units, table.gemm_extra), 0.0)
    compare_cycles = pool_cycles(work, hw)
    neurons = neuron_work(table, hw)
    selector = selector_work(table, hw)
    other_cycles = compare_cycles + neurons.cycles + selector.cycles
    compute = gemm_cycles + other_cycles

    traffic = memory_traffic(table, hw, mapping,
                             (neurons.membrane_read_bits, neurons.membrane_write_bits))
    bandwidth_cycles, stall = memory_cycles(traffic, hw)
    latency_cycles = np.ceil(np.maximum(compute, bandwidth_cycles) + stall)
    clock_hz = hw.clock_mhz * HZ_PER_MHZ
    leakage_pj = hw.total_leakage_mw * (latency_cycles / clock_hz) * PJ_PER_MILLIJOULE

    activities = [
        *pe_activities(work, gemm_cycles, compare_cycles, hw),
        *neuron_activities(neurons, hw),
        *selector_activities(selector, hw),
        *memory_activities(traffic, hw),
        Activity("leakage", "static", latency_cycles, leakage_pj, latency_cycles),
    ]
    energy = np.add.reduce([a.energy_pj for a in activities])
    sample_cycles = _sample_latency_cycles(table, work, mapping, ratio, other_cycles,
                                           bandwidth_cycles, stall)
    totals = _totals(table, hw, work, activities, energy, latency_cycles, sample_cycles,
                     traffic.dram_reads + traffic.dram_writes, bandwidth_cycles > compute)
    per_layer = {
        "energy_pj": energy,
        "cycles": latency_cycles,
        "latency_s": latency_cycles / clock_hz,
        "compute_cycles": compute,
        "memory_cycles": bandwidth_cycles,
        "stall_cycles": stall,
        "bound": np.where(bandwidth_cycles > compute, "memory", "compute"),
        "dense_macs": table.dense_macs,
        "ops": work.useful_ops,
        "dram_bits": traffic.dram_reads + traffic.dram_writes,
    }
    return SimResult(hw_name=hw.name or hw.source, trace_origin=trace.origin, names=table.names,
                     kinds=table.kinds, blocks=table.blocks, activities=activities,
                     per_layer_columns=per_layer, totals=totals)


def _sample_latency_cycles(table: LayerTable, work: PeWork, mapping, ratio: np.ndarray,
                           other_cycles: np.ndarray, bandwidth_cycles: np.ndarray,
                           stall: np.ndarray) -> np.ndarray:
    """(S,) total cycles of each traced sample: its events scale the skipped work."""
    if work.weight_skipped:
        scale = np.where(work.input_skipped[:, None], table.sample_ops_ratio, 1.0)
    else:
        scale = np.where(work.input_skipped[:, None], table.sample_events_ratio, 1.0)
    sample_ratio = ratio[:, None] * scale  # (L, S)
    sample_ratio = np.where(work.slot_ratio[:, None] <= 1.0, np.minimum(sample_ratio, 1.0),
                            sample_ratio)
    gemm = gemm_compute_cycles(mapping.per_sample(), sample_ratio, work.units[:, None],
                               table.gemm_extra[:, None])
    compute = np.where(table.is_gemm[:, None], gemm, 0.0) + other_cycles[:, None]
    layer_cycles = np.ceil(np.maximum(compute, bandwidth_cycles[:, None]) + stall[:, None])
    return layer_cycles.sum(axis=0)


def _totals(table: LayerTable, hw: HwConfig, work: PeWork, activities: list[Activity],
            energy: np.ndarray, latency_cycles: np.ndarray, sample_cycles: np.ndarray,
            dram_bits: np.ndarray, memory_bound: np.ndarray) -> dict[str, float]:
    clock_hz = hw.clock_mhz * HZ_PER_MHZ
    cycles = float(latency_cycles.sum())
    latency_s = cycles / clock_hz
    energy_pj = float(energy.sum())
    pe_cycles_busy = float((work.slots / work.units).sum())
    capacity = cycles * hw.pe_array.rows * hw.pe_array.cols
    p50, p95 = np.percentile(sample_cycles, LATENCY_PERCENTILES) / clock_hz
    totals = {
        "energy_pj": energy_pj,
        "latency_s": latency_s,
        "cycles": cycles,
        "edp_pj_s": energy_pj * latency_s,
        "utilization": pe_cycles_busy / capacity if capacity > 0 else 0.0,
        "dense_gflops": float(table.dense_macs.sum()) / OPS_PER_GIGAOP,
        "effective_gflops": float(work.useful_ops.sum()) / OPS_PER_GIGAOP,
        "sops": float(table.sops[table.value_kind != REAL].sum()),
        "effective_ops": float(table.effective_ops.sum()),
        "dram_bits": float(dram_bits.sum()),
        "area_mm2": hw.area_mm2,
        "latency_p50_s": float(p50),
        "latency_p95_s": float(p95),
        "memory_bound_layers": float(memory_bound.sum()),
    }
    by_component = dict.fromkeys(COMPONENTS, 0.0)
    for activity in activities:
        by_component[activity.component] += float(activity.energy_pj.sum())
    totals.update({f"energy_{name}_pj": value for name, value in by_component.items()})
    return totals


__all__ = ["simulate", "TOTAL_KEYS", "COMPONENTS"]
