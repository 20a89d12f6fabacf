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

from sparsespikformer.simulator.config import BITS_PER_KIB, HwConfig
from sparsespikformer.simulator.errors import HwConfigError
from sparsespikformer.simulator.layer_table import REAL, LayerTable, layer_table
from sparsespikformer.simulator.mapping import DATAFLOW_CODES, gemm_compute_cycles, map_gemms
from sparsespikformer.simulator.memory import (
    MemoryTraffic,
    activation_bits,
    dram_bits_per_cycle,
    memory_activities,
    memory_cycles,
    memory_traffic,
    weight_stored_bits,
)
from sparsespikformer.simulator.neuron_unit import neuron_activities, neuron_work
from sparsespikformer.simulator.pe_array import (
    PeWork,
    pe_activities,
    pe_work,
    pool_cycles,
    streamed_work,
)
from sparsespikformer.simulator.residency import ResidencyPlan, plan_residency
from sparsespikformer.simulator.result import Activity, SimResult
from sparsespikformer.simulator.schedule import (
    INPUTS_OUTER,
    INSIDE,
    WEIGHTS_OUTER,
    Schedule,
    build_schedule,
)
from sparsespikformer.simulator.selector_unit import selector_activities, selector_work
from sparsespikformer.simulator.timing import layer_cycles
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
    "batch", "batch_latency_s", "stored_weight_bits", "resident_weight_bits",
    "weight_dram_bits", "cold_energy_pj", "cold_latency_s", "cold_dram_bits",
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
    input_imbalance, weight_imbalance, sample_imbalance = table.imbalance(
        dataflow, pe.rows, pe.cols, parallel)
    ratio = streamed_work(work, input_imbalance, weight_imbalance)
    gemm_cycles = np.where(table.is_gemm, gemm_compute_cycles(
        mapping, ratio, work.units, table.gemm_extra), 0.0)
    compare_cycles = pool_cycles(work, hw)
    act_bits = activation_bits(table, pe.real_value_bits)
    schedule = build_schedule(table, hw, mapping, act_bits)
    neurons = neuron_work(table, hw, schedule.residual_add)
    selector = selector_work(table, hw)
    other_cycles = compare_cycles + neurons.cycles + selector.cycles
    compute = gemm_cycles + other_cycles

    plan = weight_residency(table, hw, schedule)
    traffic = memory_traffic(table, hw, mapping, schedule, plan,
                             (neurons.membrane_read_bits, neurons.membrane_write_bits),
                             neurons.residual_adds, act_bits)
    bandwidth_cycles, stall, levels = memory_cycles(traffic, hw)
    fill = np.ceil(schedule.tile_neurons / (hw.neuron_unit.count
                                            * hw.neuron_unit.updates_per_cycle))
    latency_cycles = layer_cycles(compute, levels, stall, schedule.fused, fill)
    clock_hz = hw.clock_mhz * HZ_PER_MHZ
    leakage_pj = leakage_energy_pj(hw, latency_cycles / clock_hz)

    activities = [
        *pe_activities(work, gemm_cycles, compare_cycles, hw),
        *neuron_activities(neurons, hw),
        *selector_activities(selector, hw),
        *memory_activities(traffic, hw),
        Activity("leakage", "static", latency_cycles, leakage_pj, latency_cycles),
        *residency_activities(plan),
    ]
    energy = np.add.reduce([a.energy_pj for a in activities])
    volume = table.sample_ops_ratio if work.weight_skipped else table.sample_events_ratio
    sample_ratio = streamed_work(work, sample_imbalance, weight_imbalance, volume)
    sample_gemm = gemm_compute_cycles(mapping.per_sample(), sample_ratio, work.units[:, None],
                                      table.gemm_extra[:, None])
    sample_compute = np.where(table.is_gemm[:, None], sample_gemm, 0.0) + other_cycles[:, None]
    sample_cycles = layer_cycles(sample_compute, levels, stall, schedule.fused, fill).sum(0)
    dram_bits = traffic.dram_reads + traffic.dram_writes
    totals = _totals(table, hw, work, activities, energy, latency_cycles, sample_cycles,
                     dram_bits, bandwidth_cycles > compute)
    totals.update(_cold_start(hw, plan, totals, traffic))
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
        "dram_bits": dram_bits,
        "weight_dram_bits": traffic.weight_dram,
        "resident_weight_bits": plan.resident_bits,
        "loop_order": lambda: np.where(table.is_gemm, np.where(
            traffic.loop_order == INPUTS_OUTER, "inputs_outer", "weights_outer"), ""),
        "time_loop": lambda: np.where(table.is_gemm, _time_loop_names(hw, traffic), ""),
        "fused_with_next": schedule.fused,
    }
    return SimResult(hw_name=hw.name or hw.source, trace_origin=trace.origin, names=table.names,
                     kinds=table.kinds, blocks=table.blocks, activities=activities,
                     per_layer_columns=per_layer, totals=totals,
                     residency=lambda: plan.table(table.names))


def weight_residency(table: LayerTable, hw: HwConfig, schedule: Schedule) -> ResidencyPlan:
    """The whole-model plan (residency.py) for this config's capacity and schedule."""
    values, metadata = weight_stored_bits(table, hw)
    order = INPUTS_OUTER if hw.schedule.loop_order == "inputs_outer" else WEIGHTS_OUTER
    runs = schedule.fetch_runs[schedule.placements[0]]  # the fewest the schedule allows
    fetches = runs * schedule.weight_factor[order] / schedule.batch
    capacity = hw.weight_memory.size_kib * BITS_PER_KIB
    return plan_residency(values + metadata, np.where(values > 0, fetches, 0.0), capacity)


def _time_loop_names(hw: HwConfig, traffic: MemoryTraffic) -> np.ndarray:
    """Where each GEMM's timestep loop ran: stacked (parallel), network, or per layer."""
    if hw.policies.time_handling == "parallel":
        return np.full(traffic.time_placement.shape, "stacked")
    if hw.schedule.time_loop == "network":
        return np.full(traffic.time_placement.shape, "network")
    return np.where(traffic.time_placement == INSIDE, "inside_tile", "outside_folds")


def residency_activities(plan: ResidencyPlan) -> list[Activity]:
    """The plan in the breakdown: bits stored and resident per tensor (no energy, no time)."""
    zeros = np.zeros_like(plan.stored_bits)
    return [Activity("weight_memory", "stored_bits", plan.stored_bits, zeros, zeros),
            Activity("weight_memory", "resident_bits", plan.resident_bits, zeros, zeros)]


def leakage_energy_pj(hw: HwConfig, seconds: float | np.ndarray) -> float | np.ndarray:
    """Static energy (pJ) of the chip over `seconds`: logic plus every SRAM's leakage (mW);
    mW x s = mJ = 1e9 pJ."""
    return hw.total_leakage_mw * seconds * PJ_PER_MILLIJOULE


def _cold_start(hw: HwConfig, plan: ResidencyPlan, totals: dict[str, float],
                traffic: MemoryTraffic) -> dict[str, float]:
    """Batch, weight bits, and the first batch's per-inference cost: the resident weights are
    loaded once from DRAM (DRAM pJ/bit, then weight-memory writes) before it starts, the
    chip leaking meanwhile; that one-off cost is shared by the batch's inferences."""
    batch = hw.schedule.batch
    resident = float(plan.resident_bits.sum())
    wm = hw.weight_memory
    load_s = resident / dram_bits_per_cycle(hw) / (hw.clock_mhz * HZ_PER_MHZ)
    # the chip leaks while it waits for the load, as during any other cycle
    load_pj = (resident * hw.dram.energy_pj_per_bit + resident / wm.word_bits * wm.write_pj
               + leakage_energy_pj(hw, load_s))
    return {
        "batch": float(batch),
        "batch_latency_s": totals["latency_s"] * batch,
        "stored_weight_bits": float(plan.stored_bits.sum()),
        "resident_weight_bits": resident,
        "weight_dram_bits": float(traffic.weight_dram.sum()),
        "cold_energy_pj": totals["energy_pj"] + load_pj / batch,
        "cold_latency_s": totals["latency_s"] + load_s / batch,
        "cold_dram_bits": totals["dram_bits"] + resident / batch,
    }


def _percentiles(values: np.ndarray, percents: tuple[int, ...]) -> np.ndarray:
    """numpy's default ('linear') percentiles of a small 1-D array, without its overhead."""
    ordered = np.sort(values)
    position = np.asarray(percents, dtype=np.float64) / 100.0 * (ordered.size - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, ordered.size - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _totals(table: LayerTable, hw: HwConfig, work: PeWork, activities: list[Activity],
            energy: np.ndarray, latency_cycles: np.ndarray, sample_cycles: np.ndarray,
            dram_bits: np.ndarray, memory_bound: np.ndarray) -> dict[str, float]:
    clock_hz = hw.clock_mhz * HZ_PER_MHZ
    cycles = float(latency_cycles.sum())
    latency_s = cycles / clock_hz
    energy_pj = float(energy.sum())
    pe_cycles_busy = float((work.slots / work.units).sum())
    capacity = cycles * hw.pe_array.rows * hw.pe_array.cols
    p50, p95 = _percentiles(sample_cycles, LATENCY_PERCENTILES) / clock_hz
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
