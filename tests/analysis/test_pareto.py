"""Pareto fronts against a brute-force O(n^2) dominance check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sparsespikformer.analysis.pareto import pareto_front, pareto_mask


def brute_force_front(df: pd.DataFrame, objectives: dict[str, str]) -> set:
    """Row labels no other row dominates (>= as good everywhere, better somewhere)."""
    signs = {"min": 1.0, "max": -1.0}
    rows = [(label, [signs[d] * float(row[c]) for c, d in objectives.items()])
            for label, row in df.iterrows()]
    rows = [(label, costs) for label, costs in rows if not any(np.isnan(costs))]
    front = set()
    for label, costs in rows:
        dominated = any(all(o <= c for o, c in zip(other, costs, strict=True)) and other != costs
                        for _, other in rows)
        if not dominated:
            front.add(label)
    return front


def random_table(seed: int, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({
        "energy_pj": rng.integers(1, 40, n).astype(float),  # few values: many ties
        "latency_s": rng.uniform(0, 1, n).round(2),
        "accuracy": rng.integers(80, 96, n) / 100,
        "area_mm2": rng.lognormal(0, 1, n),
    }, index=pd.Index(rng.permutation(n) + 1000, name="point"))
    table.iloc[rng.choice(n, 5, replace=False), 1] = np.nan  # ignored rows
    return table


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("objectives", [
    {"energy_pj": "min", "accuracy": "max"},
    {"latency_s": "min", "energy_pj": "min"},
    {"accuracy": "max", "area_mm2": "max"},
    {"energy_pj": "min", "latency_s": "min", "accuracy": "max"},
    {"area_mm2": "min", "accuracy": "max", "latency_s": "max"},
    {"energy_pj": "min", "latency_s": "min", "accuracy": "max", "area_mm2": "min"},
])
def test_front_matches_brute_force(seed, objectives):
    table = random_table(seed)
    front = pareto_front(table, objectives)
    assert set(front.index) == brute_force_front(table, objectives)
    assert len(front) > 0
    first, direction = next(iter(objectives.items()))
    values = front[first].to_numpy()
    assert np.all(np.diff(values) >= 0) if direction == "min" else np.all(np.diff(values) <= 0)


def test_identical_points_are_all_on_the_front():
    table = pd.DataFrame({"e": [1.0, 1.0, 2.0, 0.5], "a": [0.9, 0.9, 0.95, 0.8]})
    assert pareto_mask(table, {"e": "min", "a": "max"}).tolist() == [True, True, True, True]
    table.loc[4] = [1.0, 0.95]  # dominates rows 0, 1 and 2
    assert pareto_mask(table, {"e": "min", "a": "max"}).tolist() == [False, False, False,
                                                                      True, True]


def test_single_objective_keeps_every_best_row():
    table = pd.DataFrame({"e": [3.0, 1.0, 1.0, 2.0]})
    assert pareto_mask(table, {"e": "min"}).tolist() == [False, True, True, False]


def test_bad_objectives_name_the_column():
    table = pd.DataFrame({"e": [1.0], "name": ["x"]})
    with pytest.raises(ValueError, match="'missing': no such column"):
        pareto_front(table, {"missing": "min"})
    with pytest.raises(ValueError, match="e: direction"):
        pareto_front(table, {"e": "lowest"})
    with pytest.raises(ValueError, match="'name': not a numeric column"):
        pareto_front(table, {"name": "min"})
    with pytest.raises(ValueError, match="at least one"):
        pareto_front(table, {})


def test_empty_and_all_nan_tables_have_an_empty_front():
    empty = pd.DataFrame({"e": [], "a": []})
    assert pareto_front(empty, {"e": "min", "a": "max"}).empty
    nans = pd.DataFrame({"e": [np.nan, 1.0], "a": [0.5, np.nan]})
    assert pareto_front(nans, {"e": "min", "a": "max"}).empty


def brute_force_mask(costs: np.ndarray) -> np.ndarray:
    """O(n²) numpy dominance (all minimised): row i is off the front iff some row is <= in
    every objective and < in one. NaN rows are never on the front nor dominate."""
    usable = ~np.isnan(costs).any(axis=1)
    mask = np.zeros(len(costs), dtype=bool)
    rows = costs[usable]
    for i in np.flatnonzero(usable):
        no_worse = np.all(rows <= costs[i], axis=1)
        better = np.any(rows < costs[i], axis=1)
        mask[i] = not np.any(no_worse & better)
    return mask


def tied_table(seed: int, n: int = 1500) -> pd.DataFrame:
    """Few distinct values per column: many exact ties and duplicate rows, yet well over the
    512-row block of distinct rows, so fronts found in one block must beat rows of the next."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({
        "energy_pj": rng.integers(0, 24, n).astype(float),
        "latency_s": rng.integers(0, 20, n) / 10,
        "accuracy": rng.integers(80, 100, n) / 100,
        "area_mm2": rng.integers(1, 6, n).astype(float),
    })
    table.iloc[rng.choice(n, 10, replace=False), 0] = np.nan
    return table


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("objectives", [
    {"energy_pj": "min", "latency_s": "min", "accuracy": "max"},
    {"energy_pj": "min", "latency_s": "max", "accuracy": "max", "area_mm2": "min"},
])
def test_front_over_several_blocks_matches_brute_force(seed, objectives):
    table = tied_table(seed)
    signs = np.array([1.0 if d == "min" else -1.0 for d in objectives.values()])
    costs = table[list(objectives)].to_numpy() * signs
    distinct = np.unique(costs[~np.isnan(costs).any(axis=1)], axis=0)
    assert len(distinct) > 2 * 512  # the k > 2 path compares across at least three blocks
    expected = brute_force_mask(costs)
    assert 0 < expected.sum() < len(table)
    np.testing.assert_array_equal(pareto_mask(table, objectives), expected)


def test_front_of_more_than_a_block_of_members_matches_brute_force():
    """861 points of the plane e + l + a = 40 (none dominates another) and 639 points just
    behind them: the front itself spans two blocks of members."""
    plane = np.array([(e, l_, 40 - e - l_) for e in range(41) for l_ in range(41 - e)], float)
    rng = np.random.default_rng(5)
    behind = plane[rng.choice(len(plane), 639, replace=False)] + rng.integers(0, 2, (639, 3))
    costs = rng.permutation(np.vstack([plane, behind]))
    table = pd.DataFrame(costs, columns=["e", "l", "a"])
    expected = brute_force_mask(costs)
    assert expected.sum() > 512  # more front members than one block holds
    np.testing.assert_array_equal(pareto_mask(table, {"e": "min", "l": "min", "a": "min"}),
                                  expected)
