"""One self-contained HTML page summarising a run directory.

`build_report(run_dir, out_path)` looks for every result file it knows (see
`result_files.py`: summary.json, sweep results, LTH rounds, keep-ratio tables, traces,
simulator layer tables and totals, kept-token files), draws their plots, and writes one
HTML file with the figures embedded as base64 PNG and the tables inline: no external
file, script or stylesheet, so it can be mailed or archived as is. The same run directory
gives the same bytes (no timestamps).

summary.json: scalars become a table; a nested `{metric: {config: {variant: value}}}` with a
known metric name (`energy_pj`, `latency_s`, ...) becomes grouped bars (e.g. dense vs
co-designed energy per hw config) plus its table; other nested mappings become tables.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sparsespikformer.analysis.pareto import pareto_front
from sparsespikformer.analysis.reporting import plot_data, plots
from sparsespikformer.analysis.reporting.html import (
    FIGURE_FILES,
    Section,
    figure_html,
    render_page,
    table_html,
)
from sparsespikformer.analysis.reporting.result_files import (
    LAYER_ENERGY_COLUMNS,
    SWEEP_COLUMNS,
    TOTALS_KEYS,
    has_columns,
    is_kept_tokens_file,
    is_trace_dir,
    read_json_object,
    read_kept_tokens,
    read_table,
)
from sparsespikformer.analysis.sweeps.store import RESULTS_CSV, RESULTS_JSONL, read_results
from sparsespikformer.simulator.atomic import atomic_write_text
from sparsespikformer.simulator.errors import InputError
from sparsespikformer.simulator.trace import Trace

MAX_FIGURES_PER_KIND = 4  # e.g. at most four trace heatmaps: the page stays readable
_MAX_DEPTH = 4

log = logging.getLogger(__name__)


@dataclass
class RunContents:
    """What a run directory holds, by kind (paths relative order: sorted, depth first)."""

    summaries: list[Path] = field(default_factory=list)
    sweeps: list[Path] = field(default_factory=list)  # directories (or results CSVs)
    rounds: list[Path] = field(default_factory=list)
    keep_ratio_tables: list[Path] = field(default_factory=list)
    layer_energy_tables: list[Path] = field(default_factory=list)
    totals: list[Path] = field(default_factory=list)  # JSON or CSV with energy & latency
    traces: list[Path] = field(default_factory=list)
    kept_tokens: list[Path] = field(default_factory=list)

    def empty(self) -> bool:
        return not any(getattr(self, name) for name in self.__dataclass_fields__)


# ----------------------------------------------------------------------------- discovery


def scan_run_dir(run_dir: Path) -> RunContents:
    """Classify every file under `run_dir` (hidden entries skipped) by its contents."""
    contents = RunContents()
    for path in _walk(run_dir, 0):
        try:
            _classify(path, contents)
        except (InputError, OSError) as err:  # an unreadable file is skipped, not fatal
            log.warning("%s: skipped (%s)", path, err)
    return contents


def _walk(directory: Path, depth: int) -> Iterable[Path]:
    entries = sorted(p for p in directory.iterdir() if not p.name.startswith("."))
    for entry in entries:
        yield entry
        if entry.is_dir() and depth < _MAX_DEPTH and not is_trace_dir(entry):
            yield from _walk(entry, depth + 1)


def _classify(path: Path, contents: RunContents) -> None:
    if path.is_dir():
        if is_trace_dir(path):
            contents.traces.append(path)
        elif (path / RESULTS_JSONL).is_file() or (path / RESULTS_CSV).is_file():
            if has_columns(read_results(path), SWEEP_COLUMNS):
                contents.sweeps.append(path)
        return
    if path.parent in contents.sweeps or path.parent in contents.traces:
        return
    if path.name == "summary.json":
        contents.summaries.append(path)
    elif path.suffix == ".json":
        if _totals_record(read_json_object(path)) is not None:
            contents.totals.append(path)
    elif path.suffix == ".csv":
        _classify_csv(path, read_table(path), contents)
    elif is_kept_tokens_file(path):
        contents.kept_tokens.append(path)


def _totals_record(data: dict[str, Any]) -> dict[str, Any] | None:
    """Simulation totals, flat (`{"energy_pj": .., "latency_s": ..}`) or as
    `SimResult.to_dict()` writes them (`{"hw": .., "trace": .., "totals": {...}}`)."""
    if all(key in data for key in TOTALS_KEYS):
        return data
    totals = data.get("totals")
    if isinstance(totals, dict) and all(key in totals for key in TOTALS_KEYS):
        labels = {k: v for k, v in data.items() if isinstance(v, (str, int, float))}
        return {**labels, **totals}
    return None


def _classify_csv(path: Path, table: pd.DataFrame, contents: RunContents) -> None:
    if has_columns(table, SWEEP_COLUMNS):  # a sweep table copied out of its directory
        contents.sweeps.append(path)
    elif has_columns(table, plot_data.LTH_COLUMNS):
        contents.rounds.append(path)
    elif has_columns(table, plot_data.KEEP_RATIO_COLUMNS):
        contents.keep_ratio_tables.append(path)
    elif has_columns(table, LAYER_ENERGY_COLUMNS) or has_columns(table, ("layer", "energy_pj")):
        contents.layer_energy_tables.append(path)  # a breakdown or a per-layer table
    elif has_columns(table, TOTALS_KEYS):
        contents.totals.append(path)


# ----------------------------------------------------------------------------- sections


def _relative(path: Path, run_dir: Path) -> str:
    try:
        return str(path.relative_to(run_dir)) or "."
    except ValueError:
        return str(path)


def summary_section(path: Path, run_dir: Path) -> Section:
    summary = read_json_object(path)
    scalars = [(key, value) for key, value in summary.items()
               if not isinstance(value, (dict, list))]
    body = table_html(pd.DataFrame(scalars, columns=["metric", "value"]), max_rows=200)
    for key, value in summary.items():
        if isinstance(value, dict) and value:
            nested = pd.DataFrame.from_dict(value, orient="index")
            if nested.shape[1] == 1 and nested.columns[0] == 0:
                nested.columns = ["value"]
            body += f"<h3>{html.escape(key)}</h3>"
            numeric = nested.apply(pd.to_numeric, errors="coerce")
            if (plots.is_known_metric(key) and numeric.notna().all().all()
                    and all(isinstance(v, dict) for v in value.values())):
                # {"energy_pj": {config: {"dense": .., "codesigned": ..}}}: grouped bars
                variants = " vs ".join(map(str, numeric.columns))
                body += figure_html(plots.draw_grouped_bars(
                    numeric, column=key, title=f"{plots.axis_label(key).split(' (')[0]}: "
                    f"{variants}"), f"{key} per {' / '.join(map(str, numeric.index[:3]))}"
                    f"{', ...' if len(numeric) > 3 else ''}: {variants}")
            body += table_html(nested.reset_index(names=key), max_rows=200)
    return Section(f"Summary ({_relative(path, run_dir)})", body)


def sweep_section(directory: Path, run_dir: Path) -> Section:
    results = read_results(directory)
    ok = results[results["status"].fillna("ok") == "ok"] if "status" in results else results
    body = f"<p>{len(results)} points, {len(results) - len(ok)} rejected by the config."
    meta = (directory if directory.is_dir() else directory.parent) / "sweep.json"
    if meta.is_file():
        info = read_json_object(meta)
        body += (f" Spec <code>{html.escape(str(info.get('spec_name', '')))}</code>: "
                 f"{html.escape(str(info.get('description', '')))}; total "
                 f"{info.get('total_points')} points.")
    body += "</p>"
    body += _sweep_axes_table(results)
    metrics = [c for c in ("energy_pj", "latency_s", "edp_pj_s", "area_mm2", "utilization")
               if c in ok]
    if metrics and not ok.empty:
        best = ok.loc[ok[metrics[0]].idxmin()]
        body += "<h3>Lowest-energy point</h3>" + table_html(
            best.drop(labels=[c for c in ("key", "error", "status") if c in best.index])
            .reset_index().set_axis(["column", "value"], axis=1), max_rows=60)
    for x, y, y_dir in _pareto_pairs(ok):
        data = plot_data.pareto_plot_data(ok, x=x, y=y, y_direction=y_dir,
                                          group="trace" if "trace" in ok else None)
        body += figure_html(plots.draw_pareto(data), f"{y} vs {x}: Pareto front of "
                            f"{len(data.front)} of {len(data.points)} points")
        front = pareto_front(ok, {x: "min", y: y_dir})
        shown = [c for c in ("trace", "base", *_swept_columns(ok), x, y) if c in front]
        body += table_html(front[shown])
    return Section(f"Sweep ({_relative(directory, run_dir)})", body)


def _swept_columns(results: pd.DataFrame) -> list[str]:
    return [c for c in results.columns if "." in c]  # axis keys are dotted


def _sweep_axes_table(results: pd.DataFrame) -> str:
    rows = [(column, results[column].nunique(), ", ".join(map(str, sorted(
        results[column].dropna().unique(), key=str)))[:200])
            for column in ["trace", "base", *_swept_columns(results)] if column in results]
    return table_html(pd.DataFrame(rows, columns=["swept", "values", "which"]), max_rows=50)


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


def rounds_section(paths: Sequence[Path], run_dir: Path) -> Section:
    from sparsespikformer.analysis.reporting.result_files import read_rounds

    rounds = read_rounds(paths)
    data = plot_data.lth_curve_data(rounds)
    body = figure_html(plots.draw_lth(data), "Test accuracy against weight sparsity, "
                       "one line per run")
    body += table_html(data, max_rows=60)
    names = ", ".join(_relative(p, run_dir) for p in paths)
    return Section(f"Lottery-ticket pruning ({names})", body)


def keep_ratio_section(path: Path, run_dir: Path) -> Section:
    data = plot_data.keep_ratio_data(read_table(path))
    body = figure_html(plots.draw_keep_ratio(data), "Accuracy and GFLOPs against keep ratio")
    body += table_html(data, max_rows=60)
    return Section(f"Token selection ({_relative(path, run_dir)})", body)


def traces_section(paths: Sequence[Path], run_dir: Path) -> Section:
    rows, figures = [], ""
    for index, path in enumerate(paths):
        trace = Trace.load(path)
        manifest = trace.manifest
        rows.append({
            "trace": _relative(path, run_dir), "preset": manifest["preset"],
            "accuracy": manifest["accuracy"], "weight_sparsity": manifest["weight_sparsity"],
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
            name = _relative(path, run_dir)
            figures += figure_html(plots.draw_input_events(
                matrix, title=f"Input spike events per element: {name}"),
                f"Input spike events per element, per layer and timestep, {name}")
    return Section("Traces", table_html(pd.DataFrame(rows), max_rows=100) + figures)


def layer_energy_section(paths: Sequence[Path], run_dir: Path) -> Section:
    body = ""
    for path in paths[:MAX_FIGURES_PER_KIND]:
        energy = plot_data.layer_energy_by_component(read_table(path))
        name = _relative(path, run_dir)
        body += figure_html(plots.draw_layer_energy(energy, title=f"Energy per layer: {name}"),
                            f"Energy per layer and component, {name}")
        totals = energy.sum(axis=0).rename("energy_pj").reset_index()
        totals["share_%"] = 100.0 * totals["energy_pj"] / totals["energy_pj"].sum()
        body += table_html(totals)
    if len(paths) > MAX_FIGURES_PER_KIND:
        body += f"<p class='note'>{len(paths) - MAX_FIGURES_PER_KIND} more layer tables.</p>"
    return Section("Energy breakdown", body)


def totals_section(paths: Sequence[Path], run_dir: Path) -> Section:
    frames = []
    for path in paths:
        if path.suffix == ".json":
            frame = pd.DataFrame([_totals_record(read_json_object(path))])
        else:
            frame = read_table(path)
        frame.insert(0, "file", _relative(path, run_dir))
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
    keep = [c for c in table.columns if not str(c).startswith("energy_") or c == "energy_pj"]
    return Section("Simulation totals", body + table_html(table[keep], max_rows=100))


def kept_tokens_section(paths: Sequence[Path], run_dir: Path) -> Section:
    body = ""
    for path in paths[:MAX_FIGURES_PER_KIND]:
        images, kept, num_tokens = read_kept_tokens(path)
        data = plot_data.kept_tokens_data(images, kept, num_tokens)
        body += figure_html(plots.draw_kept_tokens(data), f"Kept tokens, "
                            f"{_relative(path, run_dir)}")
    return Section("Token selection on example images", body)


# ----------------------------------------------------------------------------- page


def build_sections(run_dir: Path, contents: RunContents) -> list[Section]:
    makers: list[tuple[str, Any]] = [
        ("summaries", lambda: [summary_section(p, run_dir) for p in contents.summaries]),
        ("totals", lambda: [totals_section(contents.totals, run_dir)]),
        ("layer_energy_tables",
         lambda: [layer_energy_section(contents.layer_energy_tables, run_dir)]),
        ("sweeps", lambda: [sweep_section(p, run_dir) for p in contents.sweeps]),
        ("rounds", lambda: [rounds_section(contents.rounds, run_dir)]),
        ("keep_ratio_tables",
         lambda: [keep_ratio_section(p, run_dir) for p in contents.keep_ratio_tables]),
        ("kept_tokens", lambda: [kept_tokens_section(contents.kept_tokens, run_dir)]),
        ("traces", lambda: [traces_section(contents.traces, run_dir)]),
    ]
    sections = []
    for attribute, make in makers:
        if not getattr(contents, attribute):
            continue
        try:
            sections.extend(make())
        except (InputError, OSError) as err:  # one bad file must not sink the page
            log.warning("report: %s skipped (%s)", attribute, err)
            sections.append(Section(attribute.replace("_", " ").capitalize(),
                                    f"<p class='note'>Could not be shown: "
                                    f"{html.escape(str(err))}</p>"))
    return sections


def build_report(run_dir: str | os.PathLike, out_path: str | os.PathLike, *,
                 title: str | None = None, figures_dir: str | os.PathLike | None = None
                 ) -> Path:
    """Write the HTML report of `run_dir` to `out_path` (atomically); return its path.

    With `figures_dir`, every figure of the page is also written there as PNG and PDF
    (`00_<caption>.png`, ...), for papers and slides."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: run directory not found")
    out_path = Path(out_path)
    contents = scan_run_dir(run_dir)
    token = FIGURE_FILES.set(None if figures_dir is None else (Path(figures_dir), []))
    try:
        sections = build_sections(run_dir, contents)
    finally:
        FIGURE_FILES.reset(token)
    title = title or f"SparseSpikformer run: {run_dir.resolve().name}"
    atomic_write_text(out_path, render_page(title, sections))
    return out_path


__all__ = ["build_report", "scan_run_dir", "RunContents", "Section", "render_page",
           "figure_html", "table_html"]
