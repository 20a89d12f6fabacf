"""Data behind each plot: pure pandas / numpy, no matplotlib, so tests can check it.

Each function takes results as the tools write them (a simulator layer table, a sweep
table, LTH `rounds.csv`, a keep-ratio table, a trace, kept-token indices) and returns
exactly what `plots.py` draws. Units are converted here (fractions to percent), once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sparsespikformer.analysis.pareto import pareto_mask
from sparsespikformer.analysis.reporting.plot_axes import not_drawn_notes
from sparsespikformer.simulator.errors import InputError
from sparsespikformer.simulator.trace import EVENTS_ARRAY, Trace

SCORER_ORDER = ("learned", "firing_rate", "random")
OUTSIDE_BLOCKS = "outside blocks"


def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{what}: missing columns {', '.join(missing)} "
                         f"(has: {', '.join(map(str, df.columns))})")


def _as_percent(values: pd.Series) -> pd.Series:
    """Fractions in [0, 1] become percent; values already in percent stay."""
    values = pd.to_numeric(values, errors="coerce").astype(float)
    finite = values[np.isfinite(values)]
    return values * 100.0 if finite.empty or finite.max() <= 1.0 else values


# ----------------------------------------------------------------------------- layer energy


def layer_energy_by_component(layers: pd.DataFrame, *, group: str = "layer") -> pd.DataFrame:
    """Energy (pJ) per layer (or block, or kind) and component, for stacked bars.

    `layers` is the simulator's tidy table (layer, kind, block, component, action,
    energy_pj, ...), or its per-layer table (no `component`: one column, `total`). Rows
    keep execution order; columns are components, largest total first.
    """
    _require(layers, ("layer", "energy_pj"), "layer energy table")
    if "component" not in layers.columns:
        layers = layers.assign(component="total")
    if group not in ("layer", "block", "kind"):
        raise InputError(f"group: expected layer, block or kind, got {group!r}")
    table = layers.copy()
    if group == "block":
        _require(table, ("block",), "layer energy table")
        table["block"] = [OUTSIDE_BLOCKS if int(b) < 0 else f"block {int(b)}"
                          for b in table["block"]]
    elif group == "kind":
        _require(table, ("kind",), "layer energy table")
    order = list(dict.fromkeys(table[group]))  # first appearance = execution order
    wide = table.pivot_table(index=group, columns="component", values="energy_pj",
                             aggfunc="sum", fill_value=0.0, sort=False)
    wide = wide.reindex(order)
    components = wide.sum(axis=0).sort_values(ascending=False, kind="mergesort").index
    wide = wide[list(components)]
    wide.columns.name = "component"
    return wide.astype(float)


# ----------------------------------------------------------------------------- pareto


@dataclass(frozen=True)
class ParetoPlotData:
    points: pd.DataFrame  # x, y, group, on_front: every drawable point (finite x and y)
    front: pd.DataFrame  # front points sorted along x, for the step line
    x: str
    y: str
    x_direction: str
    y_direction: str
    not_drawn: tuple[str, ...] = ()  # in words: the rows that cannot be drawn, and why


def pareto_plot_data(results: pd.DataFrame, *, x: str = "energy_pj", y: str = "accuracy",
                     x_direction: str = "min", y_direction: str = "max",
                     group: str | None = "trace") -> ParetoPlotData:
    """The drawable points of a sweep and their front. Rows the config rejected and rows
    whose x or y is NaN or ±inf are left out (no axis can draw them) and counted in
    `not_drawn`; zeros and negative values are points like any other."""
    _require(results, [x, y] + ([group] if group else []), "sweep results")
    table = results
    not_drawn = []
    if "status" in table.columns:
        table = table[table["status"].fillna("ok") == "ok"]
        rejected = len(results) - len(table)
        if rejected:
            not_drawn.append(f"{rejected} point{'s' if rejected != 1 else ''} rejected by "
                             "the config")
    points = pd.DataFrame({
        "x": pd.to_numeric(table[x], errors="coerce").astype(float),
        "y": pd.to_numeric(table[y], errors="coerce").astype(float),
        "group": table[group].astype(str) if group else "all points",
    })
    not_drawn += not_drawn_notes({x: points["x"], y: points["y"]})
    points = points[np.isfinite(points["x"]) & np.isfinite(points["y"])]
    if points.empty:
        raise InputError(f"sweep results: no rows with both {x} and {y} as finite numbers "
                         f"(is {y} recorded for these traces?)")
    points["on_front"] = pareto_mask(points, {"x": x_direction, "y": y_direction})
    front = points[points["on_front"]].sort_values(["x", "y"], kind="mergesort")
    return ParetoPlotData(points=points.reset_index(drop=True),
                          front=front.reset_index(drop=True), x=x, y=y,
                          x_direction=x_direction, y_direction=y_direction,
                          not_drawn=tuple(not_drawn))


# ----------------------------------------------------------------------------- LTH


LTH_COLUMNS = ("round", "weight_sparsity", "test_accuracy")


def lth_curve_data(rounds: pd.DataFrame | Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Accuracy against weight sparsity per run (IMP and its baselines).

    `rounds` is one table with a `baseline` column naming each run (e.g. `imp`,
    `random_reinit`), or a mapping of run label -> table. Output: label, round,
    sparsity_pct, accuracy_pct, sorted by label then sparsity.
    """
    tables = rounds.items() if isinstance(rounds, Mapping) else [(None, rounds)]
    parts = []
    for label, table in tables:
        where = f"rounds table {label!r}" if label else "rounds table"
        _require(table, LTH_COLUMNS, where)
        if "baseline" in table.columns:
            labels = table["baseline"].astype(str)
            if label:
                labels = label + ": " + labels
        else:
            labels = pd.Series(label or "IMP", index=table.index)
        parts.append(pd.DataFrame({
            "label": labels,
            "round": pd.to_numeric(table["round"], errors="coerce"),
            "sparsity_pct": _as_percent(table["weight_sparsity"]),
            "accuracy_pct": _as_percent(table["test_accuracy"]),
        }))
    data = pd.concat(parts, ignore_index=True)
    notes = not_drawn_notes({"weight_sparsity": data["sparsity_pct"],
                             "test_accuracy": data["accuracy_pct"]}, what="round")
    data = data[np.isfinite(data["sparsity_pct"]) & np.isfinite(data["accuracy_pct"])]
    if data.empty:
        raise InputError("rounds table: no rows with weight_sparsity and test_accuracy")
    if (data["sparsity_pct"] >= 100).any():
        raise InputError("rounds table: weight_sparsity of 100% leaves no weights to plot")
    data = data.sort_values(["label", "sparsity_pct"], kind="mergesort").reset_index(drop=True)
    data.attrs["not_drawn"] = notes  # read by plots.draw_lth
    return data


# ----------------------------------------------------------------------------- keep ratio


KEEP_RATIO_COLUMNS = ("scorer", "keep_ratio", "accuracy", "gflops")


def keep_ratio_data(table: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (%) and GFLOPs per scorer and keep ratio, scorers in a fixed order."""
    _require(table, KEEP_RATIO_COLUMNS, "keep-ratio table")
    data = pd.DataFrame({
        "scorer": table["scorer"].astype(str),
        "keep_ratio": pd.to_numeric(table["keep_ratio"], errors="coerce"),
        "accuracy_pct": _as_percent(table["accuracy"]),
        "gflops": pd.to_numeric(table["gflops"], errors="coerce"),
    })
    notes = not_drawn_notes({"keep_ratio": data["keep_ratio"], "accuracy": data["accuracy_pct"],
                             "gflops": data["gflops"]}, what="row")
    data = data[np.isfinite(data["keep_ratio"])]
    rank = {name: i for i, name in enumerate(SCORER_ORDER)}
    data["_rank"] = data["scorer"].map(lambda s: rank.get(s, len(rank)))
    data = data.sort_values(["_rank", "scorer", "keep_ratio"], kind="mergesort")
    data = data.drop(columns="_rank").reset_index(drop=True)
    data.attrs["not_drawn"] = notes  # read by plots.draw_keep_ratio
    return data


# ----------------------------------------------------------------------------- input events


def input_events_matrix(trace: Trace, *, value_kinds: Sequence[str] = ("spike", "integer")
                       ) -> pd.DataFrame:
    """Input spike events per element at each timestep, one row per layer: (layers, T).

    Σ over tokens of `events_per_step_token` at step t, divided by `in_numel`: the mean input
    value. For 0/1 spike inputs this is the firing rate; on the integer residual stream it is
    the events a replaying PE sees per element, larger than the non-zero fraction
    (`in_nonzero_fraction`). Layers that run fewer timesteps (head) are NaN after.
    Only layers whose input is in `value_kinds` (spikes and spike sums by default).
    """
    layers = trace.layers
    chosen = layers[layers["in_value_kind"].isin(value_kinds) & (layers["in_numel"] > 0)]
    steps = trace.timesteps
    matrix = np.full((len(chosen), steps), np.nan)
    for row_index, row in enumerate(chosen.itertuples(index=False)):
        events = trace.layer_array(row.layer, EVENTS_ARRAY)  # (timesteps, tokens_in)
        per_step = events.sum(axis=1) / float(row.in_numel)
        matrix[row_index, : min(steps, per_step.size)] = per_step[:steps]
    frame = pd.DataFrame(matrix, index=pd.Index(list(chosen["layer"]), name="layer"),
                         columns=pd.RangeIndex(steps, name="timestep"))
    if frame.empty:
        raise InputError(f"{trace.origin}: no layers with {'/'.join(value_kinds)} inputs")
    return frame


# ----------------------------------------------------------------------------- kept tokens


@dataclass(frozen=True)
class KeptTokensData:
    images: np.ndarray  # (n, H, W) or (n, H, W, 3), floats in [0, 1]
    masks: np.ndarray  # (n, selectors, grid, grid) bool: token kept at that selector
    selectors: tuple[str, ...]
    grid: int


def kept_tokens_data(images: np.ndarray, kept: Mapping[str, np.ndarray], num_tokens: int,
                     *, max_images: int | None = 4) -> KeptTokensData:
    """Boolean token masks per image and selector, and the images scaled to [0, 1].

    `kept[selector]` is (n, k) indices into the original token grid (row-major, sqrt(N) x
    sqrt(N) tokens over the image). Images: (n, H, W), (n, H, W, C) or (n, C, H, W).
    """
    grid = math.isqrt(int(num_tokens))
    if grid * grid != num_tokens or num_tokens < 1:
        raise InputError(f"num_tokens: {num_tokens} is not a square token grid")
    pictures = _normalise_images(np.asarray(images))
    count = len(pictures) if max_images is None else min(len(pictures), max_images)
    if not kept:
        raise InputError("kept tokens: no selectors")
    masks = np.zeros((count, len(kept), grid, grid), dtype=bool)
    for position, (name, indices) in enumerate(kept.items()):
        indices = np.asarray(indices)
        if indices.ndim != 2 or indices.shape[0] < count:
            raise InputError(f"kept tokens {name}: expected (images, k) indices, "
                             f"got shape {indices.shape}")
        if indices.size and (indices.min() < 0 or indices.max() >= num_tokens):
            raise InputError(f"kept tokens {name}: index outside 0..{num_tokens - 1}")
        for image in range(count):
            flat = np.zeros(num_tokens, dtype=bool)
            flat[indices[image].astype(np.int64)] = True
            masks[image, position] = flat.reshape(grid, grid)
    return KeptTokensData(images=pictures[:count], masks=masks, selectors=tuple(kept),
                          grid=grid)


def _normalise_images(images: np.ndarray) -> np.ndarray:
    if images.ndim == 4 and images.shape[1] in (1, 2, 3) and images.shape[-1] not in (1, 3):
        images = np.moveaxis(images, 1, -1)  # (n, C, H, W) -> (n, H, W, C)
    if images.ndim == 4 and images.shape[-1] in (1, 2):
        images = images.sum(axis=-1)  # grey, or two event polarities summed
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3):
        raise InputError(f"images: expected (n, H, W), (n, H, W, C) or (n, C, H, W), "
                         f"got shape {images.shape}")
    images = images.astype(np.float64)
    low = images.min(axis=tuple(range(1, images.ndim)), keepdims=True)
    high = images.max(axis=tuple(range(1, images.ndim)), keepdims=True)
    return (images - low) / np.where(high > low, high - low, 1.0)


__all__ = ["layer_energy_by_component", "ParetoPlotData", "pareto_plot_data",
           "lth_curve_data", "keep_ratio_data", "input_events_matrix", "KeptTokensData",
           "kept_tokens_data", "LTH_COLUMNS", "KEEP_RATIO_COLUMNS", "SCORER_ORDER"]
