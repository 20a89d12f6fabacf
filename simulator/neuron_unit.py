"""LIF neuron units: one membrane update per output neuron per timestep.

Updates = out_numel x timesteps on `lif` rows; each costs `update_pj` and each output spike
(out_nonzero_fraction of the updates) another `spike_pj`. `count` units do `updates_per_cycle`
each per cycle. Serial time handling keeps membrane potentials in the membrane buffer
between timesteps: each neuron's potential is written after every timestep but the last and
read back before every timestep but the first (it starts from reset), out_numel x (T - 1)
reads and writes of `membrane_bits`. Time-parallel processing runs a neuron's T timesteps
back to back in the unit's register: no membrane buffer traffic. (Where the membranes live,
and so what spills, is the schedule's: schedule.py.)

Residual adds: a LIF whose spikes join the residual stream (schedule.py: the attention
projection's, fc2's and the position embedding's) adds each output spike into the stream
value in place, one add (`energy.residual_add_pj`) per spike (per output when input sparsity
is `none`), in the neuron units' cycles; the read-modify-write traffic is memory.py's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sparsespikformer.simulator.config import HwConfig
from sparsespikformer.simulator.layer_table import LayerTable
from sparsespikformer.simulator.result import Activity


@dataclass(frozen=True)
class NeuronWork:
    updates: np.ndarray
    spikes: np.ndarray
    membrane_read_bits: np.ndarray
    membrane_write_bits: np.ndarray
    residual_adds: np.ndarray
    cycles: np.ndarray


def neuron_work(table: LayerTable, hw: HwConfig,
                residual_add: np.ndarray | None = None) -> NeuronWork:
    unit = hw.neuron_unit
    updates = np.where(table.is_lif, table.out_numel * table.timesteps, 0.0)
    adds_per_update = 1.0 if hw.policies.input_sparsity == "none" else table.out_nonzero_fraction
    residual_adds = np.zeros_like(updates) if residual_add is None else \
        np.where(residual_add, updates * adds_per_update, 0.0)
    if hw.policies.time_handling == "serial":
        carried = np.where(table.is_lif, table.out_numel * (table.timesteps - 1.0), 0.0)
    else:
        carried = np.zeros_like(updates)
    membrane_bits = carried * unit.membrane_bits
    return NeuronWork(
        updates=updates,
        spikes=updates * table.out_nonzero_fraction,
        membrane_read_bits=membrane_bits,
        membrane_write_bits=membrane_bits,
        residual_adds=residual_adds,
        cycles=np.ceil((updates + residual_adds) / (unit.count * unit.updates_per_cycle)),
    )


def neuron_activities(work: NeuronWork, hw: HwConfig) -> list[Activity]:
    unit = hw.neuron_unit
    return [
        Activity("neuron_unit", "update", work.updates, work.updates * unit.update_pj,
                 work.cycles),
        Activity("neuron_unit", "spike", work.spikes, work.spikes * unit.spike_pj,
                 np.zeros_like(work.cycles)),
        Activity("neuron_unit", "residual_add", work.residual_adds,
                 work.residual_adds * hw.energy.residual_add_pj, np.zeros_like(work.cycles)),
    ]


__all__ = ["NeuronWork", "neuron_work", "neuron_activities"]
