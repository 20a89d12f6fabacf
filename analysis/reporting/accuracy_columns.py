"""Accuracy columns of report tables, each value with its test-set size and 95 % interval
(`analysis/accuracy.py`: Wilson score interval)."""

from __future__ import annotations

import math

import pandas as pd

from sparsespikformer.analysis.accuracy import accuracy_of
from sparsespikformer.simulator.errors import InputError


def accuracy_text(rate: float, test_samples: float | None) -> str:
    """`97.50 % (351/360; 95 % CI 95.3–98.7 %)`; without a test-set size, says so."""
    if rate is None or not math.isfinite(float(rate)):
        return "–"
    rate = float(rate)
    if rate > 1.0:  # already in percent
        rate /= 100.0
    if test_samples is None or not math.isfinite(float(test_samples)) or test_samples < 1:
        return f"{100 * rate:.2f} % (test-set size unknown: no interval)"
    try:
        return accuracy_of(rate, int(test_samples)).text()
    except InputError:  # not a whole number of images: given by hand, not measured
        return f"{100 * rate:.2f} % (n = {int(test_samples)}; not a count of images)"


def with_accuracy_intervals(table: pd.DataFrame, accuracy: str, samples: str) -> pd.DataFrame:
    """`table` with `accuracy` written as text with n and interval; `samples` dropped."""
    shown = table.copy()
    counts = table[samples] if samples in table else pd.Series(math.nan, index=table.index)
    shown[accuracy] = [accuracy_text(rate, n) for rate, n in zip(table[accuracy], counts,
                                                                  strict=True)]
    return shown.drop(columns=[samples], errors="ignore")


__all__ = ["accuracy_text", "with_accuracy_intervals"]
