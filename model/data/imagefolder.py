"""An ImageNet-style class-folder tree, decoded lazily with PIL.

Layouts:

* split folders: PATH/train/<class>/*.png|jpg|jpeg|bmp and PATH/val/<class>/...
  (PATH/test/ is accepted in place of PATH/val/); both splits must name the
  same classes.
* a flat tree: PATH/<class>/*.png ... with no train/val/test folder. It holds
  one split only and is used as the test split (to evaluate a model on a folder
  of labelled images); asking it for the train split is an error.

Class index = position of the folder name in sorted order. Images are converted
to RGB, resized to `img_size` x `img_size` (bilinear) and normalised with the
ImageNet statistics, one file at a time, so the tree never has to fit in memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from sparsespikformer.model.data.base import BatchSource, BatchTransform, DatasetInfo
from sparsespikformer.simulator.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_IMG_SIZE = 224
_SPLIT_FOLDERS = {"train": ("train",), "test": ("val", "test")}


def _class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _has_split_folders(root: Path) -> bool:
    return any((root / name).is_dir() for names in _SPLIT_FOLDERS.values() for name in names)


def resolve_split_folder(root: Path, split: str) -> Path:
    """The folder holding `split`'s class folders; errors say what is missing."""
    if not root.is_dir():
        raise FileNotFoundError(f"imagefolder: folder not found: {root}")
    if not _has_split_folders(root):
        if split == "test":
            return root
        raise DataError(f"imagefolder: {root} has no train/ folder (a flat class tree is "
                         f"only usable as the test split)")
    for name in _SPLIT_FOLDERS[split]:
        if (root / name).is_dir():
            return root / name
    wanted = " or ".join(f"{n}/" for n in _SPLIT_FOLDERS[split])
    raise FileNotFoundError(f"imagefolder: {root} has no {wanted} folder for the {split} split")


def scan_class_tree(folder: Path) -> tuple[tuple[str, ...], list[tuple[Path, int]]]:
    """Class names (sorted) and (image path, class index) pairs under `folder`."""
    classes = _class_folders(folder)
    if not classes:
        raise DataError(f"imagefolder: {folder} has no class sub-folders")
    items = []
    for index, class_dir in enumerate(classes):
        for path in sorted(class_dir.iterdir()):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                items.append((path, index))
    if not items:
        raise DataError(f"imagefolder: no {'/'.join(IMAGE_SUFFIXES)} images under {folder}")
    return tuple(c.name for c in classes), items


class ImageFolderDataset(BatchSource):
    """Images decoded on demand; offers the same `get_batch` as InMemoryDataset.

    `raw_batch` decodes files to [0, 1] pixels (in loader workers, when training uses
    them); the BatchTransform normalises, flips and augments whole batches."""

    def __init__(self, root: str | Path, split: str, img_size: int | None = None) -> None:
        root = Path(root)
        folder = resolve_split_folder(root, split)
        class_names, self.items = scan_class_tree(folder)
        self._check_other_split(root, split, class_names)
        self.img_size = DEFAULT_IMG_SIZE if img_size is None else img_size
        self.transform = BatchTransform(mean=IMAGENET_MEAN, std=IMAGENET_STD,
                                        random_hflip=split == "train")
        self.labels = torch.tensor([label for _, label in self.items], dtype=torch.int64)
        self.info = DatasetInfo(name="imagefolder", split=split, num_classes=len(class_names),
                                input_shape=(3, self.img_size, self.img_size),
                                class_names=class_names, source=str(folder))

    @staticmethod
    def _check_other_split(root: Path, split: str, class_names: tuple[str, ...]) -> None:
        other = "test" if split == "train" else "train"
        if not _has_split_folders(root):
            return
        for name in _SPLIT_FOLDERS[other]:
            if (root / name).is_dir():
                other_names = tuple(c.name for c in _class_folders(root / name))
                if other_names != class_names:
                    raise DataError(f"imagefolder: {root / name} and the {split} folder "
                                     f"name different classes")
                return

    def __len__(self) -> int:
        return len(self.items)

    def decode(self, index: int) -> torch.Tensor:
        """Image `index` as [0, 1] pixels (3, H, W), resized, not normalised."""
        path = self.items[index][0]
        try:
            with Image.open(path) as image:
                rgb = image.convert("RGB").resize((self.img_size, self.img_size),
                                                  Image.Resampling.BILINEAR)
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"imagefolder: cannot decode image {path} ({err})") from err
        pixels = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0)   # (H, W, 3)
        return pixels.permute(2, 0, 1)                                         # (3, H, W)

    def raw_batch(self, indices: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.decode(i) for i in indices.tolist()])
