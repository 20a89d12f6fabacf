"""Append-only sweep results: one JSON line per finished point, keyed by the point's hash.

`results.jsonl` is the durable record. Each batch of finished points is written with one
`write` and flushed before the sweep goes on, so a killed process loses at most the batch
in flight and never corrupts a finished line; the file is also fsynced (at most once per
`fsync_interval_s`, and on close), so an OS crash or power cut loses at most that much. A
kill in the middle of a write can leave a torn last line (no newline, or not JSON);
opening the store cuts it off, and those points run again. Keys already present are never
evaluated twice.

`results.csv` is the tidy table, rewritten atomically from the JSON lines; a lock file
keeps two sweeps from writing into the same directory at once.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from sparsespikformer.analysis.reporting.result_files import check_numeric_columns
from sparsespikformer.simulator.atomic import atomic_write_text, atomic_write_with
from sparsespikformer.simulator.errors import InputError

try:  # POSIX advisory locks; elsewhere the store runs unlocked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
LOCK_FILE = ".sweep.lock"

log = logging.getLogger(__name__)


class SweepStore:
    """The results of one sweep directory; use as a context manager (it holds a lock)."""

    def __init__(self, directory: str | os.PathLike, *, fsync_interval_s: float = 1.0) -> None:
        self.directory = Path(directory)
        self.fsync_interval_s = fsync_interval_s
        self._last_fsync = time.monotonic()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = self.directory / RESULTS_JSONL
        self._lock = _acquire_lock(self.directory / LOCK_FILE)
        try:
            self._rows: dict[str, dict[str, Any]] = _read_rows(self.jsonl_path)
            self._file = open(self.jsonl_path, "ab")  # noqa: SIM115 - closed in close()
        except BaseException:
            _release_lock(self._lock)
            raise

    # ------------------------------------------------------------------------- reading

    def __contains__(self, key: str) -> bool:
        return key in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def keys(self) -> set[str]:
        return set(self._rows)

    def row(self, key: str) -> dict[str, Any]:
        return dict(self._rows[key])

    def rows(self) -> list[dict[str, Any]]:
        """Every stored row, in the order they were finished."""
        return [dict(row) for row in self._rows.values()]

    # ------------------------------------------------------------------------- writing

    def append(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Durably append rows whose key is new; return how many were written."""
        fresh = []
        for row in rows:
            key = row.get("key")
            if not isinstance(key, str) or not key:
                raise InputError(f"{self.jsonl_path}: a result row needs a string `key`")
            if key in self._rows:
                log.warning("%s: point %s already stored; not written twice",
                            self.jsonl_path, key[:12])
                continue
            clean = _json_ready(row)
            fresh.append(_encode_line(clean))
            # keep what a reader of the file will see (NaN as None), so a resumed sweep and
            # an uninterrupted one hold identical rows
            self._rows[key] = clean
        if fresh:
            blob = "".join(fresh).encode("utf-8")
            self._file.write(blob)
            self._file.flush()  # in the OS now: survives a kill of this process
            if time.monotonic() - self._last_fsync >= self.fsync_interval_s:
                self._sync()
        return len(fresh)

    def rekey(self, changes: Mapping[str, tuple[str, Mapping[str, Any]]]) -> None:
        """Store the rows of old keys under new keys, with some columns changed:
        `{old key: (new key, {column: value})}`. `results.jsonl` is rewritten atomically
        (a one-time migration: appending copies would leave both keys in the file)."""
        if not changes:
            return
        rows: dict[str, dict[str, Any]] = {}
        for key, row in self._rows.items():
            new_key, columns = changes.get(key, (key, {}))
            if new_key in rows or (new_key != key and new_key in self._rows):
                raise InputError(f"{self.jsonl_path}: cannot re-key {key[:12]}: "
                                 f"{new_key[:12]} is stored already")
            rows[new_key] = _json_ready({**row, **columns, "key": new_key})
        self._file.close()
        atomic_write_text(self.jsonl_path, "".join(_encode_line(row) for row in rows.values()))
        self._rows = rows
        self._file = open(self.jsonl_path, "ab")  # noqa: SIM115 - closed in close()

    def _sync(self) -> None:
        os.fsync(self._file.fileno())
        self._last_fsync = time.monotonic()

    def write_table(self, keys: Sequence[str] | None = None,
                    columns: Sequence[str] | None = None) -> Path:
        """Atomically write `results.csv`: rows of `keys` (in that order; default all)."""
        return write_results_csv(self.directory / RESULTS_CSV, self.table(keys, columns))

    def table(self, keys: Sequence[str] | None = None,
              columns: Sequence[str] | None = None) -> pd.DataFrame:
        chosen = list(self._rows) if keys is None else [k for k in keys if k in self._rows]
        return rows_to_frame([self._rows[k] for k in chosen], columns)

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            self._sync()
            self._file.close()
        _release_lock(self._lock)

    def __enter__(self) -> "SweepStore":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


# ----------------------------------------------------------------------------- helpers


def rows_to_frame(rows: Sequence[Mapping[str, Any]],
                  columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A DataFrame with `columns` first (in order), then any other keys the rows have."""
    frame = pd.DataFrame(list(rows))
    for column in frame.columns:  # a column of nothing but nulls is a missing number
        if frame[column].dtype == object and frame[column].isna().all():
            frame[column] = float("nan")
    if columns is not None:
        leading = [c for c in columns if c in frame.columns]
        frame = frame[leading + [c for c in frame.columns if c not in set(leading)]]
    return frame


def write_results_csv(path: Path, table: pd.DataFrame) -> Path:
    atomic_write_with(path, lambda tmp: table.to_csv(tmp, index=False, lineterminator="\n"))
    return path


def read_results(directory_or_file: str | os.PathLike) -> pd.DataFrame:
    """A sweep's results as a DataFrame, from its directory, results.csv or results.jsonl.

    Reads without the lock, so a report can look at a sweep that is still running. In a
    directory, results.csv (the last run's points, in its spec's order, written when a run
    ends or is interrupted) is read unless results.jsonl is newer: a sweep still running,
    or killed before it could write the table. The JSON lines keep every point ever run
    there, also those of an earlier spec resumed in the same folder.
    """
    path = Path(directory_or_file)
    if path.is_dir():
        path = _freshest_table(path / RESULTS_JSONL, path / RESULTS_CSV)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no sweep results found")
    if path.suffix == ".jsonl":
        return check_numeric_columns(
            rows_to_frame(list(_read_rows(path, repair=False).values())), path)
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: unreadable CSV ({err})".replace("\n", " ")) from None
    return check_numeric_columns(table, path)


def _freshest_table(jsonl: Path, csv: Path) -> Path:
    if not csv.is_file():
        return jsonl
    if not jsonl.is_file() or csv.stat().st_mtime_ns >= jsonl.stat().st_mtime_ns:
        return csv
    return jsonl


def _json_ready(row: Mapping[str, Any]) -> dict[str, Any]:
    """Plain scalars as `json.loads` gives them back; NaN and inf (not JSON) become None."""
    clean = {}
    for name, value in row.items():
        if isinstance(value, float):
            clean[name] = value if math.isfinite(value) else None
        elif value is None or isinstance(value, (str, bool, int)):
            clean[name] = value
        elif hasattr(value, "item"):  # a numpy scalar
            clean[name] = _json_ready({name: value.item()})[name]
        else:
            raise InputError(f"result column {name!r}: {type(value).__name__} is not a scalar")
    return clean


def _encode_line(clean: Mapping[str, Any]) -> str:
    return json.dumps(clean, separators=(",", ":"), allow_nan=False) + "\n"


def _read_rows(path: Path, *, repair: bool = True) -> dict[str, dict[str, Any]]:
    """Rows by key, in file order; a torn last line is cut off (when `repair`) or ignored."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]  # tail: bytes after the last newline
    rows: dict[str, dict[str, Any]] = {}
    good_bytes = 0
    for number, line in enumerate(complete, start=1):
        row = _decode_line(line)
        if row is None:
            if number == len(complete) and not tail:
                break  # a torn final record that happened to end in a newline byte
            raise InputError(f"{path}:{number}: corrupt result line (not a JSON object "
                             "with a key); remove it to resume")
        if row["key"] in rows:
            log.warning("%s:%d: duplicate key %s ignored", path, number, row["key"][:12])
        else:
            rows[row["key"]] = row
        good_bytes += len(line) + 1
    if good_bytes != len(data):
        dropped = len(data) - good_bytes
        log.warning("%s: dropping a torn last line (%d bytes); that point runs again",
                    path, dropped)
        if repair:
            with open(path, "r+b") as handle:
                handle.truncate(good_bytes)
                handle.flush()
                os.fsync(handle.fileno())
    return rows


def _decode_line(line: bytes) -> dict[str, Any] | None:
    try:
        row = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(row, dict) or not isinstance(row.get("key"), str):
        return None
    return row


def _acquire_lock(path: Path):
    handle = open(path, "a+b")  # noqa: SIM115 - released in _release_lock
    if fcntl is None:
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise OSError(errno.EBUSY, "another sweep is writing into this directory",
                      str(path.parent)) from None
    return handle


def _release_lock(handle) -> None:
    if handle.closed:
        return
    if fcntl is not None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    handle.close()


__all__ = ["SweepStore", "read_results", "rows_to_frame", "write_results_csv",
           "RESULTS_JSONL", "RESULTS_CSV"]
