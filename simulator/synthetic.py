"""Traces that are not recorded from a model: `synthetic_trace` (assumed firing rate, weight
density and keep ratio on given layer shapes, for design-space studies before a model is
trained) and `gemm_trace` (one dense GEMM, the shape SCALE-Sim is checked on)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from sparsespikformer.simulator.checks import check_fraction
from sparsespikformer.simulator.errors import TraceError
from sparsespikformer.simulator.tokens import kept_token_count
from sparsespikformer.simulator.trace import (
    CHANNEL_NNZ_ARRAY,
    EVENTS_ARRAY,
    SAMPLE_EVENTS_ARRAY,
    SAMPLE_OPS_ARRAY,
    SAMPLE_ROW_EVENTS_ARRAY,
    WEIGHTED_KINDS,
    Trace,
    base_manifest,
    shape_string,
)


def gemm_trace(m: int, n: int, k: int) -> Trace:
    """One dense GEMM with real-valued input, SCALE-Sim's convention.

    Input (m x k), weights (k x n), output (m x n), one timestep, dense weights: the
    shape the simulator's systolic cycle counts are checked against SCALE-Sim with.
    """
    for name, value in (("m", m), ("n", n), ("k", k)):
        if int(value) != value or value < 1:
            raise TraceError(f"gemm_trace: {name} must be a positive integer, got {value!r}")
    m, n, k = int(m), int(n), int(k)
    macs = float(m * n * k)
    row = {
        "layer": "gemm", "kind": "linear", "block": -1,
        "in_shape": shape_string((1, m, k)), "out_shape": shape_string((1, m, n)),
        "timesteps": 1, "tokens_in": m, "tokens_out": m, "in_numel": m * k, "out_numel": m * n,
        "gemm_m": m, "gemm_n": n, "gemm_k": k, "gemm_groups": 1,
        "weight_numel": k * n, "weight_nnz": k * n, "operand_density": 1.0,
        "in_value_kind": "real", "input_is_spike": False,
        "in_value_min": 1.0, "in_value_max": 1.0, "in_value_mean": 1.0,
        "in_nonzero_fraction": 1.0, "out_nonzero_fraction": 1.0,
        "dense_macs": macs, "sops": macs, "effective_ops": macs, "nonzero_pairs": macs,
    }
    arrays = {"gemm": {
        EVENTS_ARRAY: np.full((1, m), float(k)),
        SAMPLE_OPS_ARRAY: np.array([macs]),
        SAMPLE_EVENTS_ARRAY: np.array([float(m * k)]),
        CHANNEL_NNZ_ARRAY: np.full(n, k, dtype=np.int64),
    }}
    manifest = base_manifest(source="gemm", timesteps=1, input_shape=[m, k], dataset="gemm",
                             num_samples=1)
    return Trace(manifest=manifest, layers=pd.DataFrame([row]), arrays=arrays)


# Columns a caller of `synthetic_trace` must give for each layer (the rest are derived).
SHAPE_COLUMNS = ("layer", "kind", "block", "tokens_in", "tokens_out", "in_numel", "out_numel",
                 "gemm_m", "gemm_n", "gemm_k", "gemm_groups", "weight_numel")


def synthetic_trace(layer_shapes: pd.DataFrame | Iterable[Mapping[str, Any]], *,
                    firing_rate: float = 0.15, weight_density: float = 1.0,
                    keep_ratio: float = 1.0, timesteps: int = 4, num_samples: int = 8,
                    seed: int = 0, preset: str = "", input_shape: Iterable[int] = (),
                    model_config: Mapping[str, Any] | None = None) -> Trace:
    """A trace with assumed statistics, for design-space studies before a model is trained.

    `layer_shapes` gives each layer's shape columns (`SHAPE_COLUMNS`; optional `timesteps`
    and `in_value_kind`, e.g. from `sparsespikformer.model.layer_shapes`). Every input element
    carries `firing_rate` events on average (real-valued inputs are taken as dense), every
    weight tensor keeps `weight_density` of its weights, and with `keep_ratio` ρ < 1 block
    `b >= 1` sees `kept_token_count(tokens, ρ, b)` tokens, as token selectors before every
    block but the first would leave. Arrays are drawn from a seeded generator, so the trace is
    reproducible.
    """
    _check_fraction("firing_rate", firing_rate, allow_zero=True)
    _check_fraction("weight_density", weight_density, allow_zero=True)
    _check_fraction("keep_ratio", keep_ratio, allow_zero=False)
    shapes = pd.DataFrame(list(layer_shapes) if not isinstance(layer_shapes, pd.DataFrame)
                          else layer_shapes).reset_index(drop=True)
    missing = [c for c in SHAPE_COLUMNS if c not in shapes.columns]
    if missing:
        raise TraceError(f"synthetic_trace: layer_shapes lacks columns: {', '.join(missing)}")
    # Optional columns: a layer that does not say runs every timestep on spikes.
    for column, default in (("timesteps", timesteps), ("in_value_kind", "spike")):
        if column not in shapes.columns:
            shapes[column] = default
        shapes[column] = shapes[column].fillna(default)
    if keep_ratio < 1.0:
        shapes = _apply_keep_ratio(shapes, keep_ratio)
    rng = np.random.default_rng(seed)
    row_rng = np.random.default_rng([seed, 3])  # its own stream: the other arrays stay as before
    rows, arrays = [], {}
    for shape in shapes.to_dict("records"):
        row, layer_arrays = _synthetic_layer(shape, firing_rate, weight_density, num_samples, rng)
        if row["gemm_m"] > 0:
            layer_arrays[SAMPLE_ROW_EVENTS_ARRAY] = _row_events(row, num_samples, row_rng)
        rows.append(row)
        arrays[row["layer"]] = layer_arrays
    keep_ratios = [keep_ratio ** b for b in sorted(set(shapes["block"])) if b >= 1] \
        if keep_ratio < 1.0 else []
    manifest = base_manifest(
        source="synthetic", preset=preset, model_config=model_config, timesteps=timesteps,
        input_shape=input_shape, dataset="synthetic", num_samples=num_samples,
        weight_sparsity=1.0 - weight_density, keep_ratios=keep_ratios, seed=seed,
        selector_scorer="synthetic" if keep_ratio < 1.0 else None,
    )
    return Trace(manifest=manifest, layers=pd.DataFrame(rows), arrays=arrays)


def _check_fraction(name: str, value: float, *, allow_zero: bool) -> None:
    check_fraction(value, f"synthetic_trace: {name}", allow_zero=allow_zero, error=TraceError)


def _apply_keep_ratio(shapes: pd.DataFrame, keep_ratio: float) -> pd.DataFrame:
    """Shrink every token-indexed dimension of block b >= 1 from N to `kept_token_count(N, ρ, b)`.

    N is the block's token count, what its token-wise layers see: an attention product's
    rows may be a head dimension instead (Kᵀ·V), and its token x token sizes shrink twice.
    """
    shapes = shapes.copy()
    block = shapes["block"].to_numpy()
    kind = shapes["kind"]
    attention = kind.str.startswith("attn").to_numpy()
    tokens_in = shapes["tokens_in"].to_numpy().astype(np.int64)
    # A selector row sees the tokens before its selection: not the block's count.
    token_wise = ~attention & (kind != "selector").to_numpy()
    block_tokens = pd.Series(tokens_in[token_wise]).groupby(block[token_wise]).max()
    later = block >= 1
    # Token-wise rows shrink their own count; attention rows the block's.
    tokens = np.where(attention, block_tokens.reindex(block).fillna(0).to_numpy(),
                      tokens_in).astype(np.int64)
    ordinal = np.where(later, block, 0)  # a selector before every block b >= 1
    kept = np.where(tokens > 0, kept_token_count(np.maximum(tokens, 1), keep_ratio, ordinal),
                    tokens)

    def shrunk(column: str, where: np.ndarray) -> np.ndarray:
        values = shapes[column].to_numpy()
        return np.where(later & where & (values == tokens) & (tokens > 0), kept, values)

    for column in ("gemm_m", "gemm_n", "gemm_k"):
        shapes[column] = shrunk(column, attention | (column == "gemm_m"))
    everywhere = np.ones(len(shapes), dtype=bool)
    shapes["tokens_in"], shapes["tokens_out"] = (shrunk("tokens_in", everywhere),
                                                 shrunk("tokens_out", everywhere))
    # a row with no known token count has nothing to shrink: its sizes stay as given
    scale = np.where(later & ~attention & (tokens > 0), kept / np.maximum(tokens, 1), 1.0)
    gemm = {c: shapes[c].to_numpy() for c in ("gemm_m", "gemm_n", "gemm_k", "gemm_groups")}
    product_in = gemm["gemm_groups"] * gemm["gemm_m"] * gemm["gemm_k"]
    product_out = gemm["gemm_groups"] * gemm["gemm_m"] * gemm["gemm_n"]
    for column, product in (("in_numel", product_in), ("out_numel", product_out)):
        scaled = np.rint(shapes[column].to_numpy() * scale).astype(np.int64)
        shapes[column] = np.where(later & attention, product, scaled)
    return shapes


def _synthetic_layer(shape: Mapping[str, Any], firing_rate: float, weight_density: float,
                     num_samples: int, rng: np.random.Generator) -> tuple[dict, dict]:
    kind, steps = str(shape["kind"]), int(shape["timesteps"])
    value_kind = str(shape["in_value_kind"])
    rate = 1.0 if value_kind == "real" else firing_rate
    weight_numel = int(shape["weight_numel"])
    weighted = kind in WEIGHTED_KINDS
    density = weight_density if weighted else (firing_rate if kind.startswith("attn") else 1.0)
    weight_nnz = int(round(weight_numel * weight_density)) if weighted else 0
    m, n, k, groups = (int(shape[c]) for c in ("gemm_m", "gemm_n", "gemm_k", "gemm_groups"))
    dense_macs = float(steps * groups * m * n * k)
    sops = rate * dense_macs
    row = {c: shape[c] for c in SHAPE_COLUMNS}
    row.update({
        "in_shape": shape.get("in_shape", shape_string((steps, shape["in_numel"]))),
        "out_shape": shape.get("out_shape", shape_string((steps, shape["out_numel"]))),
        "timesteps": steps, "weight_nnz": weight_nnz, "operand_density": density,
        "in_value_kind": value_kind, "input_is_spike": value_kind == "spike",
        "in_value_min": 0.0, "in_value_max": 1.0, "in_value_mean": rate,
        "in_nonzero_fraction": rate, "out_nonzero_fraction": firing_rate,
        "dense_macs": dense_macs, "sops": sops, "effective_ops": sops * density,
        "nonzero_pairs": sops * density,
    })
    tokens = int(shape["tokens_in"])
    events_per_cell = rate * int(shape["in_numel"]) / max(tokens, 1)
    events = rng.poisson(max(events_per_cell, 0.0) * 16, size=(steps, tokens)) / 16.0
    jitter = 1.0 + 0.05 * rng.standard_normal(num_samples)  # sample-to-sample spread
    arrays = {
        EVENTS_ARRAY: events.astype(np.float64),
        SAMPLE_OPS_ARRAY: np.clip(row["effective_ops"] * jitter, 0.0, None),
        SAMPLE_EVENTS_ARRAY: np.clip(rate * int(shape["in_numel"]) * steps * jitter, 0.0, None),
    }
    if weighted:
        arrays[CHANNEL_NNZ_ARRAY] = _spread_nonzeros(weight_nnz, n, weight_numel // max(n, 1), rng)
    return row, arrays


# Per-sample row events are drawn for at most this many samples (as a recorder keeps them).
ROW_EVENT_SAMPLES = 8


def _row_events(row: Mapping[str, Any], num_samples: int, rng: np.random.Generator
                ) -> np.ndarray:
    """(samples, T, groups, m): each GEMM row's input events per sample, Poisson around the
    mean (rate x K per row; real inputs dense and exact)."""
    shape = (min(num_samples, ROW_EVENT_SAMPLES), int(row["timesteps"]), int(row["gemm_groups"]),
             int(row["gemm_m"]))
    mean = float(row["in_value_mean"]) * int(row["gemm_k"])
    if row["in_value_kind"] == "real":
        return np.full(shape, mean, dtype=np.float32)
    return rng.poisson(mean, size=shape).astype(np.float32)


def _spread_nonzeros(total: int, channels: int, per_channel_cap: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Distribute `total` non-zeros over output channels at random, none above its fan-in."""
    counts = np.zeros(channels, dtype=np.int64)
    if channels == 0 or total == 0:
        return counts
    base = total // channels
    counts[:] = min(base, per_channel_cap)
    remainder = total - int(counts.sum())
    free = np.flatnonzero(counts < per_channel_cap)
    if remainder > 0 and free.size:
        chosen = rng.choice(free, size=min(remainder, free.size), replace=False)
        counts[chosen] += 1
    return counts


__all__ = ["SHAPE_COLUMNS", "gemm_trace", "synthetic_trace"]
