"""What a simulation returns: per-layer x component x action records and totals.

Components report `Activity` records: for one (component, action), arrays over layers of
the action count, its energy and the cycles it keeps the component busy. `SimResult` keeps
them as arrays and builds its DataFrames only when asked, so a sweep that reads `totals`
never pays for pandas.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

LAYER_COLUMNS = ("layer", "kind", "block", "component", "action", "count", "energy_pj",
                 "cycles")
RESIDENCY_COLUMNS = ("tensor", "stored_bits", "resident_bits", "fetches_per_inference")


class Activity(NamedTuple):
    """One component action over all layers, each field shape (L,).

    `count` is in the action's natural unit: operations, updates, word accesses of the
    memory's `word_bits`, or bits for DRAM; `cycles` is how long the action keeps its
    component busy in the layer (0 where it overlaps another action of the component).
    """

    component: str
    action: str
    count: np.ndarray
    energy_pj: np.ndarray
    cycles: np.ndarray


class SimResult:
    """The outcome of `simulate(trace, hw)`.

    * `totals`: dict of floats (see `engine.TOTAL_KEYS`);
    * `layers`: tidy DataFrame, one row per layer x component x action with a non-zero
      count or energy (columns `LAYER_COLUMNS`);
    * `per_layer`: one row per layer: energy, latency and where its cycles come from, the
      fold-loop order used and whether it is fused with the next row;
    * `residency`: the whole-model weight residency plan (residency.py), one row per static
      weight tensor: `tensor`, `stored_bits`, `resident_bits`, `fetches_per_inference`.
      The breakdown (`layers`) carries the same bits as the weight memory's `stored_bits` and
      `resident_bits` actions (no energy, no cycles).
    """

    def __init__(self, *, hw_name: str, trace_origin: str, names: np.ndarray,
                 kinds: np.ndarray, blocks: np.ndarray, activities: list[Activity],
                 per_layer_columns: dict[str, Any], totals: dict[str, float],
                 residency: Any = None) -> None:
        self.hw_name = hw_name
        self._residency = residency  # a DataFrame, or a callable building it (lazily)
        self.trace_origin = trace_origin
        self.totals = totals
        self._names, self._kinds, self._blocks = names, kinds, blocks
        self._activities = tuple(activities)
        self._per_layer_columns = per_layer_columns

    def __repr__(self) -> str:
        return (f"SimResult(hw={self.hw_name!r}, layers={len(self._names)}, "
                f"energy_pj={self.totals['energy_pj']:.4g}, "
                f"latency_s={self.totals['latency_s']:.4g})")

    @cached_property
    def layers(self) -> pd.DataFrame:
        actions = len(self._activities)
        count = np.stack([a.count for a in self._activities], axis=1).ravel()  # (L*A,)
        energy = np.stack([a.energy_pj for a in self._activities], axis=1).ravel()
        cycles = np.stack([a.cycles for a in self._activities], axis=1).ravel()
        keep = (count != 0) | (energy != 0)
        frame = pd.DataFrame({
            "layer": np.repeat(self._names, actions)[keep],
            "kind": np.repeat(self._kinds, actions)[keep],
            "block": np.repeat(self._blocks, actions)[keep],
            "component": np.tile([a.component for a in self._activities],
                                 len(self._names))[keep],
            "action": np.tile([a.action for a in self._activities], len(self._names))[keep],
            "count": count[keep],
            "energy_pj": energy[keep],
            "cycles": cycles[keep],
        })
        return frame.reset_index(drop=True)

    @cached_property
    def per_layer(self) -> pd.DataFrame:
        frame = pd.DataFrame({"layer": self._names, "kind": self._kinds,
                              "block": self._blocks})
        for name, values in self._per_layer_columns.items():
            frame[name] = values() if callable(values) else values
        return frame

    @cached_property
    def residency(self) -> pd.DataFrame:
        value = self._residency() if callable(self._residency) else self._residency
        return value if value is not None else pd.DataFrame(columns=list(RESIDENCY_COLUMNS))

    def to_dict(self, *, per_layer: bool = False) -> dict[str, Any]:
        """JSON-ready: totals, and optionally the per-layer table as records."""
        data: dict[str, Any] = {"hw": self.hw_name, "trace": self.trace_origin,
                                "totals": dict(self.totals)}
        if per_layer:
            data["per_layer"] = self.per_layer.to_dict(orient="records")
            data["residency"] = self.residency.to_dict(orient="records")
        return data


__all__ = ["Activity", "SimResult", "LAYER_COLUMNS", "RESIDENCY_COLUMNS"]
