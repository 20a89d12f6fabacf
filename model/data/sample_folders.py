"""Data sets stored as one file per sample in class folders, read lazily.

The layouts the reference Spikformer's DVS pipeline (spikingjelly's dataset classes) leaves:

* split folders: PATH/train/<class>/<file>, PATH/test/<class>/<file> (DVS128 Gesture);
  both splits must name the same classes;
* a flat class tree: PATH/<class>/<file> (CIFAR10-DVS, which has no official split):
  split as the reference's cifar10dvs/train.py does, `split_to_train_test_set(0.9, ...)`:
  in each class, the first ceil(0.9 n) files (in sorted order, as torchvision's
  DatasetFolder lists them) are the train split and the rest the test split.

Class index = position of the folder name in sorted order. A sample is decoded when a batch
asks for it (`decode(path) -> (T, C, H, W)` array), so the data never has to fit in memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from sparsespikformer.model.data.base import BatchSource, BatchTransform, DatasetInfo
from sparsespikformer.simulator.errors import DataError

SPLIT_FOLDERS = {"train": ("train",), "test": ("test", "val")}
REFERENCE_TRAIN_FRACTION = 0.9   # ZK-Zhou/spikformer cifar10dvs/train.py


def _class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def has_split_folders(root: Path) -> bool:
    return any((root / name).is_dir() for names in SPLIT_FOLDERS.values() for name in names)


def _split_folder(root: Path, split: str) -> Path:
    for name in SPLIT_FOLDERS[split]:
        if (root / name).is_dir():
            return root / name
    wanted = " or ".join(f"{n}/" for n in SPLIT_FOLDERS[split])
    raise DataError(f"{root}: no {wanted} folder for the {split} split")


def _files(class_dir: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in class_dir.iterdir()
                  if p.is_file() and p.name.lower().endswith(suffixes))


def _scan(folder: Path, suffixes: tuple[str, ...]) -> dict[str, list[Path]]:
    classes = _class_folders(folder)
    if not classes:
        raise DataError(f"{folder}: no class sub-folders")
    return {c.name: _files(c, suffixes) for c in classes}


def split_samples(root: Path, split: str, suffixes: tuple[str, ...]
                  ) -> tuple[tuple[str, ...], list[tuple[Path, int]]]:
    """Class names and (file, class index) pairs of `split` under `root` (see module doc).

    Raises:
        DataError: no such folder, no class folders, the splits name different classes,
            or no file ending in one of `suffixes`.
    """
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    if has_split_folders(root):
        tree = _scan(_split_folder(root, split), suffixes)
        other = "test" if split == "train" else "train"
        if any((root / n).is_dir() for n in SPLIT_FOLDERS[other]):
            if sorted(_scan(_split_folder(root, other), suffixes)) != sorted(tree):
                raise DataError(f"{root}: the train and test folders name different classes")
    else:
        tree = {name: _reference_split(files, split)
                for name, files in _scan(root, suffixes).items()}
    items = [(path, index) for index, name in enumerate(sorted(tree)) for path in tree[name]]
    if not items:
        raise DataError(f"{root}: no {' / '.join(suffixes)} files for the {split} split")
    return tuple(sorted(tree)), items


def _reference_split(files: list[Path], split: str) -> list[Path]:
    cut = math.ceil(len(files) * REFERENCE_TRAIN_FRACTION)
    return files[:cut] if split == "train" else files[cut:]


class FolderSampleDataset(BatchSource):
    """Samples decoded on demand; a BatchSource like InMemoryDataset (loader workers call
    `raw_batch`, the training loop `get_batch` with its device and augmentation).

    `decode(path)` returns one sample as a (T, C, H, W) numeric array and raises DataError
    naming the file when it cannot; every sample must have the first one's shape.
    """

    def __init__(self, items: list[tuple[Path, int]], class_names: tuple[str, ...],
                 decode: Callable[[Path], np.ndarray], *, name: str, split: str, source: str,
                 img_size: int | None = None) -> None:
        self.items = items
        self.decode = decode
        self.labels = torch.tensor([label for _, label in items], dtype=torch.int64)
        self.sample_shape = tuple(decode(items[0][0]).shape)
        if len(self.sample_shape) != 4:
            raise DataError(f"{items[0][0]}: a sample must be (T, C, H, W), got shape "
                            f"{self.sample_shape}")
        steps, channels, height, width = self.sample_shape
        spatial = (height, width) if img_size is None else (img_size, img_size)
        self.info = DatasetInfo(name=name, split=split, num_classes=len(class_names),
                                input_shape=(steps, channels, *spatial),
                                class_names=class_names, source=source)
        # Area resampling sums events into bigger pixels, averaged: rates stay comparable.
        self.transform = BatchTransform(resize_to=img_size, resize_mode="area")

    def __len__(self) -> int:
        return len(self.items)

    def _sample(self, index: int) -> np.ndarray:
        path = self.items[index][0]
        sample = self.decode(path)
        if tuple(sample.shape) != self.sample_shape:
            raise DataError(f"{path}: shape {tuple(sample.shape)}, but the first sample "
                            f"{self.items[0][0].name} is {self.sample_shape}")
        return np.asarray(sample, dtype=np.float32)

    def raw_batch(self, indices: torch.Tensor) -> torch.Tensor:
        """Stored frames (B, T, C, H, W) float32 of `indices` (B,), not yet resized."""
        return torch.from_numpy(np.stack([self._sample(i) for i in indices.tolist()]))
