"""How numbers and text are shown to a person: human units, number order, literal text.

Files keep their unit columns (`energy_pj`, `latency_s`); tables and plot axes for people
show energies in pJ/nJ/µJ/mJ/J and times in ns/µs/ms/s, one unit per column or axis, chosen
so its typical value reads between 1 and 1000. Numbers sort as numbers (4, 8, 16, not
16, 4, 8). Text a user wrote (trace, base, file and column names, titles) is shown
literally: matplotlib would read `$...$` as mathematics and hide a legend entry that starts
with `_`; `mpl_text` escapes both (HTML escaping is `html.escape`'s job).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

# (name, size in the column's base unit), smallest first.
ENERGY_UNITS_PJ = (("pJ", 1.0), ("nJ", 1e3), ("µJ", 1e6), ("mJ", 1e9), ("J", 1e12))
TIME_UNITS_S = (("ns", 1e-9), ("µs", 1e-6), ("ms", 1e-3), ("s", 1.0))
_ZERO_WIDTH_SPACE = "\u200b"


def pick_unit(values: Iterable[float] | float, units: Sequence[tuple[str, float]]
              ) -> tuple[str, float]:
    """The largest unit in which the median magnitude of the finite non-zero `values` is at
    least 1 (the smallest unit when there is none)."""
    array = np.abs(np.asarray(values, dtype=float).ravel())
    array = array[np.isfinite(array) & (array > 0)]
    if not array.size:
        return units[0]
    typical = float(np.median(array))
    chosen = units[0]
    for name, size in units:
        if typical >= size * (1 - 1e-12):
            chosen = (name, size)
    return chosen


def unit_kind(column: str) -> str | None:
    """`energy` for `*_pj` columns, `time` for `*_s` columns (not `edp_pj_s`), else None."""
    column = str(column)
    if column.endswith("_pj"):
        return "energy"
    if column.endswith("_s") and not column.endswith("_pj_s"):
        return "time"
    return None


def units_for(kind: str) -> Sequence[tuple[str, float]]:
    return ENERGY_UNITS_PJ if kind == "energy" else TIME_UNITS_S


def format_number(value: Any, digits: int = 4) -> str:
    """Whole numbers as integers; others with `digits` significant digits (trailing zeros
    kept, so a column reads evenly), thousands separated, no exponent between 1e-3 and 1e6;
    NaN and inf as signs a reader recognises."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        return "–" if value is None else str(value)
    value = float(value)
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    nearest = round(value)
    if abs(value - nearest) <= 1e-9 * max(1.0, abs(value)) and abs(value) < 1e6:
        return f"{int(nearest):,}"  # a count, a swept size (or 3e-8 s / 1 ns): no decimals
    if abs(value) >= 1e6 or abs(value) < 1e-3:
        return f"{value:.{digits - 1}e}"
    # '#' keeps trailing zeros (2.680 next to 3.534), then a bare trailing point goes
    text = f"{value:#,.{digits}g}" if abs(value) >= 1 else f"{value:#.{digits}g}"
    return text.rstrip(".")


def format_quantity(value: float, kind: str, digits: int = 4) -> str:
    """One value in its own human unit: `format_quantity(1.692e7, "energy")` is `16.92 µJ`."""
    if value is None or not math.isfinite(float(value)):
        return format_number(value, digits)
    name, size = pick_unit([value], units_for(kind))
    return f"{format_number(float(value) / size, digits)} {name}"


def format_energy(energy_pj: float) -> str:
    return format_quantity(energy_pj, "energy")


def format_duration(seconds: float) -> str:
    return format_quantity(seconds, "time")


def human_columns(table: pd.DataFrame) -> pd.DataFrame:
    """A copy for people: every `*_pj` and `*_s` column in one human unit, named by it
    (`energy_pj` -> `energy (µJ)`); other columns unchanged."""
    shown = table.copy()
    renames = {}
    for column in table.columns:
        kind = unit_kind(column)
        if kind is None:
            continue
        values = pd.to_numeric(table[column], errors="coerce")
        if values.isna().all() and table[column].notna().any():
            continue  # text in a unit column: leave it as written
        name, size = pick_unit(values, units_for(kind))
        shown[column] = values / size
        stem = str(column)[: -len("_pj") if kind == "energy" else -len("_s")]
        renames[column] = f"{stem} ({name})"
    return shown.rename(columns=renames)


def natural_key(value: Any) -> tuple:
    """Sort key: numbers first, by value; then booleans; then text, as text."""
    if isinstance(value, (bool, np.bool_)):
        return (1, int(value), "")
    if isinstance(value, (int, float, np.number)):
        number = float(value)
        return (0, number if not math.isnan(number) else math.inf, "")
    return (2, 0, str(value))


def natural_sorted(values: Iterable[Any]) -> list[Any]:
    return sorted(values, key=natural_key)


def mpl_text(text: Any) -> str:
    """`text` as matplotlib should draw it, literally: `$` escaped (no mathtext) and a
    leading `_` protected (matplotlib hides legend entries whose label starts with `_`)."""
    text = str(text).replace("$", r"\$")
    return _ZERO_WIDTH_SPACE + text if text.startswith("_") else text


__all__ = ["ENERGY_UNITS_PJ", "TIME_UNITS_S", "pick_unit", "unit_kind", "units_for",
           "format_number", "format_quantity", "format_energy", "format_duration",
           "human_columns", "natural_key", "natural_sorted", "mpl_text"]
