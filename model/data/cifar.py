"""CIFAR-10 and CIFAR-100 from a local folder in the official python-pickle format.

Expected files (as unpacked from cifar-10-python.tar.gz / cifar-100-python.tar.gz):

* CIFAR-10:  PATH/data_batch_1 .. data_batch_5, PATH/test_batch, PATH/batches.meta
* CIFAR-100: PATH/train, PATH/test, PATH/meta

Each file is a pickled dict with bytes keys (written by Python 2): b'data' is a
uint8 array (N, 3072) holding the red, green and blue 32x32 planes row by row;
b'labels' (CIFAR-10) or b'fine_labels' (CIFAR-100) is a list of ints; the meta
file names the classes (b'label_names' / b'fine_label_names').

Pickle can run arbitrary code, so these files are read with an unpickler that
resolves only the handful of globals a numpy array needs; anything else is
refused. Nothing is ever downloaded.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from sparsespikformer.model.data.base import BatchTransform, DatasetInfo, InMemoryDataset
from sparsespikformer.simulator.errors import DataError

CIFAR_SIDE = 32
CIFAR_CHANNELS = 3

# The usual per-channel statistics of the training sets (the Spikformer CIFAR
# recipe normalises with the CIFAR-10 values below).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

_CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))

# (module, name) pairs a pickled numpy array may reference. Python-2 pickles
# name numpy.core.multiarray; numpy 2 moved it to numpy._core (both are listed).
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"): ("numpy._core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"): ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
    # Python 3 writes bytes at protocol <= 2 as _codecs.encode(str, 'latin1').
    ("_codecs", "encode"): ("_codecs", "encode"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can build numpy arrays and plain containers, nothing else."""

    def find_class(self, module: str, name: str):
        target = _ALLOWED_GLOBALS.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(*target)


def read_cifar_pickle(path: Path) -> dict:
    """Load one official CIFAR pickle safely; errors name the file."""
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR file not found: {path}")
    try:
        with open(path, "rb") as handle:
            content = _ArrayOnlyUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, ImportError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a readable CIFAR pickle ({err})") from err
    if not isinstance(content, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(content).__name__}")
    return content


def _field(content: dict, key: str, path: Path):
    """content[b'key'] (official files) or content['key'] (re-pickled by Python 3)."""
    for candidate in (key.encode("ascii"), key):
        if candidate in content:
            return content[candidate]
    raise DataError(f"{path}: missing key {key!r}")


def _images_and_labels(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    content = read_cifar_pickle(path)
    data = np.asarray(_field(content, "data", path))
    labels = np.asarray(_field(content, label_key, path), dtype=np.int64)
    row_length = CIFAR_CHANNELS * CIFAR_SIDE ** 2
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != row_length:
        raise DataError(f"{path}: 'data' must be uint8 of shape (N, 3072), "
                         f"got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise DataError(f"{path}: {data.shape[0]} images but {labels.shape[0]} labels")
    images = data.reshape(-1, CIFAR_CHANNELS, CIFAR_SIDE, CIFAR_SIDE)   # (N, 3, 32, 32)
    return images, labels


def _class_names(path: Path, key: str) -> tuple[str, ...]:
    names = _field(read_cifar_pickle(path), key, path)
    return tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names)


def load_cifar_split(root: str | Path, split: str, num_classes: int,
                     img_size: int | None = None) -> InMemoryDataset:
    """CIFAR-10 (num_classes=10) or CIFAR-100 (100) split as uint8 held in memory."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"cifar{num_classes} folder not found: {root}")
    if num_classes == 10:
        files = _CIFAR10_TRAIN_FILES if split == "train" else ("test_batch",)
        label_key, meta, names_key = "labels", "batches.meta", "label_names"
        mean, std = CIFAR10_MEAN, CIFAR10_STD
    elif num_classes == 100:
        files = ("train",) if split == "train" else ("test",)
        label_key, meta, names_key = "fine_labels", "meta", "fine_label_names"
        mean, std = CIFAR100_MEAN, CIFAR100_STD
    else:
        raise DataError(f"CIFAR has 10 or 100 classes, not {num_classes}")
    parts = [_images_and_labels(root / name, label_key) for name in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    class_names = _class_names(root / meta, names_key)
    if len(class_names) != num_classes:
        raise DataError(f"{root / meta}: {len(class_names)} class names, expected {num_classes}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"{root}: labels outside 0..{num_classes - 1}")
    side = CIFAR_SIDE if img_size is None else img_size
    info = DatasetInfo(name=f"cifar{num_classes}", split=split, num_classes=num_classes,
                       input_shape=(CIFAR_CHANNELS, side, side), class_names=class_names,
                       source=str(root))
    transform = BatchTransform(scale=1.0 / 255.0, mean=mean, std=std, resize_to=img_size,
                               resize_mode="bilinear", random_hflip=(split == "train"))
    return InMemoryDataset(torch.from_numpy(np.ascontiguousarray(images)),
                           torch.from_numpy(labels), info, transform)
