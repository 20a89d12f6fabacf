"""Plots and reports at the edges of their data, and with text users wrote (field case
bh2-07 and its kind).

Inputs tried besides the case's zeros on a log-spanning y axis: zeros on x, negative values,
NaN and ±inf on either axis, every value equal, a single point; bar charts with a zero, a
NaN and an inf; LTH rounds with a missing accuracy; trace, base, column and file names with
`$`, `_`, `\\`, `<` and `&`.
"""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pandas as pd
import pytest
from test_plot_data import rounds_table

from sparsespikformer.analysis.reporting import plot_data, plots
from sparsespikformer.analysis.reporting.plot_axes import scale_for

matplotlib.use("Agg")


def sweep(x, y, groups=None):
    n = len(x)
    return pd.DataFrame({"energy_pj": x, "dram_bits": y,
                         "trace": groups if groups is not None else ["dense"] * n,
                         "status": ["ok"] * n})


def drawn_offsets(figure) -> np.ndarray:
    """Every scatter point of the first axes, in data coordinates."""
    return np.concatenate([np.asarray(c.get_offsets()) for c in figure.axes[0].collections])


def note(figure) -> str:
    return figure._supxlabel.get_text() if figure._supxlabel is not None else ""


def brute_force_front(x, y):
    return [i for i in range(len(x)) if not any(
        x[j] <= x[i] and y[j] <= y[i] and (x[j] < x[i] or y[j] < y[i]) for j in range(len(x)))]


# ----------------------------------------------------------------------------- scales


@pytest.mark.parametrize("values, scale", [
    ([1.0, 2.0, 29.0], "linear"),          # under 30x: linear
    ([1.0, 100.0], "log"),                 # positive, two decades
    ([0.0, 1.0, 100.0], "symlog"),         # a zero: log would drop it
    ([-5.0, 1.0, 100.0], "symlog"),        # a negative value
    ([0.0, 0.0, 0.0], "linear"),           # every value equal
    ([7.0], "linear"),                     # a single point
    ([np.nan, 1.0, 100.0, np.inf], "log"),  # non-finite values do not choose the scale
])
def test_scale_draws_every_finite_value(values, scale):
    assert scale_for(values)[0] == scale


def test_case_07_zeros_stay_on_the_plot_with_the_whole_front():
    # the case's shape: positive DRAM traffic spanning 2 decades, the best designs at 0
    energy = [12.8, 12.8, 15.0, 20.0, 30.0, 40.0]
    dram = [0.0, 0.0, 2.2e5, 1.0e6, 0.0, 3.7e7]
    data = plot_data.pareto_plot_data(sweep(energy, dram), x="energy_pj", y="dram_bits",
                                      y_direction="min")
    assert sorted(np.flatnonzero(data.points["on_front"])) == brute_force_front(energy, dram)
    figure = plots.draw_pareto(data)
    axes = figure.axes[0]
    assert axes.get_yscale() == "symlog"
    points = drawn_offsets(figure)
    low, high = axes.get_ylim()
    assert len(points) == len(energy) + 2  # all points, and the two front markers again
    assert np.all((points[:, 1] >= low) & (points[:, 1] <= high))
    front_line = next(line for line in axes.lines if "Pareto front" in line.get_label())
    assert front_line.get_label() == "Pareto front (2 points)"
    assert np.all(np.asarray(front_line.get_ydata()) == 0.0)
    assert note(figure) == ""


def test_zeros_on_x_and_negative_values_are_drawn():
    data = plot_data.pareto_plot_data(sweep([0.0, 1e3, 1e6, 5e6], [-2.0, 1.0, 50.0, 80.0]),
                                      x="energy_pj", y="dram_bits", y_direction="min")
    figure = plots.draw_pareto(data)
    axes = figure.axes[0]
    assert (axes.get_xscale(), axes.get_yscale()) == ("symlog", "symlog")
    assert len(data.points) == 4


def test_nan_and_inf_are_named_under_the_figure():
    data = plot_data.pareto_plot_data(
        sweep([1.0, 2.0, np.nan, 4.0, 5.0], [1.0, np.inf, 3.0, -np.inf, 2.0]),
        x="energy_pj", y="dram_bits", y_direction="min")
    assert list(data.points["x"]) == [1.0, 5.0]
    figure = plots.draw_pareto(data)
    assert note(figure) == ("Not drawn: 1 point with energy_pj missing (NaN); "
                            "2 points with dram_bits infinite.")


def test_rows_the_config_rejected_are_counted():
    table = sweep([1.0, 2.0], [1.0, 2.0])
    table.loc[1, "status"] = "error"
    figure = plots.draw_pareto(plot_data.pareto_plot_data(table, x="energy_pj", y="dram_bits",
                                                          y_direction="min"))
    assert note(figure) == "Not drawn: 1 point rejected by the config."


def test_a_single_point_is_its_own_front():
    data = plot_data.pareto_plot_data(sweep([3e6], [0.0]), x="energy_pj", y="dram_bits",
                                      y_direction="min")
    figure = plots.draw_pareto(data)
    labels = [line.get_label() for line in figure.axes[0].lines]
    assert "Pareto front (1 point)" in labels and len(drawn_offsets(figure)) == 2


def test_bars_with_zero_nan_and_inf_say_which_are_not_drawn():
    figure = plots.draw_bar_summary(["a", "b", "c", "d"], [0.0, 1e6, 1e9, np.nan],
                                    column="energy_pj", title="t")
    axes = figure.axes[0]
    assert axes.get_xscale() == "symlog"
    annotations = [t.get_text() for t in axes.texts]
    assert annotations[-1] == "NaN: not drawn" and annotations[0] == "0"
    assert note(figure) == "Not drawn: 1 bar with energy_pj missing (NaN)."
    grouped = plots.draw_grouped_bars(pd.DataFrame({"dense": [1e6, np.inf], "co": [0.0, 1.0]},
                                                   index=["x", "y"]), column="energy_pj",
                                      title="t")
    assert "∞: not drawn" in [t.get_text() for t in grouped.axes[0].texts]


def test_lth_round_with_a_missing_accuracy_is_named():
    rounds = rounds_table("imp", [0.9, float("nan"), 0.88])
    figure = plots.draw_lth(plot_data.lth_curve_data(rounds))
    assert note(figure) == "Not drawn: 1 round with test_accuracy missing (NaN)."


# ----------------------------------------------------------------------------- user text


NAMES = ["$x$ cost", "_hidden", r"a\b_c", "<b>&amp;"]


def _unescaped(text: str) -> str:
    return text.replace(r"\$", "$").removeprefix("\u200b")


def _math_dollars(text: str) -> int:
    """Dollar signs matplotlib would read as mathematics (not escaped)."""
    return len(re.findall(r"(?<!\\)\$", text))


def test_user_text_is_drawn_literally_in_legends_ticks_and_titles():
    data = plot_data.pareto_plot_data(sweep([1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0],
                                            groups=NAMES), x="energy_pj", y="dram_bits",
                                      y_direction="min")
    figure = plots.draw_pareto(data, title="$5 budget_a")
    legend = figure.legends[0]
    texts = [t.get_text() for t in legend.get_texts()]
    assert [_unescaped(t) for t in texts[:4]] == NAMES  # `_hidden` kept its entry
    assert all(_math_dollars(t) == 0 for t in texts)
    title = figure.axes[0].get_title()
    assert _unescaped(title) == "$5 budget_a" and _math_dollars(title) == 0
    bars = plots.draw_bar_summary(NAMES, [1.0, 2.0, 3.0, 4.0], column="my$col", title="x")
    ticks = [t.get_text() for t in bars.axes[0].get_yticklabels()]
    assert [_unescaped(t) for t in ticks] == NAMES
    assert _unescaped(bars.axes[0].get_xlabel()) == "my$col"
    plots.png_bytes(figure)  # renders without a mathtext error
    plots.png_bytes(bars)


def test_user_text_in_the_report_is_escaped(tmp_path):
    from sparsespikformer.analysis.reporting.report import build_report

    table = pd.DataFrame({"hw": ["<script>alert(1)</script>", "a&b"], "energy_pj": [1e6, 2e6],
                          "latency_s": [1e-3, 2e-3]})
    (tmp_path / "x<y>&z").mkdir()
    table.to_csv(tmp_path / "x<y>&z" / "totals.csv", index=False)
    page = build_report(tmp_path, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "a&amp;b" in page
    assert "x&lt;y&gt;&amp;z/totals.csv" in page
