"""Event streams to T frames, as the reference Spikformer's DVS pipeline bins them.

The reference (ZK-Zhou/spikformer cifar10dvs/train.py) reads CIFAR10-DVS and DVS128 Gesture
through spikingjelly with `frames_number=T, split_by='number'`, i.e. spikingjelly's
`integrate_events_by_fixed_frames_number` (spikingjelly/datasets/__init__.py). Its rules,
for N events sorted by time and M = T frames:

* split_by 'number': frame j holds events [j·⌊N/M⌋, (j+1)·⌊N/M⌋), the last one up to N;
* split_by 'time': with ΔT = ⌊(t_{N-1} - t_0) / M⌋ (integer timestamps), frame j holds
  the events with t_0 + jΔT <= t < t_0 + (j+1)ΔT, the last one every event from its start
  to the end;
* a frame is (2, H, W): channel 0 counts events of polarity 0, channel 1 the others, at
  (y, x).

One deviation: spikingjelly fails (IndexError) on a time bin without events; here that
frame is empty.
"""

from __future__ import annotations

import numpy as np

from sparsespikformer.simulator.errors import DataError

SPLIT_BY = ("number", "time")


def segment_bounds(t: np.ndarray, frames: int, split_by: str) -> tuple[np.ndarray, np.ndarray]:
    """Start and end index (M,) of each frame's events in the time-sorted stream `t`."""
    n = t.size
    if split_by == "number":
        step = n // frames
        start = np.arange(frames) * step
        end = start + step
    elif split_by == "time":
        width = (int(t[-1]) - int(t[0])) // frames if n else 0
        edges = int(t[0]) + width * np.arange(frames + 1) if n else np.zeros(frames + 1)
        start = np.searchsorted(t, edges[:-1], side="left")    # first t >= left edge
        end = np.searchsorted(t, edges[1:], side="left")       # first t >= right edge
    else:
        raise DataError(f"split_by must be one of {SPLIT_BY}, got {split_by!r}")
    end[-1] = n
    return start, end


def events_to_frames(t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray,
                     frames: int, split_by: str, height: int, width: int) -> np.ndarray:
    """(T, 2, H, W) float32 event counts; arrays (N,) in any order (sorted by t, stably)."""
    if t.size and np.any(np.diff(t) < 0):
        order = np.argsort(t, kind="stable")
        t, x, y, p = t[order], x[order], y[order], p[order]
    start, end = segment_bounds(t, frames, split_by)
    channel = (p != 0).astype(np.int64)                         # polarity 0 -> channel 0
    cell = (channel * height + y.astype(np.int64)) * width + x.astype(np.int64)
    out = np.zeros((frames, 2 * height * width), dtype=np.float32)
    for j in range(frames):
        counts = np.bincount(cell[start[j]:end[j]], minlength=2 * height * width)
        out[j] = counts
    return out.reshape(frames, 2, height, width)
