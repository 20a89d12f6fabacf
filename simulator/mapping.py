"""Mapping a layer's GEMM onto the R x C PE array: folds, fill/drain, stream length, reuse.

Every multiplying layer is `groups` GEMMs of an (M x K) input by a (K x N) operand per
timestep (docs/trace-format.md). On a systolic array SCALE-Sim v2 (docs/references.md) maps
them as (Sr rows, Sc columns, T streamed):

    weight_stationary  Sr = K, Sc = N, T = M      fill/drain 2R + C - 2
    input_stationary   Sr = K, Sc = M, T = N      fill/drain 2R + C - 2
    output_stationary  Sr = M, Sc = N, T = K      fill/drain  R + C - 2

and with no memory stalls one GEMM takes (fill/drain + T) * ceil(Sr/R) * ceil(Sc/C) - 1
cycles; a layer runs `groups` such GEMMs per timestep (per inference with time in
parallel). This module generalises the streamed part only: `T` shrinks by the fraction of
operations the sparsity policy lets the array skip (times a load-imbalance factor) and is
divided by the units per PE. With no sparsity and one unit per PE it is SCALE-Sim's form.

Time handling: `serial` runs the GEMM once per timestep (each run re-reads the weights);
`parallel` stacks the T timesteps into the M dimension, so one weight fetch serves all T.
Attention has no static operand (K and V change every timestep), so it is always serial.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

WEIGHT_STATIONARY, OUTPUT_STATIONARY, INPUT_STATIONARY = 0, 1, 2
DATAFLOW_CODES = {
    "weight_stationary": WEIGHT_STATIONARY,
    "output_stationary": OUTPUT_STATIONARY,
    "input_stationary": INPUT_STATIONARY,
}


def scalesim_cycles(m: int, n: int, k: int, rows: int, cols: int, dataflow: str) -> int:
    """SCALE-Sim v2's stall-free cycle count of one (m x k) @ (k x n) GEMM."""
    code = DATAFLOW_CODES[dataflow]
    sr, sc, t = {WEIGHT_STATIONARY: (k, n, m), INPUT_STATIONARY: (k, m, n),
                 OUTPUT_STATIONARY: (m, n, k)}[code]
    fill = (rows if code == OUTPUT_STATIONARY else 2 * rows) + cols - 2
    return (fill + t) * -(-sr // rows) * -(-sc // cols) - 1


@dataclass(frozen=True)
class GemmMapping:
    """Per-layer mapping quantities, shape (L,), for one (trace, array) pair."""

    passes: np.ndarray  # GEMM runs: groups x (T when serial, else 1)
    time_passes: np.ndarray  # T when serial (or attention), 1 when parallel
    m_eff: np.ndarray  # rows of the input per run: M, or M x T when parallel
    stream: np.ndarray  # streamed dimension per fold (SCALE-Sim's T)
    folds: np.ndarray  # ceil(Sr/R) x ceil(Sc/C)
    fill_drain: np.ndarray  # pipeline fill and drain cycles per fold
    weight_set_reads: np.ndarray  # times the whole operand set is read per inference
    input_reuse: np.ndarray  # times each input element is read per run
    k_folds: np.ndarray  # partial-sum passes per output (K split over rows)

    def per_sample(self) -> GemmMapping:
        """Every field as an (L, 1) column, to broadcast against (L, S) per-sample arrays."""
        return GemmMapping(**{f.name: getattr(self, f.name)[:, None] for f in fields(self)})


def map_gemms(m: np.ndarray, n: np.ndarray, k: np.ndarray, groups: np.ndarray,
              timesteps: np.ndarray, is_attention: np.ndarray, *, rows: int, cols: int,
              dataflow: int, parallel_time: bool) -> GemmMapping:
    """Fold every layer's GEMM onto the array (arrays in, arrays out; no Python loop)."""
    parallel = ~is_attention if parallel_time else np.zeros_like(is_attention)
    time_passes = np.where(parallel, 1.0, timesteps)
    m_eff = np.where(parallel, m * timesteps, m)
    if dataflow == WEIGHT_STATIONARY:
        sr, sc, stream = k, n, m_eff
    elif dataflow == INPUT_STATIONARY:
        sr, sc, stream = k, m_eff, n
    else:
        sr, sc, stream = m_eff, n, k
    folds = np.ceil(sr / rows) * np.ceil(sc / cols)
    fill_drain = (rows if dataflow == OUTPUT_STATIONARY else 2 * rows) + cols - 2.0
    # How often the operand set is read per run: once if it is the stationary one,
    # otherwise once per fold of the dimension that shares the array with it.
    if dataflow == WEIGHT_STATIONARY:
        operand_reuse = np.ones_like(m)
        input_reuse = np.ceil(n / cols)
        k_folds = np.ceil(k / rows)
    elif dataflow == OUTPUT_STATIONARY:
        operand_reuse = np.ceil(m_eff / rows)
        input_reuse = np.ceil(n / cols)
        k_folds = np.ones_like(k)
    else:
        operand_reuse = np.ceil(m_eff / cols)
        input_reuse = np.ones_like(m)
        k_folds = np.ceil(k / rows)
    return GemmMapping(
        passes=groups * time_passes,
        time_passes=time_passes,
        m_eff=m_eff,
        stream=stream,
        folds=folds,
        fill_drain=np.full_like(m, fill_drain),
        weight_set_reads=operand_reuse * time_passes,
        input_reuse=input_reuse,
        k_folds=k_folds,
    )


def gemm_compute_cycles(mapping: GemmMapping, work_ratio: np.ndarray, units: np.ndarray,
                        extra: np.ndarray) -> np.ndarray:
    """Cycles of each layer's GEMM runs, each folds x (fill/drain + streamed work) - 1.

    `work_ratio` scales the streamed part (1 = dense); `units` are the units per PE working
    on it; `extra` stretches the whole (a learned selector's second, smaller linear).
    Arguments broadcast: (L,) mapping fields with (L, S) per-sample ratios take
    `mapping.per_sample()`.
    """
    per_fold = mapping.fill_drain + mapping.stream * work_ratio / units
    # SCALE-Sim's "- 1" belongs to every run (one GEMM per timestep and group), not the layer.
    return np.ceil(mapping.passes * mapping.folds * per_fold * extra) - mapping.passes


__all__ = ["WEIGHT_STATIONARY", "OUTPUT_STATIONARY", "INPUT_STATIONARY", "DATAFLOW_CODES",
           "scalesim_cycles", "GemmMapping", "map_gemms", "gemm_compute_cycles"]
