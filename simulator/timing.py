"""Layer latency from per-resource busy times, with fused GEMM->LIF pipelines.

A layer alone takes as long as the slower of its compute and its busiest memory level
(each level's bits over its bandwidth), plus the DRAM stall of its first tile (memory.py):

    cycles = ceil(max(compute, max over levels) + stall)

A GEMM fused with the LIF row after it (schedule.py, `lif_fusion: fused`) runs as one
pipeline: the neuron units consume each output tile while the array computes the next, and
both rows' traffic shares the memories. The pair takes as long as its busiest resource (the
PE array, the neuron units, each memory level with both rows' bits) plus the pipeline fill
(the last output tile's LIF updates, which cannot overlap the array), and never longer than
all resources one after another:

    pair = ceil(min(Σ resources, max resources + fill) + both stalls)

The GEMM row keeps its own latency; the LIF row gets the rest of the pair's. Unfused pairs are
two layers that run one after the other (their sums are parked in the global buffer).
"""

from __future__ import annotations

import numpy as np


def layer_cycles(compute: np.ndarray, levels: np.ndarray, stall: np.ndarray,
                 fused: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Cycles per layer, (L,) or (L, S) as `compute`.

    compute: (L,) or (L, S) compute cycles; levels: (K, L) busy cycles of each memory level;
    stall: (L,); fused: (L,) bool, GEMM rows fused with the next row; fill: (L,) pipeline
    fill cycles, on the LIF rows.
    """
    per_sample = compute.ndim == 2
    bound = levels.max(axis=0)
    cycles = np.ceil(np.maximum(compute, bound[:, None] if per_sample else bound)
                     + (stall[:, None] if per_sample else stall))
    gemm = np.flatnonzero(fused)
    if gemm.size == 0:
        return cycles
    lif = gemm + 1
    memories = levels[:, gemm] + levels[:, lif]  # (K, P): both rows' bits on each level
    memory_max, memory_sum = memories.max(axis=0), memories.sum(axis=0)
    stalls, fill_ = stall[gemm] + stall[lif], fill[lif]
    if per_sample:
        memory_max, memory_sum = memory_max[:, None], memory_sum[:, None]
        stalls, fill_ = stalls[:, None], fill_[:, None]
    busiest = np.maximum(np.maximum(compute[gemm], compute[lif]), memory_max)
    total = compute[gemm] + compute[lif] + memory_sum
    pair = np.ceil(np.minimum(total, busiest + fill_) + stalls)
    cycles[lif] = np.maximum(pair - cycles[gemm], 0.0)
    return cycles


__all__ = ["layer_cycles"]
