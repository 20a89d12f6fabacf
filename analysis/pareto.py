"""Pareto fronts over any columns of a results table, each minimised or maximised.

A row dominates another when it is at least as good in every objective and strictly better
in one. Rows with identical objective values do not dominate each other, so all copies of
a non-dominated value are on the front. Rows with a missing (NaN) objective are ignored.

Two objectives: one sort and a running minimum, O(n log n). More: rows are sorted
lexicographically, so a row can only be dominated by an earlier one, and by transitivity
only by an earlier front member; each row is checked against the front found so far.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from sparsespikformer.simulator.errors import InputError

DIRECTIONS = ("min", "max")
_BLOCK = 512  # rows compared at once in the k > 2 case


def pareto_mask(df: pd.DataFrame, objectives: Mapping[str, str]) -> np.ndarray:
    """Boolean array, True for rows of `df` on the front (positionally aligned with df)."""
    costs = _cost_matrix(df, objectives)  # (n, k), every column to minimise
    mask = np.zeros(len(df), dtype=bool)
    usable = np.flatnonzero(~np.isnan(costs).any(axis=1))
    if usable.size == 0:
        return mask
    unique, inverse = np.unique(costs[usable], axis=0, return_inverse=True)  # sorted lexically
    on_front = _front_of_sorted_unique(unique)
    mask[usable] = on_front[inverse.reshape(-1)]
    return mask


def pareto_front(df: pd.DataFrame, objectives: Mapping[str, str]) -> pd.DataFrame:
    """The non-dominated rows of `df` (original index kept), sorted by the first objective
    from best to worst."""
    front = df[pareto_mask(df, objectives)]
    first, direction = next(iter(objectives.items()))
    return front.sort_values(first, ascending=direction == "min", kind="mergesort")


def _cost_matrix(df: pd.DataFrame, objectives: Mapping[str, str]) -> np.ndarray:
    if not isinstance(objectives, Mapping) or not objectives:
        raise InputError("objectives: give at least one column with 'min' or 'max'")
    columns = []
    for column, direction in objectives.items():
        if column not in df.columns:
            raise InputError(f"objectives: {column!r}: no such column "
                             f"(columns: {', '.join(map(str, df.columns))})")
        if direction not in DIRECTIONS:
            raise InputError(f"objectives: {column}: direction must be 'min' or 'max', "
                             f"got {direction!r}")
        try:
            values = pd.to_numeric(df[column], errors="raise").to_numpy(dtype=np.float64)
        except (ValueError, TypeError):
            raise InputError(f"objectives: {column!r}: not a numeric column") from None
        columns.append(values if direction == "min" else -values)
    return np.column_stack(columns) if columns else np.empty((len(df), 0))


def _front_of_sorted_unique(costs: np.ndarray) -> np.ndarray:
    """Front membership of distinct rows sorted lexicographically (all minimised)."""
    n, k = costs.shape
    if k == 1:
        return costs[:, 0] == costs[0, 0]
    if k == 2:
        # distinct and sorted: row i is dominated iff an earlier row has y <= y_i
        best_before = np.minimum.accumulate(np.concatenate(([np.inf], costs[:-1, 1])))
        return costs[:, 1] < best_before
    on_front = np.zeros(n, dtype=bool)
    front = np.empty((n, k))  # the first `size` rows are the front found so far
    size = 0
    for start in range(0, n, _BLOCK):
        block = costs[start:start + _BLOCK]  # (B, k)
        # most rows fall to the front found so far: test the block against it at once
        beaten = np.zeros(len(block), dtype=bool)
        for first in range(0, size, _BLOCK):
            members = front[first:min(size, first + _BLOCK)]  # (F, k)
            beaten |= np.all(members[None, :, :] <= block[:, None, :], axis=2).any(axis=1)
        frozen = size  # members found before this block were already checked above
        for offset in np.flatnonzero(~beaten):
            row = block[offset]
            if not np.any(np.all(front[frozen:size] <= row, axis=1)):
                on_front[start + offset] = True
                front[size] = row
                size += 1
    return on_front


__all__ = ["pareto_front", "pareto_mask", "DIRECTIONS"]
