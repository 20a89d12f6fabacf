"""What a plot axis shows: the quantity in a human unit, a scale that draws every point, and
a note when some cannot be drawn.

* Units: energies in pJ…J and times in ns…s, one unit per axis, chosen from the data
  (`display.pick_unit`); accuracy and utilisation in percent.
* Scale: linear, unless the finite positive values span more than 30× (then log). A log
  axis cannot show 0 or a negative value, so when the data hold any, the axis is `symlog`
  instead: logarithmic above the smallest positive value, linear through 0 below it, so a
  design with zero DRAM traffic is drawn at 0 rather than silently dropped.
* NaN and ±inf cannot be drawn on any scale: the figure says so in words (`note_not_drawn`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from sparsespikformer.analysis.reporting.display import mpl_text, pick_unit, unit_kind, units_for

DECADES_FOR_LOG = 30.0  # max/min of the positive values above which an axis goes log
_NAMES = {
    "energy_pj": "Energy per image",
    "latency_s": "Latency per image",
    "latency_p50_s": "Median latency per image",
    "latency_p95_s": "95th-percentile latency per image",
}
_FIXED = {  # column -> (label, factor from the stored unit)
    "edp_pj_s": ("Energy-delay product (µJ·ms)", 1e-3),
    "area_mm2": ("Area (mm²)", 1.0),
    "utilization": ("PE utilisation (%)", 100.0),
    "dense_gflops": ("Dense GFLOPs per image", 1.0),
    "effective_gflops": ("Effective GFLOPs per image", 1.0),
    "dram_bits": ("DRAM traffic per image (bits)", 1.0),
}
ACCURACY = "accuracy"


def is_known_metric(column: str) -> bool:
    return column in _NAMES or column in _FIXED or column == ACCURACY


def axis_quantity(column: str, values: Iterable[float] | None = None) -> tuple[str, float]:
    """(axis label, factor) for `column`: stored value x factor is what the axis shows.
    Energy and time units are chosen from `values`; other columns are shown as stored,
    labelled with their (literal) name."""
    column = str(column)
    array = np.asarray([] if values is None else list(values), dtype=float)
    if column == ACCURACY:
        in_percent = array.size and np.nanmax(np.where(np.isfinite(array), array, np.nan),
                                              initial=0.0) > 1.0
        return "Top-1 accuracy (%)", 1.0 if in_percent else 100.0
    if column in _FIXED:
        return _FIXED[column]
    kind = unit_kind(column)
    if kind is not None:
        name, size = pick_unit(array, units_for(kind)) if array.size else \
            (("µJ", 1e6) if kind == "energy" else ("ms", 1e-3))
        stem = _NAMES.get(column, mpl_text(column[: column.rfind("_")]))
        return f"{stem} ({name})", 1.0 / size
    return mpl_text(column), 1.0


def scale_for(values: Iterable[float]) -> tuple[str, dict]:
    """(scale name, its keyword arguments) that draws every finite value of `values`."""
    array = np.asarray(list(values), dtype=float)
    finite = array[np.isfinite(array)]
    positive = finite[finite > 0]
    if positive.size < 2 or positive.max() / positive.min() <= DECADES_FOR_LOG:
        return "linear", {}
    if (finite <= 0).any():
        return "symlog", {"linthresh": float(positive.min())}
    return "log", {}


def apply_scale(axes, which: str, values: Iterable[float]) -> str:
    """Set the x or y scale of `axes` from `values`; returns the scale chosen."""
    values = np.asarray(list(values), dtype=float)
    name, kwargs = scale_for(values)
    (axes.set_xscale if which == "x" else axes.set_yscale)(name, **kwargs)
    finite = values[np.isfinite(values)]
    if name == "symlog" and finite.min() >= 0:
        # nothing below 0: end the axis just under it, not at the mirror of the top decade
        (axes.set_xlim if which == "x" else axes.set_ylim)(-0.5 * kwargs["linthresh"],
                                                           1.6 * finite.max())
    return name


def not_drawn_notes(values: dict[str, Sequence[float]], what: str = "point") -> list[str]:
    """One phrase per column holding NaN or ±inf: how many values cannot be drawn, why."""
    notes = []
    for column, column_values in values.items():
        array = np.asarray(column_values, dtype=float)
        missing, infinite = int(np.isnan(array).sum()), int(np.isinf(array).sum())
        if missing:
            notes.append(f"{missing} {what}{'s' if missing != 1 else ''} with {column} "
                         "missing (NaN)")
        if infinite:
            notes.append(f"{infinite} {what}{'s' if infinite != 1 else ''} with {column} "
                         "infinite")
    return notes


def note_not_drawn(figure, notes: Sequence[str]) -> None:
    """Say under the figure, in words, which points are not drawn and why."""
    if notes:
        figure.supxlabel(mpl_text("Not drawn: " + "; ".join(notes) + "."), fontsize=8,
                         color="#a02020")


__all__ = ["DECADES_FOR_LOG", "is_known_metric", "axis_quantity", "scale_for", "apply_scale",
           "not_drawn_notes", "note_not_drawn"]
