"""What a run folder holds: every result file the report knows, recognised by its contents.

Files are classified by their columns or keys (see `result_files.py`), not by their names.
A JSON file is a simulation result only if its energy and latency are numbers: the demo's
stage bookkeeping (`stages/simulate.json` holds them as nested mappings per config) is not
a result and is never rendered.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sparsespikformer.analysis.reporting import plot_data
from sparsespikformer.analysis.reporting.result_files import (
    LAYER_ENERGY_COLUMNS,
    SWEEP_COLUMNS,
    TOTALS_KEYS,
    has_columns,
    is_kept_tokens_file,
    is_trace_dir,
    read_json_object,
    read_table,
)
from sparsespikformer.analysis.sweeps.store import RESULTS_CSV, RESULTS_JSONL, read_results
from sparsespikformer.simulator.checks import is_number
from sparsespikformer.simulator.errors import InputError

MAX_DEPTH = 4

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


def scan_run_dir(run_dir: Path) -> RunContents:
    """Classify every file under `run_dir` (hidden entries skipped) by its contents."""
    contents = RunContents()
    for path in _walk(run_dir, 0):
        try:
            _classify(path, contents)
        except (InputError, OSError) as err:  # an unreadable file is skipped, not fatal
            log.warning("%s: skipped (%s)", path, err)
    return contents


def relative(path: Path, run_dir: Path) -> str:
    try:
        return str(path.relative_to(run_dir)) or "."
    except ValueError:
        return str(path)


def _walk(directory: Path, depth: int) -> Iterable[Path]:
    entries = sorted(p for p in directory.iterdir() if not p.name.startswith("."))
    for entry in entries:
        yield entry
        if entry.is_dir() and depth < MAX_DEPTH and not is_trace_dir(entry):
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
        if totals_record(read_json_object(path)) is not None:
            contents.totals.append(path)
    elif path.suffix == ".csv":
        _classify_csv(path, read_table(path), contents)
    elif is_kept_tokens_file(path):
        contents.kept_tokens.append(path)


def totals_record(data: dict[str, Any]) -> dict[str, Any] | None:
    """Simulation totals, flat (`{"energy_pj": .., "latency_s": ..}`) or as
    `SimResult.to_dict()` writes them (`{"hw": .., "trace": .., "totals": {...}}`); their
    scalar entries only. None unless energy and latency are numbers."""
    record = data
    totals = data.get("totals")
    if not _has_number_totals(data) and isinstance(totals, dict):
        labels = {k: v for k, v in data.items() if k != "totals"}
        record = {**labels, **totals}
    if not _has_number_totals(record):
        return None
    return {key: value for key, value in record.items()
            if value is None or isinstance(value, (str, int, float))}


def _has_number_totals(record: dict[str, Any]) -> bool:
    return all(is_number(record.get(key)) for key in TOTALS_KEYS)


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


__all__ = ["RunContents", "scan_run_dir", "relative", "totals_record", "MAX_DEPTH"]
