"""A trace's layer table as flat numpy arrays, built once per trace and reused for every config.

The engine evaluates one trace on thousands of configs, so everything that depends only on
the trace is done here once: columns become float64 arrays, kinds become boolean masks, the
per-sample arrays become one (layers, samples) matrix. Load-imbalance factors depend on the
array shape too, so they are computed on demand and cached per (dataflow, rows, cols, time
handling).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from sparsespikformer.simulator.imbalance import (
    group_max_ratio,
    receptive_field_events,
    sample_fold_factors,
)
from sparsespikformer.simulator.mapping import INPUT_STATIONARY, OUTPUT_STATIONARY
from sparsespikformer.simulator.trace import (
    CHANNEL_NNZ_ARRAY,
    EVENTS_ARRAY,
    SAMPLE_EVENTS_ARRAY,
    SAMPLE_OPS_ARRAY,
    SAMPLE_ROW_EVENTS_ARRAY,
    Trace,
)

SPIKE, INTEGER, RATE, REAL = 0, 1, 2, 3
VALUE_KIND_CODES = {"spike": SPIKE, "integer": INTEGER, "rate": RATE, "real": REAL}
GEMM_KINDS = ("conv", "linear", "attn_qk", "attn_v", "selector", "head")
STATIC_WEIGHT_KINDS = ("conv", "linear", "selector", "head")


@dataclass(frozen=True, eq=False)
class LayerTable:
    """Per-layer arrays of one trace, shape (L,) unless noted."""

    names: np.ndarray  # object
    kinds: np.ndarray  # object
    blocks: np.ndarray  # int64
    timesteps: np.ndarray
    groups: np.ndarray
    m: np.ndarray
    n: np.ndarray
    k: np.ndarray
    dense_macs: np.ndarray
    sops: np.ndarray
    effective_ops: np.ndarray
    nonzero_pairs: np.ndarray
    in_nonzero_fraction: np.ndarray
    out_nonzero_fraction: np.ndarray
    operand_density: np.ndarray
    weight_numel: np.ndarray
    weight_nnz: np.ndarray
    in_numel: np.ndarray
    out_numel: np.ndarray
    tokens_in: np.ndarray
    in_value_max: np.ndarray
    in_events: np.ndarray  # Σ input values per sample (mean of `sample_in_events`)
    value_kind: np.ndarray  # int codes SPIKE / INTEGER / RATE / REAL
    is_gemm: np.ndarray  # bool: multiplies on the PE array (gemm_m > 0)
    is_attention: np.ndarray
    is_static: np.ndarray  # static weights in the weight memory
    is_lif: np.ndarray
    is_pool: np.ndarray
    is_selector: np.ndarray
    feeds_lif: np.ndarray  # the next row is a LIF: final sums go straight into its neurons
    is_top_k: np.ndarray  # last row of each selector (a learned one records one row per linear)
    gemm_extra: np.ndarray  # dense_macs / (T·groups·m·n·k): the selector's second linear
    sample_ops_ratio: np.ndarray  # (L, S) per-sample effective_ops / their mean
    sample_events_ratio: np.ndarray  # (L, S) per-sample input events / their mean
    events: tuple[np.ndarray, ...]  # per layer (timesteps, tokens_in); conv: receptive fields
    row_events: tuple[np.ndarray | None, ...]  # per layer (kept samples, T, groups, m) or None
    channel_nnz: tuple[np.ndarray | None, ...]  # per layer (gemm_n,) or None
    window_steps: float  # the trace's T: the averaging window of `rate` inputs
    _imbalance: dict = field(default_factory=dict, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)  # other per-trace derived arrays

    def cached(self, key: object, build) -> object:
        """`build()` once per table and key (trace-only quantities reused by every config)."""
        value = self._cache.get(key)
        if value is None:
            value = self._cache[key] = build()
        return value

    def __len__(self) -> int:
        return len(self.names)

    def imbalance(self, dataflow: int, rows: int, cols: int, parallel_time: bool
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(input (L,), weight (L,), per-sample input imbalance (L, S)) load-imbalance factors
        (>= ~1) for this array mapping, cached (imbalance.py)."""
        token_group = rows if dataflow == OUTPUT_STATIONARY else \
            cols if dataflow == INPUT_STATIONARY else 0
        channel_group = 0 if dataflow == INPUT_STATIONARY else cols
        inputs = self._imbalance.get(("input", token_group, parallel_time))
        if inputs is None:
            inputs = self._imbalance[("input", token_group, parallel_time)] = \
                self._input_imbalance(token_group, parallel_time)
        weights = self._imbalance.get(("weight", channel_group))
        if weights is None:
            weights = self._imbalance[("weight", channel_group)] = \
                self._weight_imbalance(channel_group)
        return inputs[0], weights, inputs[1]

    def _input_imbalance(self, group: int, parallel_time: bool
                         ) -> tuple[np.ndarray, np.ndarray]:
        """Rows mapped in parallel over `group` PEs wait for the busiest one in their fold,
        per inference (imbalance.py). 0 = rows stream in time (weight stationary): none.
        Returns the layer factors (L,) and each sample's own imbalance (L, S)."""
        samples = self.sample_ops_ratio.shape[1]
        factors, per_sample = np.ones(len(self)), np.ones((len(self), samples))
        if group == 0:
            return factors, per_sample
        for i, events in enumerate(self.events):
            if not self.is_gemm[i]:
                continue
            stack_time = parallel_time and not self.is_attention[i]
            rows = self.row_events[i]
            if rows is not None:
                factors[i], kept = sample_fold_factors(rows, group, stack_time)
                per_sample[i] = kept.mean()
                per_sample[i, :kept.size] = kept[:samples]
                continue
            if events.shape[1] != self.m[i]:
                continue
            if stack_time:
                events = events.reshape(1, -1)  # timesteps stacked into the token dimension
            factors[i] = per_sample[i] = group_max_ratio(events, group)
        return factors, per_sample

    def _weight_imbalance(self, group: int) -> np.ndarray:
        """Output channels mapped in parallel over `group` columns wait for the densest one."""
        factors = np.ones(len(self))
        if group == 0:
            return factors
        for i, nnz in enumerate(self.channel_nnz):
            if nnz is not None and self.is_gemm[i] and nnz.size:
                factors[i] = group_max_ratio(nnz.reshape(1, -1).astype(np.float64), group)
        return factors


_TABLES: dict[int, LayerTable] = {}


def layer_table(trace: Trace) -> LayerTable:
    """The trace's table, built on first use and kept while the trace lives."""
    key = id(trace)
    table = _TABLES.get(key)
    if table is None:
        table = build_layer_table(trace)
        _TABLES[key] = table
        weakref.finalize(trace, _TABLES.pop, key, None)
    return table


def build_layer_table(trace: Trace) -> LayerTable:
    layers = trace.layers

    def col(name: str) -> np.ndarray:
        return layers[name].to_numpy(dtype=np.float64)

    kinds = layers["kind"].to_numpy(dtype=object)
    m, n, k = col("gemm_m"), col("gemm_n"), col("gemm_k")
    timesteps, groups = col("timesteps"), col("gemm_groups")
    dense_macs = col("dense_macs")
    is_gemm = np.isin(kinds, GEMM_KINDS) & (m * n * k * groups > 0)
    gemm_macs = timesteps * groups * m * n * k
    gemm_extra = np.where(is_gemm & (gemm_macs > 0),
                          dense_macs / np.where(gemm_macs > 0, gemm_macs, 1.0), 1.0)
    names = layers["layer"].to_numpy(dtype=object)
    blocks = layers["block"].to_numpy(dtype=np.int64)
    is_selector = kinds == "selector"
    same_block_next = blocks[1:] == blocks[:-1]
    arrays = [trace.arrays[name] for name in names]
    return LayerTable(
        names=names,
        kinds=kinds,
        blocks=blocks,
        timesteps=timesteps, groups=groups, m=m, n=n, k=k,
        dense_macs=dense_macs,
        sops=col("sops"),
        effective_ops=col("effective_ops"),
        nonzero_pairs=col("nonzero_pairs"),
        in_nonzero_fraction=col("in_nonzero_fraction"),
        out_nonzero_fraction=col("out_nonzero_fraction"),
        operand_density=col("operand_density"),
        weight_numel=col("weight_numel"),
        weight_nnz=col("weight_nnz"),
        in_numel=col("in_numel"),
        out_numel=col("out_numel"),
        tokens_in=col("tokens_in"),
        in_value_max=col("in_value_max"),
        in_events=np.array([float(np.mean(a[SAMPLE_EVENTS_ARRAY])) for a in arrays]),
        value_kind=layers["in_value_kind"].map(VALUE_KIND_CODES).to_numpy(dtype=np.int64),
        is_gemm=is_gemm,
        is_attention=np.isin(kinds, ("attn_qk", "attn_v")),
        is_static=np.isin(kinds, STATIC_WEIGHT_KINDS) & (col("weight_numel") > 0),
        is_lif=kinds == "lif",
        is_pool=kinds == "pool",
        is_selector=is_selector,
        feeds_lif=np.r_[kinds[1:] == "lif", False],
        is_top_k=is_selector & ~(np.r_[is_selector[1:], False] & np.r_[same_block_next, False]),
        gemm_extra=gemm_extra,
        sample_ops_ratio=_ratio_to_mean([a[SAMPLE_OPS_ARRAY] for a in arrays]),
        sample_events_ratio=_ratio_to_mean([a[SAMPLE_EVENTS_ARRAY] for a in arrays]),
        events=tuple(_row_events_fallback(layers, i, np.asarray(a[EVENTS_ARRAY], np.float64))
                     for i, a in enumerate(arrays)),
        row_events=tuple(a.get(SAMPLE_ROW_EVENTS_ARRAY) for a in arrays),
        channel_nnz=tuple(a.get(CHANNEL_NNZ_ARRAY) for a in arrays),
        window_steps=float(trace.timesteps),
    )


def _row_events_fallback(layers, i: int, events: np.ndarray) -> np.ndarray:
    """A conv's per-input-position events as per-output receptive-field sums (imbalance.py)."""
    row = layers.iloc[i]
    if row["kind"] != "conv":
        return events
    fields = receptive_field_events(events, str(row["in_shape"]), str(row["out_shape"]),
                                    float(row["gemm_k"]))
    return events if fields is None else fields


def _ratio_to_mean(per_layer: list[np.ndarray]) -> np.ndarray:
    """(L, S): each sample's value over the layer's mean (1 where the mean is 0)."""
    matrix = np.vstack([np.asarray(a, dtype=np.float64) for a in per_layer])
    mean = matrix.mean(axis=1, keepdims=True)
    return np.where(mean > 0, matrix / np.where(mean > 0, mean, 1.0), 1.0)


__all__ = ["LayerTable", "layer_table", "build_layer_table", "group_max_ratio",
           "SPIKE", "INTEGER", "RATE", "REAL"]
