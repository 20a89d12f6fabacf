"""Neuromorphic (event-camera) data, pre-binned into frame tensors: `frames:PATH`.

Two layouts, told apart by what PATH holds:

* this project's: PATH/train.npz and PATH/test.npz, every sample of a split in one file
  (below);
* the reference DVS pipeline's: one `.npz` per sample in class folders (key `frames`,
  (T, 2, H, W)), read lazily by `frame_folders` (spikingjelly's frames_number_* folders).

This project's format (one `.npz` per split, written with `numpy.savez` or
`savez_compressed`):

    PATH/train.npz, PATH/test.npz, each holding
      frames       (N, T, C, H, W)  event counts per time bin and polarity channel
                   (uint8, int or float; C = 2 polarities for DVS128 / CIFAR10-DVS)
      labels       (N,)             integer class indices 0..K-1
      class_names  (K,) str         optional; without it K = largest label in either file + 1

Samples are handed to the model as float (B, T, C, H, W), the layout the
reference DVS Spikformer takes (it permutes to (T, B, C, H, W) itself). Counts
are kept as they are, with no normalisation, as in the reference. Files are read
with `allow_pickle=False`, so a crafted file cannot run code. Frames stay in
their stored dtype in memory (uint8 frames are 4x smaller than float).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sparsespikformer.model.data.base import BatchTransform, DatasetInfo, InMemoryDataset
from sparsespikformer.model.data.frame_folders import load_frame_folders
from sparsespikformer.model.data.sample_folders import FolderSampleDataset
from sparsespikformer.simulator.errors import DataError
from sparsespikformer.simulator.trace import NPZ_READ_ERRORS

FRAMES_NDIM = 5   # (N, T, C, H, W)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"frames file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except NPZ_READ_ERRORS as err:
        raise DataError(f"{path}: not a readable .npz file ({err})") from err


def _check_arrays(path: Path, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    for key in ("frames", "labels"):
        if key not in arrays:
            raise DataError(f"{path}: missing array {key!r} (has {sorted(arrays)})")
    frames, labels = arrays["frames"], arrays["labels"]
    if frames.ndim != FRAMES_NDIM:
        raise DataError(f"{path}: 'frames' must be (N, T, C, H, W), got shape {frames.shape}")
    if frames.dtype.kind not in "biuf":
        raise DataError(f"{path}: 'frames' must be numeric, got {frames.dtype}")
    if labels.ndim != 1 or labels.shape[0] != frames.shape[0]:
        raise DataError(f"{path}: 'labels' must be (N,) with N={frames.shape[0]}, "
                         f"got {labels.shape}")
    if labels.dtype.kind not in "iu" or (labels.size and labels.min() < 0):
        raise DataError(f"{path}: 'labels' must be non-negative integers")
    return frames, labels.astype(np.int64)


def _largest_label(root: Path, split: str) -> int:
    """Largest label in the other split's file (-1 if there is none)."""
    other = root / f"{'test' if split == 'train' else 'train'}.npz"
    if not other.is_file():
        return -1
    try:
        with np.load(other, allow_pickle=False) as archive:   # reads only 'labels'
            labels = archive["labels"]
    except (*NPZ_READ_ERRORS, KeyError) as err:
        raise DataError(f"{other}: not a readable .npz file with 'labels' ({err})") from err
    return int(labels.max(initial=-1))


def load_frames(root: str | Path, split: str, img_size: int | None = None
                ) -> InMemoryDataset | FolderSampleDataset:
    """`split` of the frames at `root`, in whichever layout it has (module docstring).

    Raises:
        DataError: no such folder, or neither layout, or a file that cannot be used.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"frames folder not found: {root}")
    if any((root / f"{name}.npz").is_file() for name in ("train", "test")):
        return load_frames_split(root, split, img_size)
    if not any(p.is_dir() for p in root.iterdir()):
        raise DataError(f"{root}: neither train.npz / test.npz (one file per split) nor "
                        f"folders of per-sample .npz frames")
    return load_frame_folders(root, split, img_size)


def load_frames_split(root: str | Path, split: str, img_size: int | None = None
                      ) -> InMemoryDataset:
    """PATH/<split>.npz as a dataset of float (T, C, H, W) samples."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"frames folder not found: {root}")
    path = root / f"{split}.npz"
    arrays = _read_npz(path)
    frames, labels = _check_arrays(path, arrays)
    if "class_names" in arrays:
        class_names = tuple(str(n) for n in arrays["class_names"].tolist())
    else:
        # Both splits must agree on K, so look at the other split's labels too.
        largest = max(int(labels.max(initial=-1)), _largest_label(root, split))
        class_names = tuple(str(i) for i in range(largest + 1))
    if labels.size and labels.max() >= len(class_names):
        raise DataError(f"{path}: label {labels.max()} but only {len(class_names)} classes")
    if frames.dtype == np.bool_:
        frames = frames.astype(np.uint8)
    _, steps, channels, height, width = frames.shape
    spatial = (height, width) if img_size is None else (img_size, img_size)
    info = DatasetInfo(name="frames", split=split, num_classes=len(class_names),
                       input_shape=(steps, channels, *spatial), class_names=class_names,
                       source=str(path))
    # Area resampling sums events into bigger pixels, averaged: rates stay comparable.
    transform = BatchTransform(resize_to=img_size, resize_mode="area")
    return InMemoryDataset(torch.from_numpy(np.ascontiguousarray(frames)),
                           torch.from_numpy(labels), info, transform)
