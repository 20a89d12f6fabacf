"""One entry point for every data set: `load_dataset(spec, split)`.

A data spec is what the CLI's `--data` takes:

    digits              scikit-learn's bundled digits (the default, no files needed)
    cifar10:PATH        CIFAR-10 python-pickle folder
    cifar100:PATH       CIFAR-100 python-pickle folder
    imagefolder:PATH    class-folder tree (train/ and val/ sub-folders)
    frames:PATH         event data binned into frames: train.npz / test.npz, or the
                        reference DVS pipeline's per-sample .npz files in class folders
    events:PATH[?OPTS]  raw event recordings in class folders, binned into T frames as the
                        reference does (optional extra sparsespikformer[events]; see
                        data/event_folders.py for OPTS: frames=T&split_by=number|time&size=HxW)

No loader downloads anything. Every returned dataset has `info` (a
DatasetInfo), `labels` (int64 tensor), `len()` and
`get_batch(indices, generator=None) -> (float images, int64 labels)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sparsespikformer.model.data.base import DatasetInfo, InMemoryDataset
from sparsespikformer.model.data.cifar import load_cifar_split
from sparsespikformer.model.data.digits import load_digits_split
from sparsespikformer.model.data.event_folders import load_event_split, parse_event_options
from sparsespikformer.model.data.frames import load_frames
from sparsespikformer.model.data.imagefolder import ImageFolderDataset
from sparsespikformer.model.data.sample_folders import FolderSampleDataset
from sparsespikformer.simulator.errors import DataError

SPLITS = ("train", "test")
DATA_KINDS = ("digits", "cifar10", "cifar100", "imagefolder", "frames", "events")
DEFAULT_DATA_SPEC = "digits"

Dataset = InMemoryDataset | ImageFolderDataset | FolderSampleDataset

__all__ = ["DATA_KINDS", "DEFAULT_DATA_SPEC", "SPLITS", "DataSpec", "Dataset", "DatasetInfo",
           "load_dataset", "parse_data_spec"]


@dataclass(frozen=True)
class DataSpec:
    kind: str            # one of DATA_KINDS
    path: Path | None    # None only for 'digits'
    options: str = ""    # 'events' only: what follows '?' in the spec


def parse_data_spec(spec: str) -> DataSpec:
    """'cifar10:/data/cifar' -> DataSpec('cifar10', Path('/data/cifar'))."""
    kind, sep, path = spec.partition(":")
    if kind not in DATA_KINDS:
        raise DataError(f"unknown data spec {spec!r}: expected one of "
                         f"digits, cifar10:PATH, cifar100:PATH, imagefolder:PATH, frames:PATH, "
                         f"events:PATH")
    if kind == "digits":
        if sep:
            raise DataError(f"data spec {spec!r}: 'digits' takes no path")
        return DataSpec(kind, None)
    options = ""
    if kind == "events":
        path, _, options = path.partition("?")
    if not path:
        raise DataError(f"data spec {spec!r}: {kind} needs a folder, as in {kind}:PATH")
    return DataSpec(kind, Path(path).expanduser(), options)


def load_dataset(spec: str, split: str, img_size: int | None = None) -> Dataset:
    """Load `split` ('train' or 'test') of the data named by `spec`.

    `img_size` resizes images (square) for the model; None keeps each data
    set's own size (digits 16, CIFAR 32, frames as stored, image folders 224).
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: expected 'train' or 'test'")
    if img_size is not None and img_size <= 0:
        raise DataError(f"img_size must be positive, got {img_size}")
    parsed = parse_data_spec(spec)
    if parsed.kind == "digits":
        return load_digits_split(split, img_size=img_size)
    if parsed.kind == "cifar10":
        return load_cifar_split(parsed.path, split, num_classes=10, img_size=img_size)
    if parsed.kind == "cifar100":
        return load_cifar_split(parsed.path, split, num_classes=100, img_size=img_size)
    if parsed.kind == "imagefolder":
        return ImageFolderDataset(parsed.path, split, img_size=img_size)
    if parsed.kind == "events":
        return load_event_split(parsed.path, split, parse_event_options(parsed.options, spec),
                                img_size=img_size)
    return load_frames(parsed.path, split, img_size=img_size)
