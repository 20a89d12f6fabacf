"""Load imbalance: how long the busiest PE of a fold keeps the others waiting.

Tokens (GEMM rows) mapped in parallel over `group` PEs (output stationary: the R rows of the
array; input stationary: its C columns) each stream their own non-zero inputs; a fold lasts
as long as its busiest row. The factor that stretches a layer's streamed work is

    mean over folds of the fold's maximum row events / mean row events

(1 when every row is equal). It is taken per inference: from each traced sample's own row
events (`sample_row_events`, schema 3: per timestep, per head, per GEMM row; a conv's rows are
its im2col rows, i.e. receptive fields with border padding) the mean over samples of the
fold maxima is divided by the mean element: the mean of the maxima, never the maximum of a
mean (averaging samples or heads first hides each inference's own busiest row).

Traces without that array (schema 1 and 2, or `gemm` traces) fall back to the sample-averaged
`events_per_step_token`; for a conv whose shapes are known those per-input-position events
are first summed over each output's receptive field (`receptive_field_events`), which is exact
for one sample and the mean otherwise.
"""

from __future__ import annotations

import math

import numpy as np


def fold_maxima(values: np.ndarray, group: int) -> np.ndarray:
    """Mean over folds of each fold's maximum, per leading index.

    `values` (..., rows): rows are cut into folds of `group` consecutive rows (the last padded
    with zeros, as the array's last fold is). Returns (...) without the last axis.
    """
    rows = values.shape[-1]
    starts = np.arange(0, rows, group)
    # values are >= 0, so the short last fold's maximum equals that of its zero padding
    return np.maximum.reduceat(values, starts, axis=-1).sum(axis=-1) / starts.size


def group_max_ratio(values: np.ndarray, group: int) -> float:
    """Mean over folds of each fold's maximum, over the mean element: the imbalance factor.

    `values` (rows, items): items of each row are cut into folds of `group` consecutive
    items; each fold lasts as long as its largest item. 1.0 when every item is equal or
    everything is zero.
    """
    total = float(values.sum())
    if total <= 0.0 or values.shape[1] == 0:
        return 1.0
    return float(fold_maxima(values, group).mean() / values.mean())


def sample_fold_factors(row_events: np.ndarray, group: int, stack_time: bool
                        ) -> tuple[float, np.ndarray]:
    """(layer factor, per-sample imbalance) from per-sample row events (S, T, G, M).

    Layer factor: mean over samples, timesteps, heads and folds of the fold maxima, over the
    mean element of all samples (what the mean latency needs). Per-sample imbalance: each
    sample's mean fold maximum over its own mean element (its volume enters separately).
    `stack_time`: time-parallel processing stacks the T timesteps into the row dimension.
    """
    events = np.asarray(row_events, dtype=np.float64)
    samples, steps, groups, rows = events.shape
    if stack_time:
        events = events.transpose(0, 2, 1, 3).reshape(samples, 1, groups, steps * rows)
    maxima = fold_maxima(events, group).reshape(samples, -1).mean(axis=1)  # (S,)
    means = events.reshape(samples, -1).mean(axis=1)
    overall = float(means.mean())
    if overall <= 0.0:
        return 1.0, np.ones(samples)
    per_sample = np.where(means > 0, maxima / np.where(means > 0, means, 1.0), 1.0)
    return float(maxima.mean() / overall), per_sample


def receptive_field_events(events: np.ndarray, in_shape: str, out_shape: str, k: float
                           ) -> np.ndarray | None:
    """Per-output-position receptive-field sums (T, Ho*Wo) of per-input-position events
    (T, H*W) of a square, odd, 'same'-padded conv (stride H // Ho); None if the shapes do not
    describe one (the caller keeps the input-position events)."""
    try:
        _, channels, height, width = (int(v) for v in in_shape.split("x"))
        _, _, out_h, out_w = (int(v) for v in out_shape.split("x"))
    except ValueError:
        return None
    taps = k / channels
    side = int(round(math.sqrt(taps))) if taps > 0 else 0
    if side * side != taps or side % 2 == 0 or events.shape[1] != height * width \
            or out_h == 0 or out_w == 0 or height % out_h or width % out_w:
        return None
    stride, pad = height // out_h, side // 2
    steps = events.shape[0]
    padded = np.pad(events.reshape(steps, height, width), ((0, 0), (pad, pad), (pad, pad)))
    sums = np.zeros((steps, height, width))
    for di in range(side):
        for dj in range(side):
            sums += padded[:, di:di + height, dj:dj + width]
    return sums[:, ::stride, ::stride][:, :out_h, :out_w].reshape(steps, out_h * out_w)


__all__ = ["fold_maxima", "group_max_ratio", "sample_fold_factors", "receptive_field_events"]
