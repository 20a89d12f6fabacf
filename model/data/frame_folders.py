"""Event frames stored one `.npz` per sample in class folders: the reference DVS pipeline.

The reference Spikformer's cifar10dvs/train.py reads CIFAR10-DVS (and DVS128 Gesture) through
spikingjelly, which bins each recording once and saves it as
`frames_number_<T>_split_by_<number|time>/[train|test/]<class>/<sample>.npz`, key `frames`,
shape (T, 2, H, W) (event counts per time bin and polarity, float64). Point `frames:PATH`
at that folder (the one holding `train/` and `test/`, or the class folders). Files are read
with `allow_pickle=False`, so a crafted file cannot run code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sparsespikformer.model.data.sample_folders import FolderSampleDataset, split_samples
from sparsespikformer.simulator.errors import DataError
from sparsespikformer.simulator.trace import NPZ_READ_ERRORS

FRAME_KEY = "frames"


def read_frame_file(path: Path) -> np.ndarray:
    """The (T, C, H, W) frames of one sample file."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = sorted(archive.files)
            frames = archive[FRAME_KEY] if FRAME_KEY in names else None
    except NPZ_READ_ERRORS as err:
        raise DataError(f"{path}: not a readable .npz file ({err})") from err
    if frames is None:
        raise DataError(f"{path}: no array {FRAME_KEY!r} (has {names})")
    if frames.dtype.kind not in "biuf":
        raise DataError(f"{path}: 'frames' must be numeric, got {frames.dtype}")
    return frames


def load_frame_folders(root: Path, split: str, img_size: int | None = None
                       ) -> FolderSampleDataset:
    """`split` of a per-sample frame tree (see the module docstring)."""
    class_names, items = split_samples(root, split, (".npz",))
    return FolderSampleDataset(items, class_names, read_frame_file, name="frames", split=split,
                               source=str(root), img_size=img_size)
