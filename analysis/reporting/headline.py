"""The answer a researcher came for, first: the co-designed model against the dense one.

From a demo `summary.json` (or any summary with `energy_pj` / `latency_s` as
`{accelerator: {"dense": .., "co_designed": ..}}`): one table (accuracy with its test-set
size and 95 % interval, weight sparsity, GFLOPs, then energy and latency per bundled
accelerator, each with × and % saved) and one sentence. The terminal summary of `demo`
prints the same sentence.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sparsespikformer.analysis.accuracy import Accuracy, accuracy_of, compare_in_words
from sparsespikformer.analysis.reporting.display import format_number, format_quantity
from sparsespikformer.simulator.checks import is_number
from sparsespikformer.simulator.errors import InputError

DENSE, CODESIGNED = "dense", "co_designed"


@dataclass(frozen=True)
class Comparison:
    """Dense vs co-designed: model figures and, per accelerator, (dense, co-designed)."""

    dense_accuracy: Accuracy | float | None
    codesigned_accuracy: Accuracy | float | None
    codesigned_weight_sparsity: float | None
    keep_ratio: float | None
    gflops: tuple[float, float] | None  # dense-count GFLOPs per image
    energy_pj: Mapping[str, tuple[float, float]]
    latency_s: Mapping[str, tuple[float, float]]


def comparison_from_summary(summary: Mapping[str, Any]) -> Comparison | None:
    """The comparison a summary holds, or None when it has no dense/co-designed energies."""
    energy = _pairs(summary.get("energy_pj"))
    if not energy:
        return None
    samples = summary.get("test_samples")
    gflops = summary.get("gflops")
    pair = None
    if isinstance(gflops, Mapping) and all(isinstance(gflops.get(v), Mapping)
                                           for v in (DENSE, CODESIGNED)):
        pair = (gflops[DENSE].get("dense"), gflops[CODESIGNED].get("dense"))
    elif is_number(summary.get("dense_gflops")) and is_number(summary.get("selected_gflops")):
        pair = (summary["dense_gflops"], summary["selected_gflops"])  # same selector, same ρ
    return Comparison(
        dense_accuracy=read_accuracy(summary.get("dense_accuracy"), samples),
        codesigned_accuracy=read_accuracy(summary.get("co_designed_accuracy"), samples),
        codesigned_weight_sparsity=_number(summary.get("co_designed_weight_sparsity")),
        keep_ratio=_number(summary.get("keep_ratio")),
        gflops=pair if pair and all(is_number(v) for v in pair) else None,
        energy_pj=energy, latency_s=_pairs(summary.get("latency_s")))


def read_accuracy(value: Any, test_samples: Any = None) -> Accuracy | float | None:
    """An accuracy as summaries store it: `{"correct", "test_samples", ...}` (with its
    interval), or a bare rate (with `test_samples` beside it, or without: no interval)."""
    if isinstance(value, Mapping):
        correct, samples = value.get("correct"), value.get("test_samples")
        if isinstance(correct, int) and isinstance(samples, int) and 0 <= correct <= samples:
            return Accuracy(correct=correct, test_samples=samples)
        value = value.get("accuracy")
    if not is_number(value):
        return None
    if isinstance(test_samples, int) and test_samples > 0:
        try:
            return accuracy_of(float(value), test_samples)
        except InputError:
            pass
    return float(value)


def _number(value: Any) -> float | None:
    return float(value) if is_number(value) else None


def _pairs(block: Any) -> dict[str, tuple[float, float]]:
    if not isinstance(block, Mapping):
        return {}
    return {str(hw): (float(v[DENSE]), float(v[CODESIGNED])) for hw, v in block.items()
            if isinstance(v, Mapping) and is_number(v.get(DENSE)) and is_number(v.get(CODESIGNED))}


# ----------------------------------------------------------------------------- words


def change_text(dense: float, codesigned: float, fewer: str = "less") -> str:
    """`3.95× less (74.7 % saved)`, or `1.20× more (20.0 % added)`."""
    if not (math.isfinite(dense) and math.isfinite(codesigned)) or dense <= 0 or codesigned <= 0:
        return "–"
    if codesigned <= dense:
        return f"{dense / codesigned:.2f}× {fewer} ({percent(1 - codesigned / dense)} saved)"
    return f"{codesigned / dense:.2f}× more ({percent(codesigned / dense - 1)} added)"


def _accuracy_cell(value: Accuracy | float | None) -> str:
    if isinstance(value, Accuracy):
        return value.text()
    return "–" if value is None else f"{100 * value:.2f} % (test-set size unknown)"


def _accuracy_change(c: Comparison) -> str:
    dense, codesigned = c.dense_accuracy, c.codesigned_accuracy
    if isinstance(dense, Accuracy) and isinstance(codesigned, Accuracy):
        points = 100 * (codesigned.value - dense.value)
        return f"{points:+.2f} points; " + _interval_clause(dense, codesigned)
    if dense is None or codesigned is None:
        return "–"
    return f"{100 * (float(codesigned) - float(dense)):+.2f} points (no interval: n unknown)"


def _interval_clause(dense: Accuracy, codesigned: Accuracy) -> str:
    if dense.contains(codesigned.value) and codesigned.contains(dense.value):
        return "within each other's 95 % intervals"
    return "not within each other's 95 % intervals"


def comparison_table(c: Comparison) -> pd.DataFrame:
    """One row per figure: model figures, then energy and latency per accelerator."""
    accuracy_label = "Top-1 accuracy"
    if isinstance(c.dense_accuracy, Accuracy):
        accuracy_label += f" ({c.dense_accuracy.test_samples} test images)"
    rows = [(accuracy_label, _accuracy_cell(c.dense_accuracy),
             _accuracy_cell(c.codesigned_accuracy), _accuracy_change(c))]
    if c.codesigned_weight_sparsity is not None:
        rows.append(("Weight sparsity", percent(0.0), percent(c.codesigned_weight_sparsity),
                     ""))
    if c.gflops is not None:
        rows.append(("GFLOPs per image (dense count)", format_number(c.gflops[0]),
                     format_number(c.gflops[1]), change_text(*c.gflops, fewer="fewer")))
    for hw, (dense, codesigned) in c.energy_pj.items():
        rows.append((f"Energy per image on {hw}", format_quantity(dense, "energy"),
                     format_quantity(codesigned, "energy"), change_text(dense, codesigned)))
        if hw in c.latency_s:
            dense_s, codesigned_s = c.latency_s[hw]
            rows.append((f"Latency per image on {hw}", format_quantity(dense_s, "time"),
                         format_quantity(codesigned_s, "time"), change_text(dense_s, codesigned_s)))
    return pd.DataFrame(rows, columns=["", "dense", "co-designed", "co-designed vs dense"])


def comparison_sentence(c: Comparison) -> str:
    """One sentence: the energy and latency saved across accelerators, the accuracy cost."""
    model = "the co-designed model"
    details = []
    if c.codesigned_weight_sparsity is not None:
        details.append(f"{percent(c.codesigned_weight_sparsity)} of weights pruned")
    if c.keep_ratio is not None:
        details.append(f"keep ratio {c.keep_ratio:g} per token selector")
    if details:
        model += f" ({', '.join(details)})"
    where = (f"on {next(iter(c.energy_pj))}" if len(c.energy_pj) == 1
             else f"across the {len(c.energy_pj)} accelerators")
    text = f"{where[0].upper()}{where[1:]}, {model} {savings_words(c.energy_pj, 'energy')}"
    if c.latency_s:
        text += f", and {savings_words(c.latency_s, 'latency')}"
    dense, codesigned = c.dense_accuracy, c.codesigned_accuracy
    if isinstance(dense, Accuracy) and isinstance(codesigned, Accuracy):
        text += "; " + compare_in_words(codesigned, dense, ("its accuracy", "the dense model's"))
    else:
        text += "."
    return text


def percent(fraction: float, digits: int = 1) -> str:
    return f"{100 * fraction:.{digits}f} %"


def savings_words(pairs: Mapping[str, tuple[float, float]], what: str) -> str:
    """`saves 23–42 % of the energy (most on A: 1.72× less) except on B, where it costs
    17 % more`; on a single accelerator `saves 42 % of the energy (1.72× less)`."""
    saved = {hw: 1 - codesigned / dense for hw, (dense, codesigned) in pairs.items()
             if dense > 0 and codesigned > 0}
    if not saved:
        return f"has no comparable {what}"
    gains = {hw: v for hw, v in saved.items() if v >= 0}
    losses = {hw: -v for hw, v in saved.items() if v < 0}
    parts = []
    if gains:
        best = max(gains, key=gains.get)
        ratio = pairs[best][0] / pairs[best][1]
        low, high = f"{100 * min(gains.values()):.0f}", f"{100 * gains[best]:.0f}"
        span = f"{high} %" if low == high else f"{low}–{high} %"
        most = f" ({ratio:.2f}× less)" if len(saved) == 1 else \
            f" (most on {best}: {ratio:.2f}× less)"
        parts.append(f"saves {span} of the {what}{most}")
    if losses:
        names = ", ".join(sorted(losses))
        worst = max(losses.values())
        cost = (f"{100 * worst:.0f} % more" if len(losses) == 1
                else f"up to {100 * worst:.0f} % more")
        parts.append(f"except on {names}, where it costs {cost}" if gains
                     else f"costs {cost} {what} (on {names})")
    return " ".join(parts)


def headline_section(summary: Mapping[str, Any], source: str):
    """The page's first section, or None when `summary` holds no such comparison."""
    from sparsespikformer.analysis.reporting.html import Section, table_html

    comparison = comparison_from_summary(summary)
    if comparison is None:
        return None
    body = (f"<p class='answer'>{html.escape(comparison_sentence(comparison))}</p>"
            + table_html(comparison_table(comparison), max_rows=100, human=False)
            + f"<p class='note'>From <code>{html.escape(source)}</code>. Accuracy intervals: "
              "Wilson score, 95 %. GFLOPs count every MAC of the dense layers at every "
              "timestep (the papers' convention), with the tokens the selectors drop "
              "removed.</p>")
    return Section("Co-designed vs dense: the answer", body)


__all__ = ["Comparison", "comparison_from_summary", "read_accuracy", "change_text",
           "comparison_table", "comparison_sentence", "savings_words", "percent",
           "headline_section"]
