"""What a sweep folder says about itself: `sweep.json` (the spec's name, its axes, counts)
and `spec.yaml` (a copy of the spec), written next to the results; and its best point, named
by every swept value.

The swept axes are read from here, never guessed from column names: a top-level key such as
`clock_mhz` is as much an axis as `pe_array.rows`. A results table copied out of its folder
still names them by position: the tool writes `key, trace, base`, then the axes, then the
trace and metric columns (`results_columns`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from sparsespikformer.analysis.sweeps.evaluate import METRIC_COLUMNS

SWEEP_META = "sweep.json"
SPEC_COPY = "spec.yaml"
LEADING_COLUMNS = ("key", "trace", "base")
TRACE_COLUMNS = ("preset", "trace_source", "accuracy", "accuracy_samples", "weight_sparsity",
                 "keep_ratio", "selector_scorer", "mean_in_nonzero_fraction", "timesteps")
TRAILING_COLUMNS = ("status", "error")

log = logging.getLogger(__name__)


def results_columns(axis_keys: Sequence[str]) -> list[str]:
    """The results table's leading columns, in the order every sweep writes them."""
    return [*LEADING_COLUMNS, *axis_keys, *TRACE_COLUMNS, *METRIC_COLUMNS, *TRAILING_COLUMNS]


def read_sweep_meta(directory: str | os.PathLike) -> dict[str, Any] | None:
    """`sweep.json` of a sweep folder, or None when it has none (or it is unreadable)."""
    path = Path(directory) / SWEEP_META
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        log.warning("%s: unreadable (%s); axes taken from the column order", path, err)
        return None
    return meta if isinstance(meta, dict) else None


def swept_axes(results: pd.DataFrame, where: str | os.PathLike | None = None) -> list[str]:
    """The axis keys of a sweep, in spec order: from `sweep.json` beside the results
    (`where` is the folder or a results file in it), else from the column order."""
    meta = None
    if where is not None:
        path = Path(where)
        meta = read_sweep_meta(path if path.is_dir() else path.parent)
    axes = meta.get("axes") if meta else None
    if isinstance(axes, dict):
        return [str(key) for key in axes if key in results.columns]
    return axes_from_column_order(list(results.columns))


def axes_from_column_order(columns: Sequence[str]) -> list[str]:
    """Columns after `base` up to the first trace, metric or status column."""
    known = {*LEADING_COLUMNS, *TRACE_COLUMNS, *METRIC_COLUMNS, *TRAILING_COLUMNS}
    if "base" not in columns:
        return []
    axes = []
    for column in columns[list(columns).index("base") + 1:]:
        if column in known:
            break
        axes.append(str(column))
    return axes


def lowest_energy_text(results: pd.DataFrame, axis_keys: Sequence[str]) -> str:
    """`trace on base: axis=value, ...` of the lowest-energy ok row ('' if none)."""
    ok = results[results["status"] == "ok"] if "status" in results else results
    if ok.empty or "energy_pj" not in ok or ok["energy_pj"].isna().all():
        return ""
    best = ok.loc[ok["energy_pj"].idxmin()]
    swept = ", ".join(f"{key}={format_value(best[key])}" for key in axis_keys if key in best)
    return f"{best['trace']} on {best['base']}{': ' + swept if swept else ''}"


def format_value(value: Any) -> str:
    """A swept value for people: 1000.0 as 1000, 0.1 as 0.1, text as written."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(
            value, "item"):
        return str(value)
    number = value.item() if hasattr(value, "item") else value
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.12g}" if isinstance(number, float) else str(number)


__all__ = ["SWEEP_META", "SPEC_COPY", "TRACE_COLUMNS", "results_columns", "read_sweep_meta",
           "swept_axes", "axes_from_column_order", "lowest_energy_text", "format_value"]
