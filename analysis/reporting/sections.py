"""The report's detail sections, one function per kind of result file (the sweep's is in
`sweep_section.py`, the answer that opens the page in `headline.py`).

Every table shows energies and times in human units and every accuracy with its test-set
size and 95 % interval where the files say how many images it was measured on (rounds and
keep-ratio tables: a `test_samples` column, or the run's `summary.json`; traces: their
sample count)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from sparsespikformer.analysis.reporting import plot_data, plots
from sparsespikformer.analysis.reporting.accuracy_columns import (
    accuracy_text,
    with_accuracy_intervals,
)
from sparsespikformer.analysis.reporting.discovery import relative, totals_record
from sparsespikformer.analysis.reporting.display import (
    format_number,
    format_quantity,
    pick_unit,
    unit_kind,
    units_for,
)
from sparsespikformer.analysis.reporting.headline import read_accuracy
from sparsespikformer.analysis.reporting.html import Section, figure_html, table_html
from sparsespikformer.analysis.reporting.result_files import (
    read_json_object,
    read_kept_tokens,
    read_rounds,
    read_table,
)
from sparsespikformer.analysis.sweeps.meta import format_value
from sparsespikformer.simulator.errors import InputError
from sparsespikformer.simulator.trace import Trace

MAX_FIGURES_PER_KIND = 4  # e.g. at most four trace heatmaps: the page stays readable
_SHOWN_ABOVE = ("answer",)  # the sentence the page opens with
# Totals columns a person compares; the CSV keeps every column.
TOTALS_SHOWN = ("energy_pj", "latency_s", "edp_pj_s", "utilization", "area_mm2",
                "dense_gflops", "effective_gflops", "dram_bits", "memory_bound_layers")


# ----------------------------------------------------------------------------- summary


def summary_section(path: Path, run_dir: Path) -> Section:
    """Scalars as a (metric, value) table; `{metric: {config: {variant: value}}}` with a
    known metric as grouped bars and a table; other mappings as tables."""
    summary = read_json_object(path)
    samples = summary.get("test_samples")
    scalars = [(key, summary_value(key, value, samples)) for key, value in summary.items()
               if (not isinstance(value, Mapping) or _is_accuracy(value))
               and key not in _SHOWN_ABOVE]
    body = table_html(pd.DataFrame(scalars, columns=["metric", "value"]), max_rows=200,
                      human=False)
    for key, value in summary.items():
        if isinstance(value, Mapping) and value and not _is_accuracy(value):
            body += f"<h3>{html.escape(key)}</h3>" + _nested_html(key, value)
    return Section(f"Summary ({relative(path, run_dir)})", body)


def _is_accuracy(value: Any) -> bool:
    return isinstance(value, Mapping) and {"correct", "test_samples"} <= set(value)


def summary_value(key: str, value: Any, test_samples: Any = None) -> str:
    """One summary value as text: an accuracy with its n and interval, a unit value in its
    human unit, a list inline."""
    if "accuracy" in key and not isinstance(value, str):
        accuracy = read_accuracy(value, test_samples)
        if accuracy is not None:
            return accuracy_text(float(getattr(accuracy, "value", accuracy)),
                                 getattr(accuracy, "test_samples", None))
    if isinstance(value, list):
        return ", ".join(format_value(v) for v in value)
    kind = unit_kind(key)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is not None and number:
        return format_quantity(float(value), kind)
    if "sparsity" in key and number:
        return f"{100 * value:.2f} %"
    if isinstance(value, float):
        return format_number(value, digits=6)
    return format_value(value)


def _nested_html(key: str, value: Mapping[str, Any]) -> str:
    if not all(isinstance(v, Mapping) for v in value.values()):
        rows = [(str(k), summary_value(str(k), v)) for k, v in value.items()]
        return table_html(pd.DataFrame(rows, columns=[key, "value"]), max_rows=200,
                          human=False)
    nested = pd.DataFrame.from_dict(value, orient="index")
    numeric = nested.apply(pd.to_numeric, errors="coerce")
    body = ""
    if plots.is_known_metric(key) and numeric.notna().all().all():
        # {"energy_pj": {config: {"dense": .., "co_designed": ..}}}: grouped bars
        variants = " vs ".join(map(str, numeric.columns))
        body += figure_html(plots.draw_grouped_bars(
            numeric, column=key, title=f"{plots.axis_label(key).split(' (')[0]}: {variants}"),
            f"{key} per {' / '.join(map(str, numeric.index[:3]))}"
            f"{', ...' if len(numeric) > 3 else ''}: {variants}")
    kind = unit_kind(key)
    if kind is not None and numeric.notna().all().all():
        name, size = pick_unit(numeric.to_numpy(), units_for(kind))
        nested = (numeric / size).rename(columns=lambda c: f"{c} ({name})")
    return body + table_html(nested.reset_index(names=key), max_rows=200, human=False)


# ----------------------------------------------------------------------------- LTH, tokens


def rounds_section(paths: Sequence[Path], run_dir: Path, test_samples: int | None) -> Section:
    rounds = read_rounds(paths)
    data = plot_data.lth_curve_data(rounds)
    body = figure_html(plots.draw_lth(data), "Test accuracy against weight sparsity, "
                       "one line per run")
    tables = rounds.values() if isinstance(rounds, Mapping) else [rounds]
    labels = list(rounds) if isinstance(rounds, Mapping) else [None]
    parts = []
    for label, table in zip(labels, tables, strict=True):
        part = pd.DataFrame({
            "run": table["baseline"].astype(str) if "baseline" in table else (label or "IMP"),
            "round": table["round"], "weight sparsity (%)": 100 * table["weight_sparsity"],
            "test_accuracy": table["test_accuracy"],
            "n": table["test_samples"] if "test_samples" in table else test_samples})
        parts.append(part)
    shown = with_accuracy_intervals(pd.concat(parts, ignore_index=True), "test_accuracy", "n")
    body += table_html(shown, max_rows=60)
    names = ", ".join(relative(p, run_dir) for p in paths)
    return Section(f"Lottery-ticket pruning ({names})", body)


def keep_ratio_section(path: Path, run_dir: Path, test_samples: int | None) -> Section:
    table = read_table(path)
    data = plot_data.keep_ratio_data(table)
    body = figure_html(plots.draw_keep_ratio(data), "Accuracy and GFLOPs against keep ratio")
    rank = {name: i for i, name in enumerate(plot_data.SCORER_ORDER)}
    shown = table[["scorer", "keep_ratio", "accuracy", "gflops"]].assign(
        n=table["test_samples"] if "test_samples" in table else test_samples,
        order=table["scorer"].map(lambda s: rank.get(str(s), len(rank))))
    shown = shown.sort_values(["order", "scorer", "keep_ratio"], kind="mergesort")
    shown = shown.drop(columns="order")
    body += table_html(with_accuracy_intervals(shown, "accuracy", "n"), max_rows=60)
    return Section(f"Token selection ({relative(path, run_dir)})", body)


def kept_tokens_section(paths: Sequence[Path], run_dir: Path) -> Section:
    body = ""
    for path in paths[:MAX_FIGURES_PER_KIND]:
        images, kept, num_tokens = read_kept_tokens(path)
        data = plot_data.kept_tokens_data(images, kept, num_tokens)
        body += figure_html(plots.draw_kept_tokens(data),
                            f"Kept tokens, {relative(path, run_dir)}")
    return Section("Token selection on example images", body)


# ----------------------------------------------------------------------------- traces


def traces_section(paths: Sequence[Path], run_dir: Path) -> Section:
    rows, figures = [], ""
    for index, path in enumerate(paths):
        trace = Trace.load(path)
        manifest = trace.manifest
        accuracy = manifest["accuracy"]
        rows.append({
            "trace": relative(path, run_dir), "preset": manifest["preset"],
            "accuracy": "–" if accuracy is None else accuracy_text(accuracy,
                                                                   manifest["num_samples"]),
            "weight_sparsity": manifest["weight_sparsity"],
            "keep_ratios": ", ".join(f"{r:.3g}" for r in manifest["keep_ratios"]) or "–",
            "scorer": manifest["selector_scorer"] or "–", "T": manifest["timesteps"],
            "samples": manifest["num_samples"], "layers": len(trace.layers),
            "dense_GMACs": float(trace.layers["dense_macs"].sum()) / 1e9,
            "activation_sparsity": manifest["neurobench"].get("activation_sparsity"),
        })
        if index < MAX_FIGURES_PER_KIND:
            try:
                matrix = plot_data.input_events_matrix(trace)
            except InputError:
                continue
            name = relative(path, run_dir)
            figures += figure_html(plots.draw_input_events(
                matrix, title=f"Input spike events per element: {name}"),
                f"Input spike events per element, per layer and timestep, {name}")
    return Section("Traces", table_html(pd.DataFrame(rows), max_rows=100) + figures)


# ----------------------------------------------------------------------------- simulation


def layer_energy_section(paths: Sequence[Path], run_dir: Path) -> Section:
    body = ""
    for path in paths[:MAX_FIGURES_PER_KIND]:
        energy = plot_data.layer_energy_by_component(read_table(path))
        name = relative(path, run_dir)
        body += figure_html(plots.draw_layer_energy(energy, title=f"Energy per layer: {name}"),
                            f"Energy per layer and component, {name}")
        totals = energy.sum(axis=0).rename("energy_pj").reset_index()
        totals["share (%)"] = 100.0 * totals["energy_pj"] / totals["energy_pj"].sum()
        body += table_html(totals)
    if len(paths) > MAX_FIGURES_PER_KIND:
        body += f"<p class='note'>{len(paths) - MAX_FIGURES_PER_KIND} more layer tables.</p>"
    return Section("Energy breakdown", body)


def totals_section(paths: Sequence[Path], run_dir: Path) -> Section:
    frames = []
    for path in paths:
        if path.suffix == ".json":
            frame = pd.DataFrame([totals_record(read_json_object(path))])
        else:
            frame = read_table(path)
        frame.insert(0, "file", relative(path, run_dir))
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    label_column = next((c for c in ("hw", "hwconfig", "config", "name", "variant")
                         if c in table), "file")
    body = ""
    if len(table) > 1 and table[label_column].astype(str).nunique() == len(table):
        labels = table[label_column].astype(str).tolist()
        for column in ("energy_pj", "latency_s"):
            body += figure_html(plots.draw_bar_summary(
                labels, table[column].tolist(), column=column,
                title=f"{plots.axis_label(column).split(' (')[0]} per "
                      f"{'hardware config' if label_column == 'hw' else label_column}"),
                f"{column} per {label_column}")
    labels = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    keep = labels + [c for c in TOTALS_SHOWN if c in table.columns]
    note = ("<p class='note'>Per-component energies and the other columns are in the "
            "files.</p>")
    return Section("Simulation totals", body + table_html(table[keep], max_rows=100) + note)


__all__ = ["summary_section", "summary_value", "rounds_section", "keep_ratio_section",
           "kept_tokens_section", "traces_section", "layer_energy_section", "totals_section",
           "MAX_FIGURES_PER_KIND"]
