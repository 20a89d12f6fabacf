"""`events:PATH`: raw event recordings in class folders, binned into T frames on reading.

Layouts as for per-sample frames (`sample_folders`): PATH/{train,test}/<class>/<file>, or
PATH/<class>/<file> split 90 / 10 per class as the reference does for CIFAR10-DVS. File
types: see `event_files`. Binning: see `event_binning` (spikingjelly's fixed frame number).

Options follow the path after '?', joined by '&':

    frames=16          T, the number of frames (the reference DVS models use T = 16)
    split_by=number    'number' (equal event counts, the reference's choice) or 'time'
    size=128x128       sensor height x width (DVS128 and CIFAR10-DVS: 128 x 128)

e.g. `events:/data/cifar10dvs?frames=10&split_by=time`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparsespikformer.model.data.event_binning import SPLIT_BY, events_to_frames
from sparsespikformer.model.data.event_files import EVENT_SUFFIXES, read_events
from sparsespikformer.model.data.sample_folders import FolderSampleDataset, split_samples
from sparsespikformer.simulator.errors import DataError


@dataclass(frozen=True)
class EventBinning:
    """How recordings become frames."""

    frames: int = 16          # T
    split_by: str = "number"  # 'number' or 'time'
    height: int = 128         # sensor rows
    width: int = 128          # sensor columns


def parse_event_options(text: str, spec: str) -> EventBinning:
    """'frames=10&split_by=time&size=128x128' -> EventBinning; errors name the spec."""
    values: dict[str, str] = {}
    for part in filter(None, text.split("&")):
        key, sep, value = part.partition("=")
        if not sep or key not in ("frames", "split_by", "size"):
            raise DataError(f"data spec {spec!r}: unknown option {part!r} (options: "
                            f"frames=T, split_by=number|time, size=HxW)")
        values[key] = value
    frames = _positive(values.get("frames", "16"), "frames", spec)
    split_by = values.get("split_by", "number")
    if split_by not in SPLIT_BY:
        raise DataError(f"data spec {spec!r}: split_by must be one of {SPLIT_BY}, "
                        f"got {split_by!r}")
    height, _, width = values.get("size", "128x128").partition("x")
    return EventBinning(frames, split_by, _positive(height, "size", spec),
                        _positive(width or height, "size", spec))


def _positive(text: str, option: str, spec: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise DataError(f"data spec {spec!r}: {option} must be a positive integer, "
                        f"got {text!r}")
    return int(text)


def event_frames(path: Path, binning: EventBinning) -> np.ndarray:
    """The (T, 2, H, W) frames of one recording."""
    t, x, y, p = read_events(path)
    outside = (x < 0) | (x >= binning.width) | (y < 0) | (y >= binning.height)
    if outside.any():
        first = int(np.argmax(outside))
        raise DataError(f"{path}: event at x={int(x[first])}, y={int(y[first])} is outside "
                        f"the {binning.height}x{binning.width} sensor (set size=HxW)")
    return events_to_frames(t, x, y, p, binning.frames, binning.split_by, binning.height,
                            binning.width)


def load_event_split(root: Path, split: str, binning: EventBinning,
                     img_size: int | None = None) -> FolderSampleDataset:
    """`split` of an event-recording tree as float (T, 2, H, W) frames."""
    class_names, items = split_samples(root, split, EVENT_SUFFIXES)
    return FolderSampleDataset(items, class_names, lambda path: event_frames(path, binning),
                               name="events", split=split, source=str(root),
                               img_size=img_size)
