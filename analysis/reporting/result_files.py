"""Reading the result files that plots and reports start from, and recognising them.

Files are recognised by their columns or keys, not by their names, so a plot or report
works on whatever a run directory holds:

| what | recognised by |
|---|---|
| sweep results | `results.jsonl` / `results.csv` with `key` and `energy_pj` |
| simulator layer table | CSV with `layer`, `component`, `energy_pj` |
| simulator totals | JSON object (or CSV rows) with `energy_pj` and `latency_s` |
| LTH rounds | CSV with `round`, `weight_sparsity`, `test_accuracy` |
| keep-ratio table | CSV with `scorer`, `keep_ratio`, `accuracy`, `gflops` |
| trace | directory with `manifest.json`, `layers.csv`, `arrays.npz` |
| kept tokens | `.npz` with `images`, `num_tokens` and `kept/<selector>` arrays |
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sparsespikformer.analysis.reporting.plot_data import LTH_COLUMNS
from sparsespikformer.simulator.atomic import atomic_path
from sparsespikformer.simulator.errors import InputError
from sparsespikformer.simulator.trace import NPZ_READ_ERRORS

KEPT_PREFIX = "kept/"
LAYER_ENERGY_COLUMNS = ("layer", "component", "energy_pj")
SWEEP_COLUMNS = ("key", "energy_pj")
TOTALS_KEYS = ("energy_pj", "latency_s")


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A CSV or JSON-lines table; ValueError naming the file if it cannot be parsed or a
    column that holds numbers (`NUMERIC_COLUMNS`) holds text."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        if path.suffix == ".jsonl":
            table = pd.read_json(path, lines=True)
        else:
            table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            ValueError) as err:
        raise InputError(f"{path}: unreadable table ({err})".replace("\n", " ")) from None
    return check_numeric_columns(table, path)


# Columns the tools write as numbers (simulator totals and tables, sweeps, LTH rounds,
# keep-ratio tables); `energy_<component>_pj` columns too.
NUMERIC_COLUMNS = frozenset({
    "energy_pj", "latency_s", "cycles", "edp_pj_s", "area_mm2", "utilization",
    "dense_gflops", "effective_gflops", "sops", "effective_ops", "dram_bits",
    "latency_p50_s", "latency_p95_s", "memory_bound_layers", "count", "block",
    "compute_cycles", "memory_cycles", "stall_cycles", "dense_macs", "ops",
    "round", "weight_sparsity", "test_accuracy", "keep_ratio", "accuracy", "gflops",
    "accuracy_samples", "test_samples",
})


def _is_numeric_column(name: Any) -> bool:
    name = str(name)
    return name in NUMERIC_COLUMNS or (name.startswith("energy_") and name.endswith("_pj"))


def check_numeric_columns(table: pd.DataFrame, path: str | os.PathLike) -> pd.DataFrame:
    """`table` with its number columns as numbers; ValueError naming the file, column and
    row of the first value that is not a number (an empty cell is a missing number)."""
    for column in table.columns:
        values = table[column]
        if not _is_numeric_column(column) or values.dtype.kind in "biuf":
            continue
        numbers = pd.to_numeric(values, errors="coerce")
        bad = numbers.isna() & values.notna()
        if bad.any():
            row = int(bad.to_numpy().argmax())
            raise InputError(f"{path}: column {column}: not a number: "
                             f"{values.iloc[row]!r} in row {row + 1}")
        table[column] = numbers.astype(float)
    return table


def read_json_object(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise InputError(f"{path}: expected a JSON object")
    return value


def has_columns(table: pd.DataFrame, columns: Sequence[str]) -> bool:
    return all(column in table.columns for column in columns)


def is_trace_dir(path: Path) -> bool:
    return path.is_dir() and all((path / name).is_file()
                                 for name in ("manifest.json", "layers.csv", "arrays.npz"))


# ----------------------------------------------------------------------------- LTH rounds


def read_rounds(paths: Sequence[str | os.PathLike], labels: Sequence[str] | None = None
                ) -> pd.DataFrame | dict[str, pd.DataFrame]:
    """One rounds table (its `baseline` column names the runs) or several: concatenated when
    their `baseline` columns tell the runs apart (lth/rounds.csv with `imp`,
    lth/baseline_reinit/rounds.csv with `reinit`), else labelled by `labels` or by the
    folder each sits in."""
    paths = [Path(p) for p in paths]
    if labels is not None and len(labels) != len(paths):
        raise InputError(f"--labels: {len(labels)} labels for {len(paths)} input files")
    tables = [read_table(p) for p in paths]
    for path, table in zip(paths, tables, strict=True):
        missing = [c for c in LTH_COLUMNS if c not in table.columns]
        if missing:
            raise InputError(f"{path}: not a rounds table, missing {', '.join(missing)}")
    if len(tables) == 1 and labels is None:
        return tables[0]
    if labels is None and all("baseline" in t.columns for t in tables):
        runs = [set(t["baseline"].astype(str)) for t in tables]
        if sum(len(r) for r in runs) == len(set().union(*runs)):  # each run in one file
            return pd.concat(tables, ignore_index=True)
    names = list(labels) if labels is not None else _distinct_labels(paths)
    return dict(zip(names, tables, strict=True))


def _distinct_labels(paths: Sequence[Path]) -> list[str]:
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems) and not all(s == "rounds" for s in stems):
        return stems
    parents = [p.parent.name or p.stem for p in paths]
    return parents if len(set(parents)) == len(parents) else [str(p) for p in paths]


# ----------------------------------------------------------------------------- kept tokens


def write_kept_tokens(path: str | os.PathLike, images: np.ndarray,
                      kept: Mapping[str, np.ndarray], num_tokens: int) -> Path:
    """Save images (n, ...) and per-selector kept token indices (n, k) for `plot kept-tokens`.

    Indices refer to the original token grid (row-major, sqrt(num_tokens) per side)."""
    arrays = {"images": np.asarray(images), "num_tokens": np.asarray(int(num_tokens))}
    for name, indices in kept.items():
        arrays[f"{KEPT_PREFIX}{name}"] = np.asarray(indices, dtype=np.int64)
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    return path


def read_kept_tokens(path: str | os.PathLike
                     ) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except NPZ_READ_ERRORS as err:
        raise InputError(f"{path}: unreadable npz ({err})".replace("\n", " ")) from None
    if not {"images", "num_tokens"} <= set(arrays):
        raise InputError(f"{path}: expected arrays `images` and `num_tokens` "
                         f"(has: {', '.join(sorted(arrays))})")
    kept = {name[len(KEPT_PREFIX):]: array for name, array in arrays.items()
            if name.startswith(KEPT_PREFIX)}
    if not kept:
        raise InputError(f"{path}: no `{KEPT_PREFIX}<selector>` arrays")
    images, num_tokens = arrays["images"], arrays["num_tokens"]
    if num_tokens.ndim != 0 or num_tokens.dtype.kind not in "iu":
        raise InputError(f"{path}: num_tokens: expected one integer, got "
                         f"{num_tokens.dtype} shape {num_tokens.shape}")
    if images.dtype.kind not in "biuf":
        raise InputError(f"{path}: images: expected numbers, got dtype {images.dtype}")
    for name, indices in kept.items():  # strings or records would fail deep in plotting
        if indices.dtype.kind not in "iu":
            raise InputError(f"{path}: {KEPT_PREFIX}{name}: expected integer token indices, "
                             f"got dtype {indices.dtype}")
    return images, kept, int(num_tokens)


def is_kept_tokens_file(path: Path) -> bool:
    if path.suffix != ".npz" or not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {"images", "num_tokens"} <= set(archive.files)
    except NPZ_READ_ERRORS:
        return False


__all__ = ["read_table", "check_numeric_columns", "NUMERIC_COLUMNS", "read_json_object",
           "has_columns", "is_trace_dir", "read_rounds",
           "write_kept_tokens", "read_kept_tokens", "is_kept_tokens_file",
           "LAYER_ENERGY_COLUMNS", "SWEEP_COLUMNS", "TOTALS_KEYS", "KEPT_PREFIX"]
