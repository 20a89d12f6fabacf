"""The report's section for one sweep: what was swept, the best point, the Pareto fronts.

The swept axes come from the sweep's own record (`sweep.json`), never from column names, so
a top-level key such as `clock_mhz` is listed, named in the best point and shown in every
Pareto table. Swept values are listed in numeric order; energies and times in human units.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from sparsespikformer.analysis.pareto import pareto_front
from sparsespikformer.analysis.reporting import plot_data, plots
from sparsespikformer.analysis.reporting.accuracy_columns import (
    accuracy_text,
    with_accuracy_intervals,
)
from sparsespikformer.analysis.reporting.discovery import relative
from sparsespikformer.analysis.reporting.display import (
    format_number,
    format_quantity,
    natural_sorted,
    unit_kind,
)
from sparsespikformer.analysis.reporting.html import Section, figure_html, table_html
from sparsespikformer.analysis.sweeps.meta import format_value, read_sweep_meta, swept_axes
from sparsespikformer.analysis.sweeps.store import read_results

_METRICS = ("energy_pj", "latency_s", "edp_pj_s", "area_mm2", "utilization")
_HIDDEN_IN_BEST = ("key", "error", "status")


def sweep_section(path: Path, run_dir: Path) -> Section:
    """`path` is a sweep folder or a results table copied out of one."""
    results = read_results(path)
    folder = path if path.is_dir() else path.parent
    ok = results[results["status"].fillna("ok") == "ok"] if "status" in results else results
    axes = swept_axes(results, folder)
    body = _intro(results, ok, folder) + axes_table(results, axes)
    if "energy_pj" in ok and ok["energy_pj"].notna().any():
        best = ok.loc[ok["energy_pj"].idxmin()]
        body += "<h3>Lowest-energy point</h3>" + table_html(best_point_table(best),
                                                            max_rows=60, human=False)
    for x, y, y_dir in _pareto_pairs(ok):
        data = plot_data.pareto_plot_data(ok, x=x, y=y, y_direction=y_dir,
                                          group="trace" if "trace" in ok else None)
        body += figure_html(plots.draw_pareto(data), f"{y} vs {x}: Pareto front of "
                            f"{len(data.front)} of {len(data.points)} points")
        front = pareto_front(ok, {x: "min", y: y_dir})
        body += table_html(front_table(front, axes, x, y))
    return Section(f"Sweep ({relative(path, run_dir)})", body)


def _intro(results: pd.DataFrame, ok: pd.DataFrame, folder: Path) -> str:
    text = f"<p>{len(results)} points, {len(results) - len(ok)} rejected by the config."
    meta = read_sweep_meta(folder)
    if meta:
        text += (f" Spec <code>{html.escape(str(meta.get('spec_name', '')))}</code>: "
                 f"{html.escape(str(meta.get('description', '')))}; total "
                 f"{html.escape(str(meta.get('total_points')))} points.")
    return text + "</p>"


def axes_table(results: pd.DataFrame, axes: list[str]) -> str:
    """One row per swept column (trace, base, then the spec's axes): its distinct values,
    in numeric order."""
    rows = []
    for column in ["trace", "base", *axes]:
        if column not in results:
            continue
        values = list(results[column].dropna().unique())  # text: in the sweep's order
        if all(_is_number(v) for v in values):
            values = natural_sorted(values)
        text = ", ".join(format_value(value) for value in values)
        rows.append((column, len(values), text if len(text) <= 200 else text[:199] + "…"))
    return table_html(pd.DataFrame(rows, columns=["swept", "values", "which"]), max_rows=50)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))


def best_point_table(best: pd.Series) -> pd.DataFrame:
    """(column, value) of one results row, each value in its own human unit, its accuracy
    with the test-set size and interval."""
    rows = []
    for column, value in best.items():
        if column in _HIDDEN_IN_BEST or column == "accuracy_samples":
            continue
        kind = unit_kind(str(column))
        if column == "accuracy":
            text = accuracy_text(value, best.get("accuracy_samples"))
        elif kind is not None and _is_number(value):
            text = format_quantity(float(value), kind)
        elif isinstance(value, float):
            text = format_number(value, digits=6)
        else:
            text = format_value(value)
        rows.append((str(column), text))
    return pd.DataFrame(rows, columns=["column", "value"])


def front_table(front: pd.DataFrame, axes: list[str], x: str, y: str) -> pd.DataFrame:
    """The front's rows: trace, base, every swept axis, then the two objectives (accuracy
    with its test-set size and interval when the results know it)."""
    columns = [c for c in dict.fromkeys(("trace", "base", *axes, x, y)) if c in front]
    table = front[columns]
    if "accuracy" in columns and "accuracy_samples" in front:
        table = with_accuracy_intervals(table.assign(accuracy_samples=front["accuracy_samples"]),
                                        "accuracy", "accuracy_samples")
    return table


def _pareto_pairs(results: pd.DataFrame) -> list[tuple[str, str, str]]:
    pairs = []
    if "accuracy" in results and results["accuracy"].dropna().nunique() > 1:
        pairs.append(("energy_pj", "accuracy", "max"))
    if {"energy_pj", "latency_s"} <= set(results.columns):
        pairs.append(("energy_pj", "latency_s", "min"))
    # SRAM area grows with capacity (`auto` costs): a memory sweep trades energy for area
    if "area_mm2" in results and results["area_mm2"].dropna().nunique() > 1:
        pairs.append(("energy_pj", "area_mm2", "min"))
    return pairs


__all__ = ["sweep_section", "axes_table", "best_point_table", "front_table"]
