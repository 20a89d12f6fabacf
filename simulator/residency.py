"""Whole-model weight residency: which weight tensors (or parts) stay in the weight memory.

One plan per (trace, config), for the whole model under the weight memory's capacity C (bits):
every static weight tensor i has `stored_i` bits in the memory's format (memory.py) and, if
not resident, is fetched from DRAM `f_i` times per inference (the schedule's fetch runs of
the weights-outer loop order, or of the config's fixed order, over the batch). Keeping b bits
of tensor i resident saves b·f_i DRAM bits per inference, so the plan maximises
Σ resident_i·f_i subject to Σ resident_i <= C, 0 <= resident_i <= stored_i: a fractional
knapsack, which the greedy fill solves exactly for those f_i. The f_i are those of the
weights-outer order (or the config's fixed order); with `loop_order: auto` the mapper picks
each layer's order afterwards (memory.py), so the plan is optimal for the assumed order, not
over every order a layer could take. Tensors are filled in order of f_i (DRAM bits
saved per resident bit), highest first, ties in execution order; the last one that does not
fit is resident in part (its first resident_i bits), the rest streams.

Resident bits are loaded once (the first, cold inference) and stay across inferences; the
rest streams from DRAM, and is written into the weight memory, every time the mapping
fetches it. The staging space of streamed tiles (one fold's weights) is not taken from C.
Vectorised: one sort over the layers, no loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ResidencyPlan:
    """Per-layer bits, shape (L,): zero for layers without static weights."""

    stored_bits: np.ndarray
    resident_bits: np.ndarray
    fetches_per_inference: np.ndarray  # the ranking f_i

    @property
    def streamed_bits(self) -> np.ndarray:
        """Bits of each tensor that are not resident (fetched `f_i` times per inference)."""
        return self.stored_bits - self.resident_bits

    def table(self, names: np.ndarray) -> pd.DataFrame:
        """The `residency` table: tensor, stored bits, resident bits (static weights only)."""
        keep = self.stored_bits > 0
        return pd.DataFrame({"tensor": names[keep], "stored_bits": self.stored_bits[keep],
                             "resident_bits": self.resident_bits[keep],
                             "fetches_per_inference": self.fetches_per_inference[keep]})


def plan_residency(stored_bits: np.ndarray, fetches_per_inference: np.ndarray,
                   capacity_bits: float) -> ResidencyPlan:
    """The greedy plan of the module docstring (optimal for its fetch counts f_i)."""
    stored = np.asarray(stored_bits, dtype=np.float64)
    fetches = np.asarray(fetches_per_inference, dtype=np.float64)
    order = np.lexsort((np.arange(stored.size), -fetches))  # f_i descending, then position
    filled_before = np.cumsum(stored[order]) - stored[order]
    resident = np.empty_like(stored)
    resident[order] = np.clip(capacity_bits - filled_before, 0.0, stored[order])
    return ResidencyPlan(stored_bits=stored, resident_bits=resident,
                         fetches_per_inference=fetches)


__all__ = ["ResidencyPlan", "plan_residency"]
