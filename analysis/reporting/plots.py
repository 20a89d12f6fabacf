"""Drawing: one function per plot, from the data `plot_data.py` prepares.

Headless by construction: figures are `matplotlib.figure.Figure` objects on the Agg canvas,
never pyplot windows, so no global backend is switched and no display is needed.
`save_figure` writes PNG and PDF atomically; `png_bytes` is what the HTML report embeds.
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

from sparsespikformer.analysis.reporting.plot_data import KeptTokensData, ParetoPlotData
from sparsespikformer.simulator.atomic import atomic_path
from sparsespikformer.simulator.errors import InputError

DPI = 150
FORMATS = ("png", "pdf")
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
_SCORER_STYLE = {"learned": ("#1f77b4", "o"), "firing_rate": ("#ff7f0e", "s"),
                 "random": ("#7f7f7f", "^")}
_LABELS = {
    "energy_pj": "Energy per image (µJ)",
    "latency_s": "Latency per image (ms)",
    "edp_pj_s": "Energy-delay product (µJ·ms)",
    "area_mm2": "Area (mm²)",
    "accuracy": "Top-1 accuracy (%)",
    "utilization": "PE utilisation (%)",
    "dense_gflops": "Dense GFLOPs per image",
    "effective_gflops": "Effective GFLOPs per image",
}
# Display scale per column: values are stored in base units (pJ, s), shown readable.
_SCALE = {"energy_pj": 1e-6, "latency_s": 1e3, "edp_pj_s": 1e-3, "accuracy": 100.0,
          "utilization": 100.0}


def new_figure(width_in: float, height_in: float) -> Figure:
    figure = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def is_known_metric(column: str) -> bool:
    return column in _LABELS


def axis_label(column: str) -> str:
    return _LABELS.get(column, column)


def display_scale(column: str, values: pd.Series | np.ndarray) -> np.ndarray:
    """Values as the axis shows them; accuracy in percent only if stored as a fraction."""
    values = np.asarray(values, dtype=float)
    if column == "accuracy" and np.nanmax(values) > 1.0:
        return values
    return values * _SCALE.get(column, 1.0)


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
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


# ----------------------------------------------------------------------------- plots


def draw_layer_energy(energy: pd.DataFrame, *, title: str = "Energy per layer by component"
                      ) -> Figure:
    """Stacked horizontal bars, one per layer (top = first executed), µJ per image."""
    rows = len(energy)
    figure = new_figure(10.0, max(3.0, 0.8 + 0.22 * rows))
    axes = figure.add_subplot()
    positions = np.arange(rows)
    left = np.zeros(rows)
    for index, component in enumerate(energy.columns):
        values = energy[component].to_numpy() * 1e-6
        axes.barh(positions, values, left=left, height=0.8, label=str(component),
                  color=_COLORS[index % len(_COLORS)])
        left += values
    axes.set_yticks(positions, [str(label) for label in energy.index],
                    fontsize=8 if rows <= 40 else 6)
    axes.invert_yaxis()
    axes.set_xlabel("Energy per image (µJ)")
    axes.set_ylabel(f"{str(energy.index.name or 'layer').capitalize()} (execution order)")
    axes.set_title(f"{title} (total {left.sum():.4g} µJ)")
    axes.grid(axis="x", alpha=0.3)
    figure.legend(title="component", fontsize=8, loc="outside right upper")
    return figure


def draw_pareto(data: ParetoPlotData, *, title: str | None = None) -> Figure:
    """All points coloured by group; the front as a step line with black-edged markers."""
    figure = new_figure(9.0, 5.0)
    axes = figure.add_subplot()
    points = data.points
    for index, (group, part) in enumerate(points.groupby("group", sort=False)):
        axes.scatter(display_scale(data.x, part["x"]), display_scale(data.y, part["y"]),
                     s=14, alpha=0.55, color=_COLORS[index % len(_COLORS)], label=group,
                     linewidths=0)
    front = data.front
    front_x = display_scale(data.x, front["x"])
    front_y = display_scale(data.y, front["y"])
    # "post": from each front point the best value holds until the next one is reached
    axes.step(front_x, front_y, where="post", color="black", linewidth=1.2,
              label=f"Pareto front ({len(front)} point{'s' if len(front) != 1 else ''})")
    axes.scatter(front_x, front_y, s=36, facecolors="none", edgecolors="black",
                 linewidths=1.2)
    axes.set_xlabel(axis_label(data.x))
    axes.set_ylabel(axis_label(data.y))
    if _spans_decades(display_scale(data.x, points["x"])):
        axes.set_xscale("log")
    if data.y != "accuracy" and _spans_decades(display_scale(data.y, points["y"])):
        axes.set_yscale("log")
    arrow = {"min": "lower", "max": "higher"}
    axes.set_title(title or f"{axis_label(data.y).split(' (')[0]} vs "
                   f"{axis_label(data.x).split(' (')[0].lower()} "
                   f"({arrow[data.x_direction]} x, {arrow[data.y_direction]} y is better)")
    axes.grid(alpha=0.3, which="both")
    figure.legend(fontsize=8, loc="outside right upper")  # never over the points
    return figure


def _spans_decades(values: np.ndarray) -> bool:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    return values.size > 1 and values.max() / values.min() > 30


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
                  color=_COLORS[index % len(_COLORS)], label=label.replace("_", " "))
    ticks = [t for t in (0, 25, 50, 75, 90, 95, 98, 99, 99.5, 99.8, 99.9)
             if t <= max(50.0, float(data["sparsity_pct"].max()) + 0.5)]
    axes.xaxis.set_major_locator(FixedLocator(_density_transform(np.array(ticks))))
    axes.xaxis.set_major_formatter(FuncFormatter(
        lambda x, _: f"{100 - 100 * 10 ** (-x):.4g}"))
    axes.set_xlabel("Weight sparsity (%) — log scale of remaining weights")
    axes.set_ylabel("Test accuracy (%)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=9, loc="lower left")
    return figure


def draw_keep_ratio(data: pd.DataFrame, *, title: str = "Token selection: accuracy and "
                    "GFLOPs vs keep ratio") -> Figure:
    """Two panels sharing the keep-ratio axis: accuracy (%) and GFLOPs, one line per scorer."""
    figure = new_figure(10.0, 4.2)
    accuracy_axes, gflops_axes = figure.subplots(1, 2, sharex=True)
    for index, (scorer, part) in enumerate(data.groupby("scorer", sort=False)):
        color, marker = _SCORER_STYLE.get(scorer, (_COLORS[(index + 3) % len(_COLORS)], "D"))
        label = scorer.replace("_", " ")
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
    figure.suptitle(title)
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
    axes.set_yticks(np.arange(rows), [str(name) for name in matrix.index],
                    fontsize=8 if rows <= 40 else 6)
    axes.set_xticks(np.arange(steps), [str(t) for t in matrix.columns])
    axes.set_xlabel("Timestep")
    axes.set_ylabel("Layer (execution order)")
    axes.set_title(title)
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
                label = f"{data.selectors[column - 1]}\n{kept}/{mask.size} kept"
            else:
                label = "input"
            axes.set_xticks([])
            axes.set_yticks([])
            if image_index == 0:
                axes.set_title(label, fontsize=9)
    figure.suptitle(f"{title} (red = dropped)")
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
    shown = display_scale(column, np.asarray(values, dtype=float))
    axes.barh(np.arange(len(labels)), shown, color=_COLORS[0])
    axes.set_yticks(np.arange(len(labels)), list(labels), fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel(axis_label(column))
    if _spans_decades(shown):
        axes.set_xscale("log")
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3, which="both")
    axes.margins(x=0.1)  # room for the value labels
    for position, value in enumerate(shown):
        if math.isfinite(value):
            axes.annotate(f"{value:.4g}", (value, position), xytext=(3, 0),
                          textcoords="offset points", va="center", fontsize=7)
    return figure


def draw_grouped_bars(table: pd.DataFrame, *, column: str, title: str) -> Figure:
    """Horizontal bars of one metric: one group per row label, one bar per table column
    (e.g. energy per hw config, dense next to co-designed)."""
    rows, series = table.shape
    figure = new_figure(8.5, max(2.5, 0.8 + 0.3 * rows * series + 0.15 * rows))
    axes = figure.add_subplot()
    height = 0.8 / max(series, 1)
    positions = np.arange(rows)
    shown_all = display_scale(column, table.to_numpy(dtype=float))
    for index, name in enumerate(table.columns):
        shown = shown_all[:, index]
        offsets = positions - 0.4 + height * (index + 0.5)
        axes.barh(offsets, shown, height=height * 0.95, label=str(name),
                  color=_COLORS[index % len(_COLORS)])
        for offset, value in zip(offsets, shown, strict=True):
            if math.isfinite(value):
                axes.annotate(f"{value:.4g}", (value, offset), xytext=(3, 0),
                              textcoords="offset points", va="center", fontsize=7)
    axes.set_yticks(positions, [str(label) for label in table.index], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel(axis_label(column))
    if _spans_decades(shown_all.ravel()):
        axes.set_xscale("log")
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3, which="both")
    axes.margins(x=0.1)  # room for the value labels
    figure.legend(fontsize=8, loc="outside right upper")
    return figure


__all__ = ["new_figure", "save_figure", "png_bytes", "axis_label", "is_known_metric",
           "display_scale", "draw_layer_energy", "draw_pareto", "draw_lth", "draw_keep_ratio",
           "draw_input_events", "draw_kept_tokens", "draw_bar_summary", "draw_grouped_bars"]
