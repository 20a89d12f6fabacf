"""The demo's answer: `summary.json` (what `run_demo` returns) and its terminal table.

Every accuracy in the summary is an object with its test-set size and 95 % interval
(`analysis/accuracy.py`, Wilson score):
`{"accuracy": 0.975, "correct": 351, "test_samples": 360, "ci95_low": .., "ci95_high": ..}`.
`answer` is the sentence the report opens with (co-designed against dense on every bundled
accelerator, `reporting/headline.py`).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from sparsespikformer.analysis.accuracy import INTERVAL_NAME, Accuracy, accuracy_of
from sparsespikformer.analysis.reporting.display import format_duration, format_energy
from sparsespikformer.analysis.reporting.headline import (
    change_text,
    comparison_from_summary,
    comparison_sentence,
    percent,
)

if TYPE_CHECKING:
    from sparsespikformer.analysis.demo import DemoConfig

ACCURACY_KEYS = ("dense_accuracy", "pruned_accuracy", "reinit_accuracy", "selector_accuracy",
                 "co_designed_accuracy")
VARIANT_ORDER = ("dense", "pruned", "selected", "co_designed")
_PLAIN_KEYS = ("weight_sparsity", "keep_ratio", "co_designed_weight_sparsity", "dense_gflops",
               "selected_gflops", "sweep_points")


def build_summary(config: DemoConfig, results: dict, *, test_samples: int) -> dict:
    """The summary of a finished demo; `test_samples` is the size of the test split every
    accuracy was measured on."""
    summary: dict = {"test_samples": test_samples, "accuracy_interval": INTERVAL_NAME}
    for key in ACCURACY_KEYS:
        summary[key] = accuracy_of(results[key], test_samples).to_dict()
    summary.update({key: results[key] for key in _PLAIN_KEYS})
    if "gflops" in results:  # per variant: dense-count and effective GFLOPs per image
        summary["gflops"] = _in_variant_order({"gflops": results["gflops"]})["gflops"]
    summary["energy_pj"] = _in_variant_order(results["energy_pj"])
    summary["latency_s"] = _in_variant_order(results["latency_s"])
    comparison = comparison_from_summary(summary)
    if comparison is not None:
        summary["answer"] = comparison_sentence(comparison)
    summary["config"] = {k: (str(v) if isinstance(v, Path) else v)
                         for k, v in asdict(config).items()}
    return summary


def _in_variant_order(block: dict) -> dict:
    """{config: {variant: value}} with the variants in the story's order (stage files
    store them sorted by name)."""
    rank = {name: index for index, name in enumerate(VARIANT_ORDER)}
    return {config: dict(sorted(values.items(), key=lambda item: rank.get(item[0], len(rank))))
            for config, values in block.items()}


def _accuracy(summary: dict, key: str) -> str:
    value = summary[key]
    return Accuracy(value["correct"], value["test_samples"]).text()


def summary_table(summary: dict) -> str:
    """A short plain-text table for the terminal."""
    lines = [
        f"dense accuracy          {_accuracy(summary, 'dense_accuracy')}",
        f"LTH ticket              {_accuracy(summary, 'pruned_accuracy')} at "
        f"{percent(summary['weight_sparsity'])} weight sparsity",
        f"  random re-init        {_accuracy(summary, 'reinit_accuracy')}",
        f"token selector rho={summary['keep_ratio']}  {_accuracy(summary, 'selector_accuracy')}",
        f"  GFLOPs                {summary['selected_gflops']:.4f} vs "
        f"{summary['dense_gflops']:.4f} dense "
        f"({percent(1 - summary['selected_gflops'] / summary['dense_gflops'])} fewer)",
        f"weights + tokens        {_accuracy(summary, 'co_designed_accuracy')} at "
        f"{percent(summary['co_designed_weight_sparsity'])} weight sparsity",
        "",
        f"{'hw config':<18}{'dense':>12}{'co-designed':>13}  {'energy':<26}"
        f"{'dense':>10}{'co-designed':>13}  latency",
    ]
    for hw, energy in summary["energy_pj"].items():
        latency = summary["latency_s"][hw]
        lines.append(
            f"{hw:<18}{format_energy(energy['dense']):>12}"
            f"{format_energy(energy['co_designed']):>13}  "
            f"{change_text(energy['dense'], energy['co_designed']):<26}"
            f"{format_duration(latency['dense']):>10}"
            f"{format_duration(latency['co_designed']):>13}  "
            f"{change_text(latency['dense'], latency['co_designed'])}")
    if summary.get("answer"):
        lines += ["", summary["answer"]]
    return "\n".join(lines)


__all__ = ["build_summary", "summary_table", "ACCURACY_KEYS"]
