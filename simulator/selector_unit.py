"""Token-selector unit: scores tokens (parameter-free scorers) and picks the top k.

A learned selector's scoring MLP is a GEMM and runs on the PE array like any layer. A
parameter-free scorer (firing rate, random) has no GEMM: this unit sums each token's inputs,
one add per input element and timestep (in_numel x T), `adders` per cycle, `add_pj` each.
Input sparsity as on the PE array: `gate` pays energy only for input events (the trace's
`sample_in_events`) but keeps every element's cycle; `skip` saves both.
Either way the unit then sorts the `tokens_in` scores once per selector (on its last row: a
learned selector is recorded as one row per linear): tokens x ceil(log2 tokens) compares (a
merge or bitonic sort), `comparators` per cycle, the energy table's `compare_pj` each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sparsespikformer.simulator.config import HwConfig
from sparsespikformer.simulator.layer_table import LayerTable
from sparsespikformer.simulator.result import Activity


@dataclass(frozen=True)
class SelectorWork:
    adds: np.ndarray
    compares: np.ndarray
    add_cycles: np.ndarray
    compare_cycles: np.ndarray

    @property
    def cycles(self) -> np.ndarray:
        return self.add_cycles + self.compare_cycles


def selector_work(table: LayerTable, hw: HwConfig) -> SelectorWork:
    unit = hw.selector_unit
    tokens = table.tokens_in
    depth = np.ceil(np.log2(np.maximum(tokens, 2.0)))
    compares = np.where(table.is_top_k, tokens * depth, 0.0)
    scorer = table.is_selector & ~table.is_gemm
    dense_adds = np.where(scorer, table.in_numel * table.timesteps, 0.0)
    event_adds = np.where(scorer, table.in_events, 0.0)
    mode = hw.policies.input_sparsity
    adds = dense_adds if mode == "none" else event_adds
    cycle_adds = event_adds if mode == "skip" else dense_adds
    return SelectorWork(adds=adds, compares=compares,
                        add_cycles=np.ceil(cycle_adds / unit.adders),
                        compare_cycles=np.ceil(compares / unit.comparators))


def selector_activities(work: SelectorWork, hw: HwConfig) -> list[Activity]:
    return [
        Activity("selector_unit", "add", work.adds, work.adds * hw.selector_unit.add_pj,
                 work.add_cycles),
        Activity("selector_unit", "compare", work.compares,
                 work.compares * hw.energy.compare_pj, work.compare_cycles),
    ]


__all__ = ["SelectorWork", "selector_work", "selector_activities"]
