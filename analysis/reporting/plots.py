"""Drawing: one function per plot, from the data `plot_data.py` prepares.

Headless by construction: figures are `matplotlib.figure.Figure` objects on the Agg canvas,
never pyplot windows, so no global backend is switched and no display is needed.
`save_figure` writes PNG and PDF atomically; `png_bytes` is what the HTML report embeds.

Every piece of user text (titles, trace, base, layer and component names) goes through
`display.mpl_text`, so it is drawn literally; axes choose their unit and scale in
`plot_axes.py`, so a zero is drawn and a NaN is named under the figure, never hidden.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter

from sparsespikformer.analysis.reporting.display import format_energy, format_number, mpl_text
from sparsespikformer.analysis.reporting.plot_axes import (
    apply_scale,
    axis_quantity,
    is_known_metric,
    not_drawn_notes,
    note_not_drawn,
)
from sparsespikformer.analysis.reporting.plot_data import KeptTokensData, ParetoPlotData
from sparsespikformer.simulator.atomic import atomic_path
from sparsespikformer.simulator.errors import InputError

DPI = 150
FORMATS = ("png", "pdf")
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
_SCORER_STYLE = {"learned": ("#1f77b4", "o"), "firing_rate": ("#ff7f0e", "s"),
                 "random": ("#7f7f7f", "^")}
def new_figure(width_in: float, height_in: float) -> Figure:
    figure = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def axis_label(column: str) -> str:
    """The axis label of `column` in its default unit (e.g. for titles)."""
    return axis_quantity(column)[0]


# ----------------------------------------------------------------------------- saving


def save_figure(figure: Figure, path: str | Path, formats: Sequence[str] = FORMATS
                ) -> list[Path]:
    """Write `path` with each of `formats` as suffix (a given .png/.pdf suffix is replaced)."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix.lower() in (".png", ".pdf") else path
    written = []
    for fmt in formats:
        if fmt not in FORMATS:
            raise InputError(f"format: expected one of {FORMATS}, got {fmt!r}")
        target = stem.with_name(f"{stem.name}.{fmt}")
        with atomic_path(target) as tmp:
            figure.savefig(tmp, format=fmt, dpi=DPI, metadata=_fixed_metadata(fmt))
        written.append(target)
    return written


def _fixed_metadata(fmt: str) -> dict:
    # no creation date: the same data gives the same file
    return {"CreationDate": None} if fmt == "pdf" else {"Software": None}


def png_bytes(figure: Figure) -> bytes:
    return figure_bytes(figure, "png")


def figure_bytes(figure: Figure, fmt: str) -> bytes:
    """The file `save_figure` would write for `fmt`, as bytes."""
    if fmt not in FORMATS:
        raise InputError(f"format: expected one of {FORMATS}, got {fmt!r}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=DPI, metadata=_fixed_metadata(fmt))
    return buffer.getvalue()


# ----------------------------------------------------------------------------- plots


def draw_layer_energy(energy: pd.DataFrame, *, title: str = "Energy per layer by component"
                      ) -> Figure:
    """Stacked horizontal bars, one per layer (top = first executed), in one energy unit."""
    rows = len(energy)
    figure = new_figure(10.0, max(3.0, 0.8 + 0.22 * rows))
    axes = figure.add_subplot()
    totals = energy.sum(axis=1).to_numpy(dtype=float)
    label, factor = axis_quantity("energy_pj", totals)
    positions = np.arange(rows)
    left = np.zeros(rows)
    for index, component in enumerate(energy.columns):
        values = np.nan_to_num(energy[component].to_numpy(dtype=float) * factor)
        axes.barh(positions, values, left=left, height=0.8, label=mpl_text(component),
                  color=_COLORS[index % len(_COLORS)])
        left += values
    axes.set_yticks(positions, [mpl_text(name) for name in energy.index],
                    fontsize=8 if rows <= 40 else 6)
    axes.invert_yaxis()
    axes.set_xlabel(label)
    axes.set_ylabel(f"{mpl_text(str(energy.index.name or 'layer')).capitalize()} "
                    "(execution order)")
    total_pj = float(np.nansum(totals))
    axes.set_title(f"{mpl_text(title)} (total {format_energy(total_pj)})")  # its own unit
    axes.grid(axis="x", alpha=0.3)
    figure.legend(title="component", fontsize=8, loc="outside right upper")
    note_not_drawn(figure, not_drawn_notes(
        {mpl_text(c): energy[c] for c in energy.columns}, what="layer"))
    return figure


def draw_pareto(data: ParetoPlotData, *, title: str | None = None) -> Figure:
    """All points coloured by group; the front as a step line with black-edged markers.
    Every finite point is drawn (a log axis becomes symlog when zeros are present); what
    cannot be drawn is named under the figure."""
    figure = new_figure(9.0, 5.0)
    axes = figure.add_subplot()
    points = data.points
    x_label, x_factor = axis_quantity(data.x, points["x"])
    y_label, y_factor = axis_quantity(data.y, points["y"])
    for index, (group, part) in enumerate(points.groupby("group", sort=False)):
        axes.scatter(part["x"] * x_factor, part["y"] * y_factor, s=14, alpha=0.55,
                     color=_COLORS[index % len(_COLORS)], label=mpl_text(group),
                     linewidths=0)
    front = data.front
    front_x, front_y = front["x"] * x_factor, front["y"] * y_factor
    # "post": from each front point the best value holds until the next one is reached
    axes.step(front_x, front_y, where="post", color="black", linewidth=1.2,
              label=f"Pareto front ({len(front)} point{'s' if len(front) != 1 else ''})")
    axes.scatter(front_x, front_y, s=36, facecolors="none", edgecolors="black",
                 linewidths=1.2)
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    apply_scale(axes, "x", points["x"] * x_factor)
    if data.y != "accuracy":
        apply_scale(axes, "y", points["y"] * y_factor)
    arrow = {"min": "lower", "max": "higher"}
    axes.set_title(mpl_text(title) if title else
                   f"{y_label.split(' (')[0]} vs {x_label.split(' (')[0].lower()} "
                   f"({arrow[data.x_direction]} x, {arrow[data.y_direction]} y is better)")
    axes.grid(alpha=0.3, which="both")
    figure.legend(fontsize=8, loc="outside right upper")  # never over the points
    note_not_drawn(figure, data.not_drawn)
    return figure


def _density_transform(sparsity_pct: np.ndarray) -> np.ndarray:
    """x = -log10(weights remaining): spreads 90%, 99%, 99.9% evenly."""
    remaining = np.clip(100.0 - np.asarray(sparsity_pct, dtype=float), 1e-6, None) / 100.0
    return -np.log10(remaining)


def draw_lth(data: pd.DataFrame, *, title: str = "Lottery-ticket pruning: accuracy vs "
             "weight sparsity") -> Figure:
    """Accuracy (%) against sparsity (%) on a remaining-weights log axis, one line per run."""
    figure = new_figure(7.5, 4.8)
    axes = figure.add_subplot()
    for index, (label, part) in enumerate(data.groupby("label", sort=False)):
        dashed = any(word in label.lower() for word in ("random", "reinit", "baseline"))
        axes.plot(_density_transform(part["sparsity_pct"]), part["accuracy_pct"],
                  marker="o", markersize=4, linestyle="--" if dashed else "-",
                  color=_COLORS[index % len(_COLORS)], label=mpl_text(label.replace("_", " ")))
    ticks = [t for t in (0, 25, 50, 75, 90, 95, 98, 99, 99.5, 99.8, 99.9)
             if t <= max(50.0, float(data["sparsity_pct"].max()) + 0.5)]
    axes.xaxis.set_major_locator(FixedLocator(_density_transform(np.array(ticks))))
    axes.xaxis.set_major_formatter(FuncFormatter(
        lambda x, _: f"{100 - 100 * 10 ** (-x):.4g}"))
    axes.set_xlabel("Weight sparsity (%) — log scale of remaining weights")
    axes.set_ylabel("Test accuracy (%)")
    axes.set_title(mpl_text(title))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=9, loc="lower left")
    note_not_drawn(figure, data.attrs.get("not_drawn", ()))
    return figure


def draw_keep_ratio(data: pd.DataFrame, *, title: str = "Token selection: accuracy and "
                    "GFLOPs vs keep ratio") -> Figure:
    """Two panels sharing the keep-ratio axis: accuracy (%) and GFLOPs, one line per scorer."""
    figure = new_figure(10.0, 4.2)
    accuracy_axes, gflops_axes = figure.subplots(1, 2, sharex=True)
    for index, (scorer, part) in enumerate(data.groupby("scorer", sort=False)):
        color, marker = _SCORER_STYLE.get(scorer, (_COLORS[(index + 3) % len(_COLORS)], "D"))
        label = mpl_text(scorer.replace("_", " "))
        accuracy_axes.plot(part["keep_ratio"], part["accuracy_pct"], marker=marker,
                           color=color, label=label)
        gflops_axes.plot(part["keep_ratio"], part["gflops"], marker=marker, color=color,
                         label=label, alpha=0.8)
    accuracy_axes.set_ylabel("Top-1 accuracy (%)")
    gflops_axes.set_ylabel("GFLOPs per image")
    for axes in (accuracy_axes, gflops_axes):
        axes.set_xlabel("Keep ratio ρ (per selector)")
        axes.grid(alpha=0.3)
        axes.invert_xaxis()  # fewer tokens to the right
    accuracy_axes.set_title("Accuracy")
    gflops_axes.set_title("Compute")
    accuracy_axes.legend(title="scorer", fontsize=9)
    figure.suptitle(mpl_text(title))
    note_not_drawn(figure, data.attrs.get("not_drawn", ()))
    return figure


def draw_input_events(matrix: pd.DataFrame, *, title: str = "Input spike events per element, "
                      "per layer and timestep") -> Figure:
    """Heatmap: layers down (execution order), timesteps across; NaN cells blank."""
    rows, steps = matrix.shape
    figure = new_figure(max(5.0, 3.5 + 0.5 * steps), max(3.0, 1.0 + 0.2 * rows))
    axes = figure.add_subplot()
    values = matrix.to_numpy(dtype=float)
    image = axes.imshow(np.ma.masked_invalid(values), aspect="auto", cmap="viridis",
                        interpolation="nearest", vmin=0.0)
    axes.set_yticks(np.arange(rows), [mpl_text(name) for name in matrix.index],
                    fontsize=8 if rows <= 40 else 6)
    axes.set_xticks(np.arange(steps), [str(t) for t in matrix.columns])
    axes.set_xlabel("Timestep")
    axes.set_ylabel("Layer (execution order)")
    axes.set_title(mpl_text(title))
    if rows * steps <= 400:  # small enough to print every value
        for (row, step), value in np.ndenumerate(values):
            if np.isfinite(value):
                axes.text(step, row, f"{value:.2f}", ha="center", va="center", fontsize=6,
                          color="white" if value < 0.6 * np.nanmax(values) else "black")
    colorbar = figure.colorbar(image, ax=axes, shrink=0.9)
    colorbar.set_label("Mean input value per element (spike events;\n"
                       "the firing rate where inputs are 0/1)")
    return figure


def draw_kept_tokens(data: KeptTokensData, *, title: str = "Tokens kept by each selector"
                     ) -> Figure:
    """Rows: images. Columns: the input, then each selector with dropped tokens greyed."""
    count, selectors = data.masks.shape[:2]
    figure = new_figure(2.2 * (selectors + 1), 2.3 * count + 0.5)
    grid_axes = figure.subplots(count, selectors + 1, squeeze=False)
    for image_index in range(count):
        picture = data.images[image_index]
        height, width = picture.shape[:2]
        cmap = "gray" if picture.ndim == 2 else None
        for column in range(selectors + 1):
            axes = grid_axes[image_index, column]
            axes.imshow(picture, cmap=cmap, interpolation="nearest")
            if column > 0:
                mask = data.masks[image_index, column - 1]
                shade = np.zeros((*mask.shape, 4))
                # dropped: a coloured veil, unlike any grey level of the image
                shade[~mask] = (0.85, 0.15, 0.15, 0.7)
                axes.imshow(shade, extent=(-0.5, width - 0.5, height - 0.5, -0.5),
                            interpolation="nearest")
                _draw_token_grid(axes, data.grid, width, height)
                kept = int(mask.sum())
                label = f"{mpl_text(data.selectors[column - 1])}\n{kept}/{mask.size} kept"
            else:
                label = "input"
            axes.set_xticks([])
            axes.set_yticks([])
            if image_index == 0:
                axes.set_title(label, fontsize=9)
    figure.suptitle(f"{mpl_text(title)} (red = dropped)")
    return figure


def _draw_token_grid(axes, grid: int, width: int, height: int) -> None:
    for line in range(1, grid):
        axes.axvline(line * width / grid - 0.5, color="white", linewidth=0.3, alpha=0.5)
        axes.axhline(line * height / grid - 0.5, color="white", linewidth=0.3, alpha=0.5)


def draw_bar_summary(labels: Sequence[str], values: Sequence[float], *, column: str,
                     title: str) -> Figure:
    """A plain bar chart of one metric per label (e.g. energy per bundled hw config)."""
    figure = new_figure(7.5, max(2.5, 0.6 + 0.35 * len(labels)))
    axes = figure.add_subplot()
    label, factor = axis_quantity(column, values)
    shown = np.asarray(values, dtype=float) * factor
    positions = np.arange(len(labels))
    axes.barh(positions, np.nan_to_num(shown, nan=0.0, posinf=0.0, neginf=0.0),
              color=_COLORS[0])
    axes.set_yticks(positions, [mpl_text(name) for name in labels], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel(label)
    apply_scale(axes, "x", shown)
    axes.set_title(mpl_text(title))
    axes.grid(axis="x", alpha=0.3, which="both")
    axes.margins(x=0.1)  # room for the value labels
    for position, value in zip(positions, shown, strict=True):
        _annotate_bar(axes, value, position)
    note_not_drawn(figure, not_drawn_notes({mpl_text(column): shown}, what="bar"))
    return figure


def _annotate_bar(axes, value: float, position: float) -> None:
    """The value at the end of its bar; a value no bar can show is written at 0."""
    text = format_number(value) if math.isfinite(value) else \
        ("NaN: not drawn" if math.isnan(value) else f"{format_number(value)}: not drawn")
    axes.annotate(text, (value if math.isfinite(value) else 0.0, position), xytext=(3, 0),
                  textcoords="offset points", va="center", fontsize=7,
                  color="black" if math.isfinite(value) else "#a02020")


def draw_grouped_bars(table: pd.DataFrame, *, column: str, title: str) -> Figure:
    """Horizontal bars of one metric: one group per row label, one bar per table column
    (e.g. energy per hw config, dense next to co-designed)."""
    rows, series = table.shape
    figure = new_figure(8.5, max(2.5, 0.8 + 0.3 * rows * series + 0.15 * rows))
    axes = figure.add_subplot()
    height = 0.8 / max(series, 1)
    positions = np.arange(rows)
    values = table.to_numpy(dtype=float)
    label, factor = axis_quantity(column, values.ravel())
    shown_all = values * factor
    for index, name in enumerate(table.columns):
        shown = shown_all[:, index]
        offsets = positions - 0.4 + height * (index + 0.5)
        axes.barh(offsets, np.nan_to_num(shown, nan=0.0, posinf=0.0, neginf=0.0),
                  height=height * 0.95, label=mpl_text(name),
                  color=_COLORS[index % len(_COLORS)])
        for offset, value in zip(offsets, shown, strict=True):
            _annotate_bar(axes, value, offset)
    axes.set_yticks(positions, [mpl_text(name) for name in table.index], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel(label)
    apply_scale(axes, "x", shown_all.ravel())
    axes.set_title(mpl_text(title))
    axes.grid(axis="x", alpha=0.3, which="both")
    axes.margins(x=0.1)  # room for the value labels
    figure.legend(fontsize=8, loc="outside right upper")
    note_not_drawn(figure, not_drawn_notes({mpl_text(column): shown_all.ravel()}, what="bar"))
    return figure


__all__ = ["new_figure", "save_figure", "png_bytes", "figure_bytes", "axis_label",
           "is_known_metric", "draw_layer_energy", "draw_pareto", "draw_lth", "draw_keep_ratio",
           "draw_input_events", "draw_kept_tokens", "draw_bar_summary", "draw_grouped_bars"]
