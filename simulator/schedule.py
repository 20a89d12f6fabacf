"""The schedule: the loop nest from which traffic, working sets and timing are all derived.

docs/schedule.md describes it in full. In short, per layer (arrays over the layer table):

* **Time loop.** `policies.time_handling: parallel` stacks the T timesteps into the GEMM's
  rows (one run per inference, no membrane traffic). Serial time runs one GEMM per timestep,
  either layer by layer (`schedule.time_loop: layer`: all T timesteps of a layer's
  activations are live between layers) or the whole network once per timestep (`network`:
  one timestep of activations is live, every LIF layer's membranes persist across the
  timestep boundary, every weight is fetched once per timestep). Layer by layer, the timestep
  loop sits *inside each output tile* (each weight fetched once per inference, one tile's
  membranes live, partial sums of all T timesteps live) or *outside the fold loops* (weights
  fetched per timestep, the layer's membranes live, one timestep's partial sums live):
  `schedule.time_placement`, or per layer the cheaper in DRAM bits (`auto`).
* **Fold-loop order** of each GEMM: the two outer fold loops (SCALE-Sim's Sr and Sc folds) run
  `weights_outer` (each weight fetched from its backing store once per run; inputs once per
  fold of the other dimension: `input_reuse`) or `inputs_outer` (inputs once per run, weights
  once per fold: the operand reuse). Weight and input stationary also change the partial-sum
  live set. `auto` picks per layer the order with fewer DRAM bits, as a mapper would.
* **Batch.** N inferences run each layer (each run) back to back: one weight fetch serves N,
  and N inferences' activations (and, streaming, membranes) are live together.
* **Live sets.** The residual stream is live across its block (read by Q/K/V and fc1,
  written by the residual adds after the attention projection's and fc2's LIFs, and after
  the position embedding's); at Q·Kᵀ, Q, K and V spikes and the attention map are live
  together. Spills are decided on these sets (memory.py).
* **Fusion.** With `lif_fusion: fused` a GEMM feeding a LIF hands over its sums and the pair
  runs as one pipeline (engine: bounded by its busiest resource plus the last tile's LIF
  updates); `unfused` parks the sums in the global buffer and runs the LIF afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sparsespikformer.simulator.config import HwConfig
from sparsespikformer.simulator.layer_table import INTEGER, RATE, SPIKE, LayerTable
from sparsespikformer.simulator.mapping import (
    INPUT_STATIONARY,
    OUTPUT_STATIONARY,
    WEIGHT_STATIONARY,
    GemmMapping,
)

WEIGHTS_OUTER, INPUTS_OUTER = 0, 1  # fold-loop orders
INSIDE, OUTSIDE = 0, 1  # timestep loop inside each output tile, or outside the fold loops


@dataclass(frozen=True)
class Schedule:
    """Per-layer schedule quantities, shape (L,) unless noted."""

    scope_steps: np.ndarray  # timesteps of activations live together between layers
    fetch_runs: tuple[np.ndarray, np.ndarray]  # weight fetch runs per batch, per placement
    placements: tuple[int, ...]  # the time placements this schedule allows
    batch: int
    residual_add: np.ndarray  # bool: LIF rows whose spikes are added into the residual stream
    residual_bits: np.ndarray  # the row's block residual stream, bits per timestep and sample
    residual_value_bits: float  # width of one residual-stream value (the integer inputs')
    input_is_residual: np.ndarray  # bool: the row reads the residual stream as its input
    fused: np.ndarray  # bool: GEMM rows whose sums go straight into the next (LIF) row
    unfused_sums: np.ndarray  # bool: LIF rows that read parked sums from the global buffer
    tile_neurons: np.ndarray  # LIF rows: neurons of one output tile of the feeding GEMM
    membrane_live_bits: tuple[np.ndarray, np.ndarray]  # LIF rows, per placement (bits)
    sums_steps: tuple[np.ndarray, np.ndarray]  # timesteps of parked sums live, per placement
    weight_factor: tuple[np.ndarray, np.ndarray]  # fetches of a weight per run, per order
    input_factor: tuple[np.ndarray, np.ndarray]  # fetches of an input per run, per order
    psum_live_bits: dict[tuple[int, int], np.ndarray]  # per (order, placement), bits


def build_schedule(table: LayerTable, hw: HwConfig, mapping: GemmMapping,
                   act_bits: np.ndarray) -> Schedule:
    pe, schedule = hw.pe_array, hw.schedule
    batch = schedule.batch
    parallel = hw.policies.time_handling == "parallel"
    network = not parallel and schedule.time_loop == "network"
    steps = table.timesteps
    ones = np.ones_like(steps)
    scope_steps = ones if network else steps.copy()

    residual_add, residual_bits, input_is_residual = table.cached(
        ("residual", pe.real_value_bits), lambda: _residual_stream(table, act_bits))
    feeds_lif = table.feeds_lif & table.is_gemm
    fused = feeds_lif & (schedule.lif_fusion == "fused")
    unfused_sums = np.r_[False, (feeds_lif & ~fused)[:-1]]
    tile_neurons = table.cached(("tile", pe.rows, pe.cols, pe.dataflow),
                                lambda: _lif_tile_neurons(table, pe.rows, pe.cols, pe.dataflow))
    bits = hw.neuron_unit.membrane_bits
    layer_membranes = np.where(table.is_lif, table.out_numel * bits * batch, 0.0)
    if parallel:  # one run with T stacked: a neuron's T updates back to back, no state stored
        placements, fetch, membrane = (INSIDE,), (ones, ones), (0.0 * ones, 0.0 * ones)
    elif network:  # every LIF layer's state survives each timestep boundary, for the batch
        total = float(layer_membranes.sum())
        placements, fetch = (OUTSIDE,), (steps, steps)
        membrane = (np.where(table.is_lif, total, 0.0),) * 2
    else:
        placements = {"auto": (INSIDE, OUTSIDE), "inside_tile": (INSIDE,),
                      "outside_folds": (OUTSIDE,)}[schedule.time_placement]
        fetch, membrane = (ones, steps), (tile_neurons * bits, layer_membranes)

    time_passes = np.maximum(mapping.time_passes, 1.0)
    operand_reuse = mapping.weight_set_reads / time_passes
    psum_bits = pe.psum_bits * (mapping.k_folds > 1)
    psum_live = {}
    for placement in (INSIDE, OUTSIDE):
        rows = table.m * (steps if placement == INSIDE and not network else ones)
        outer, inner = _psum_live(table, rows, pe.cols, pe.dataflow)
        psum_live[WEIGHTS_OUTER, placement] = outer * psum_bits
        psum_live[INPUTS_OUTER, placement] = inner * psum_bits
    return Schedule(
        scope_steps=scope_steps, fetch_runs=fetch, placements=placements, batch=batch,
        residual_add=residual_add, residual_bits=residual_bits,
        residual_value_bits=float(act_bits[input_is_residual].max(initial=1.0)),
        input_is_residual=input_is_residual, fused=fused, unfused_sums=unfused_sums,
        tile_neurons=tile_neurons, membrane_live_bits=membrane,
        sums_steps=(ones if network else steps, ones),
        weight_factor=(ones, operand_reuse),
        input_factor=(mapping.input_reuse, ones),
        psum_live_bits=psum_live,
    )


def _lif_tile_neurons(table: LayerTable, rows: int, cols: int, dataflow: str) -> np.ndarray:
    """On LIF rows: the neurons of one output tile of the GEMM feeding them."""
    tiles = np.r_[0.0, _tile_neurons(table, rows, cols, dataflow)[:-1]]
    return np.where(table.is_lif, np.minimum(tiles, table.out_numel), 0.0)


def _tile_neurons(table: LayerTable, rows: int, cols: int, dataflow: str) -> np.ndarray:
    """Outputs of one array tile of each GEMM: OS R x C, WS M x C, IS C x N (per head)."""
    m, n = table.m, table.n
    if dataflow == "output_stationary":
        return np.minimum(m, rows) * np.minimum(n, cols)
    if dataflow == "weight_stationary":
        return m * np.minimum(n, cols)
    return np.minimum(m, cols) * n


def _psum_live(table: LayerTable, m_scope: np.ndarray, cols: int, dataflow: str
               ) -> tuple[np.ndarray, np.ndarray]:
    """Partial sums held between K folds: (weights_outer, inputs_outer) orders, elements."""
    code = {"weight_stationary": WEIGHT_STATIONARY, "input_stationary": INPUT_STATIONARY,
            "output_stationary": OUTPUT_STATIONARY}[dataflow]
    n = table.n
    if code == WEIGHT_STATIONARY:  # n-fold outer: one column fold's sums; k outer: all
        return m_scope * np.minimum(n, cols), m_scope * n
    if code == INPUT_STATIONARY:  # k outer: all sums; m-fold outer: one column fold of rows
        return m_scope * n, np.minimum(m_scope, cols) * n
    return np.zeros_like(n), np.zeros_like(n)  # output stationary: sums stay in the PEs


def _residual_stream(table: LayerTable, act_bits: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows adding into the residual stream, the stream's bits per row, rows reading it.

    The stream is what integer-input linears of a block read (Q/K/V, fc1); a LIF whose GEMM
    took spikes and whose next row (selectors skipped) takes integers or rates adds its spikes
    into it (attention projection, fc2, the position embedding).
    """
    kinds, value_kind, blocks = table.kinds, table.value_kind, table.blocks
    reads = (kinds == "linear") & (value_kind == INTEGER) & (blocks >= 0)
    per_block = {}
    for block in np.unique(blocks[reads]):
        where = reads & (blocks == block)
        per_block[int(block)] = float((table.in_numel[where] * act_bits[where]).max())
    stream = np.array([per_block.get(int(b), 0.0) for b in blocks])
    kept = np.flatnonzero(~table.is_selector)
    following = np.searchsorted(kept, np.arange(len(kinds)), side="right")
    next_row = np.where(following < kept.size, kept[np.minimum(following, kept.size - 1)], -1)
    next_kind = np.where(next_row >= 0, value_kind[next_row], SPIKE)
    producer_spikes = np.r_[False, (table.is_gemm & (value_kind == SPIKE))[:-1]]
    adds = table.is_lif & producer_spikes & np.isin(next_kind, (INTEGER, RATE))
    return adds, stream, reads


def candidate_mappings(hw: HwConfig, schedule: Schedule) -> list[tuple[int, int]]:
    """The (fold-loop order, time placement) pairs the mapper may choose from, in preference
    order for ties (weights outer, timestep loop inside the tile first)."""
    orders = {"auto": (WEIGHTS_OUTER, INPUTS_OUTER), "weights_outer": (WEIGHTS_OUTER,),
              "inputs_outer": (INPUTS_OUTER,)}[hw.schedule.loop_order]
    return [(order, placement) for placement in schedule.placements for order in orders]


__all__ = ["Schedule", "build_schedule", "candidate_mappings", "WEIGHTS_OUTER", "INPUTS_OUTER",
           "INSIDE", "OUTSIDE"]
