"""Accuracy intervals (Wilson, checked against scipy), the words that compare two
accuracies, human units and number formats (issue 13, section 5)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from sparsespikformer.analysis.accuracy import (
    Accuracy,
    accuracy_of,
    compare_in_words,
    wilson_interval,
)
from sparsespikformer.analysis.reporting.display import (
    ENERGY_UNITS_PJ,
    format_number,
    format_quantity,
    human_columns,
    natural_sorted,
    pick_unit,
)
from sparsespikformer.simulator.errors import InputError


@pytest.mark.parametrize("correct, n", [(351, 360), (347, 360), (0, 360), (360, 360),
                                        (1, 1), (5, 10), (27, 32)])
def test_wilson_interval_matches_scipy(correct, n):
    stats = pytest.importorskip("scipy.stats")
    expected = stats.binomtest(correct, n).proportion_ci(confidence_level=0.95,
                                                         method="wilson")
    low, high = wilson_interval(correct, n)
    assert low == pytest.approx(expected.low, abs=1e-12)
    assert high == pytest.approx(expected.high, abs=1e-12)


def test_wilson_interval_worked_by_hand():
    """351 of 360: p = 0.975, z² = 3.8415, z²/n = 0.010671;
    centre = (0.975 + 0.0053354) / 1.010671 = 0.969985;
    half = 1.959964 / 1.010671 * sqrt(0.975 * 0.025 / 360 + 3.8415 / 518400) = 0.016808;
    so 0.95318 .. 0.98679."""
    low, high = wilson_interval(351, 360)
    assert low == pytest.approx(0.95318, abs=5e-6)
    assert high == pytest.approx(0.98679, abs=5e-6)


def test_an_accuracy_must_be_a_count_of_images():
    assert accuracy_of(0.975, 360) == Accuracy(351, 360)
    with pytest.raises(InputError, match="not a whole number of 360 images"):
        accuracy_of(0.9751, 360)
    with pytest.raises(InputError, match="correct"):
        wilson_interval(361, 360)


def test_the_issue_example_is_within_each_others_interval():
    # round-9 ticket 96.39 % (347/360) against the dense 97.50 % (351/360): 4 images
    text = compare_in_words(Accuracy(347, 360), Accuracy(351, 360), ("ticket", "dense"))
    assert text == ("ticket, 96.39 %, and dense, 97.50 % (on 360 test images), are within "
                    "each other's 95 % intervals: the 4-image difference is not resolved "
                    "by this test set.")
    apart = compare_in_words(Accuracy(300, 360), Accuracy(351, 360), ("a", "b"))
    assert "are not within each other's 95 % intervals" in apart
    assert compare_in_words(Accuracy(351, 360), Accuracy(351, 360), ("a", "b")).endswith(
        "are equal.")
    assert Accuracy(351, 360).text() == "97.50 % (351/360; 95 % CI 95.3–98.7 %)"


@pytest.mark.parametrize("value, kind, text", [
    (1.692e7, "energy", "16.92 µJ"), (950.0, "energy", "950 pJ"), (2.5e3, "energy", "2.500 nJ"),
    (3.2e9, "energy", "3.200 mJ"), (1.129e-4, "time", "112.9 µs"), (0.0025, "time", "2.500 ms"),
    (4.0, "time", "4 s"), (3e-8, "time", "30 ns"), (float("nan"), "energy", "–"),
])
def test_single_values_in_their_own_unit(value, kind, text):
    assert format_quantity(value, kind) == text


def test_a_column_gets_one_unit_from_its_typical_value():
    assert pick_unit([1.2e6, 3.0e7, 4.5e6, 0.0, float("nan")], ENERGY_UNITS_PJ) == ("µJ", 1e6)
    assert pick_unit([], ENERGY_UNITS_PJ) == ("pJ", 1.0)
    table = pd.DataFrame({"energy_pj": [1.692e7, 2.0e7], "latency_s": [1e-4, 2e-4],
                          "edp_pj_s": [1.0, 2.0], "trace": ["a", "b"]})
    shown = human_columns(table)
    assert list(shown.columns) == ["energy (µJ)", "latency (µs)", "edp_pj_s", "trace"]
    assert shown["energy (µJ)"].tolist() == pytest.approx([16.92, 20.0])
    assert table["energy_pj"].tolist() == [1.692e7, 2.0e7]  # the file's columns stay


def test_numbers_format_evenly_and_sort_as_numbers():
    assert [format_number(v) for v in (2.68, 3.534, 16.0, 1234.5, 2.2e-5, math.inf)] == [
        "2.680", "3.534", "16", "1,234", "2.200e-05", "∞"]
    assert natural_sorted([16, 32, 4, 64, 8]) == [4, 8, 16, 32, 64]
    assert natural_sorted(["b", 10, True, 2.5, "a"]) == [2.5, 10, True, "a", "b"]
