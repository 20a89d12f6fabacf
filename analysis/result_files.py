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
import zipfile
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from sparsespikformer.analysis.plot_data import LTH_COLUMNS
from sparsespikformer.simulator.atomic import atomic_path

KEPT_PREFIX = "kept/"
LAYER_ENERGY_COLUMNS = ("layer", "component", "energy_pj")
SWEEP_COLUMNS = ("key", "energy_pj")
TOTALS_KEYS = ("energy_pj", "latency_s")


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A CSV or JSON-lines table; ValueError naming the file if it cannot be parsed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        if path.suffix == ".jsonl":
            return pd.read_json(path, lines=True)
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            ValueError) as err:
        raise ValueError(f"{path}: unreadable table ({err})".replace("\n", " ")) from None


def read_json_object(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object")
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
        raise ValueError(f"--labels: {len(labels)} labels for {len(paths)} input files")
    tables = [read_table(p) for p in paths]
    for path, table in zip(paths, tables, strict=True):
        missing = [c for c in LTH_COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"{path}: not a rounds table, missing {', '.join(missing)}")
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
            names = set(archive.files)
            if not {"images", "num_tokens"} <= names:
                raise ValueError(f"{path}: expected arrays `images` and `num_tokens` "
                                 f"(has: {', '.join(sorted(names))})")
            kept = {name[len(KEPT_PREFIX):]: archive[name] for name in archive.files
                    if name.startswith(KEPT_PREFIX)}
            if not kept:
                raise ValueError(f"{path}: no `{KEPT_PREFIX}<selector>` arrays")
            return archive["images"], kept, int(archive["num_tokens"])
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: unreadable npz ({err})") from None


def is_kept_tokens_file(path: Path) -> bool:
    if path.suffix != ".npz" or not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {"images", "num_tokens"} <= set(archive.files)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return False


__all__ = ["read_table", "read_json_object", "has_columns", "is_trace_dir", "read_rounds",
           "write_kept_tokens", "read_kept_tokens", "is_kept_tokens_file",
           "LAYER_ENERGY_COLUMNS", "SWEEP_COLUMNS", "TOTALS_KEYS", "KEPT_PREFIX"]
