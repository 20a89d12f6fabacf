"""The demo's answer: `summary.json` (what `run_demo` returns) and its terminal table."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sparsespikformer.analysis.demo import DemoConfig


def build_summary(config: DemoConfig, results: dict) -> dict:
    keys = ("dense_accuracy", "pruned_accuracy", "weight_sparsity", "reinit_accuracy",
            "selector_accuracy", "keep_ratio", "co_designed_accuracy",
            "co_designed_weight_sparsity", "dense_gflops", "selected_gflops",
            "sweep_points")
    summary = {key: results[key] for key in keys}
    summary["energy_pj"] = results["energy_pj"]
    summary["latency_s"] = results["latency_s"]
    summary["config"] = {k: (str(v) if isinstance(v, Path) else v)
                         for k, v in asdict(config).items()}
    return summary


def summary_table(summary: dict) -> str:
    """A short plain-text table for the terminal."""
    lines = [
        f"dense accuracy          {summary['dense_accuracy']:.2%}",
        f"LTH ticket              {summary['pruned_accuracy']:.2%} at "
        f"{summary['weight_sparsity']:.1%} weight sparsity "
        f"(random re-init {summary['reinit_accuracy']:.2%})",
        f"token selector rho={summary['keep_ratio']}  {summary['selector_accuracy']:.2%}, "
        f"{summary['selected_gflops']:.4f} vs {summary['dense_gflops']:.4f} dense GFLOPs "
        f"({1 - summary['selected_gflops'] / summary['dense_gflops']:.1%} fewer)",
        f"weights + tokens        {summary['co_designed_accuracy']:.2%} at "
        f"{summary['co_designed_weight_sparsity']:.1%} weight sparsity",
        "",
        f"{'hw config':<18}{'dense energy':>14}{'co-designed':>14}{'saving':>8}"
        f"{'dense lat.':>12}{'co-des. lat.':>14}",
    ]
    for hw, energy in summary["energy_pj"].items():
        latency = summary["latency_s"][hw]
        lines.append(
            f"{hw:<18}{energy['dense'] / 1e6:>11.2f} uJ{energy['co_designed'] / 1e6:>11.2f} uJ"
            f"{1 - energy['co_designed'] / energy['dense']:>8.1%}"
            f"{latency['dense'] * 1e6:>9.1f} us{latency['co_designed'] * 1e6:>11.1f} us")
    return "\n".join(lines)


