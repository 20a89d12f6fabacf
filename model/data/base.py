"""What every dataset loader returns: a dataset that hands out whole batches.

Small data sets live in memory as one tensor and a batch is one indexing
operation (no DataLoader, no worker processes: on a 2-core machine those cost
more than they save). Large image trees are decoded lazily per item but offer
the same `get_batch` call, so the training loop has one code path.

Random augmentation (horizontal flips, and a recipe's `BatchAugment`) draws from a
generator the caller passes in, so a seeded training run is bit-identical and resumable;
evaluation passes no generator and gets the images unchanged. The draws always cover the
whole global batch, so a process that materialises only some of its rows (`rows`, one
rank's share under torchrun) gets exactly those rows of the whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from sparsespikformer.simulator.errors import DataError

if TYPE_CHECKING:
    from sparsespikformer.model.data.augment import BatchAugment


@dataclass(frozen=True)
class DatasetInfo:
    """Metadata of one split of a data set."""

    name: str                      # 'digits', 'cifar10', 'cifar100', 'imagefolder', 'frames'
    split: str                     # 'train' or 'test'
    num_classes: int
    input_shape: tuple[int, ...]   # one sample as the model sees it: (C, H, W) or (T, C, H, W)
    class_names: tuple[str, ...]
    source: str                    # the file or folder it came from


@dataclass(frozen=True)
class BatchTransform:
    """Turns stored samples (often uint8) into the float batch a model takes."""

    scale: float = 1.0                              # e.g. 1/255 for uint8 pixels
    mean: tuple[float, ...] | None = None           # per channel, applied after scale
    std: tuple[float, ...] | None = None
    resize_to: int | None = None                    # square output side; None keeps the size
    resize_mode: str = "bilinear"                   # F.interpolate mode
    random_hflip: bool = False                      # only when a generator is given

    def __call__(self, samples: torch.Tensor, generator: torch.Generator | None = None, *,
                 draws: int | None = None, rows: torch.Tensor | None = None,
                 augment: BatchAugment | None = None) -> torch.Tensor:
        """`samples` (b, ...): rows `rows` of a global batch of `draws` samples (None: the
        whole batch). Random draws cover the global batch, so a shard of it comes out
        exactly as its rows of the whole would; `augment` needs a generator."""
        draws = samples.shape[0] if draws is None else draws
        images = samples.to(torch.float32) * self.scale   # (B, C, H, W) or (B, T, C, H, W)
        if self.resize_to is not None and tuple(images.shape[-2:]) != (self.resize_to,) * 2:
            images = resize_spatial(images, self.resize_to, self.resize_mode)
        plan = None
        if augment is not None and generator is not None:
            plan = augment.draw(generator, draws, tuple(images.shape[1:]))
            images = plan.before_normalize(images, rows)
        if self.mean is not None and self.std is not None:
            channel_shape = (len(self.mean), 1, 1)
            mean = torch.tensor(self.mean, dtype=torch.float32, device=images.device)
            std = torch.tensor(self.std, dtype=torch.float32, device=images.device)
            images = (images - mean.view(channel_shape)) / std.view(channel_shape)
        if self.random_hflip and generator is not None:
            images = random_hflip(images, generator, draws=draws, rows=rows)
        if plan is not None:
            images = plan.after_normalize(images, rows)
        return images


def resize_spatial(images: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """Resize the last two dimensions of a (B, C, H, W) or (B, T, C, H, W) batch."""
    leading = images.shape[:-3]
    flat = images.reshape(-1, *images.shape[-3:])                 # (B*T, C, H, W)
    antialias = mode in ("bilinear", "bicubic")
    align = False if mode in ("bilinear", "bicubic") else None
    resized = F.interpolate(flat, size=(size, size), mode=mode, align_corners=align,
                            antialias=antialias)
    return resized.reshape(*leading, *resized.shape[-3:])


def random_hflip(images: torch.Tensor, generator: torch.Generator, *, draws: int | None = None,
                 rows: torch.Tensor | None = None) -> torch.Tensor:
    """Mirror each image of the batch with probability 1/2 (draws for a global batch of
    `draws` images, of which `images` are rows `rows`)."""
    flip = torch.rand(images.shape[0] if draws is None else draws,
                      generator=generator) < 0.5                  # (B,)
    if rows is not None:
        flip = flip[rows]
    if not bool(flip.any()):
        return images
    flip = flip.to(images.device)
    images = images.clone()
    images[flip] = images[flip].flip(-1)
    return images


class BatchSource:
    """What the training loop needs of a data set: `labels`, `transform`, `raw_batch`.

    Subclasses provide `raw_batch(indices)` (stored samples, untransformed: what a loader
    worker fetches) and set `labels` (N,) and `transform` (a BatchTransform).
    """

    labels: torch.Tensor
    transform: BatchTransform

    def raw_batch(self, indices: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """One sample (model input, label), through the same path as a batch."""
        images, labels = self.get_batch(torch.tensor([index]))
        return images[0], int(labels[0])

    def get_batch(self, indices: torch.Tensor, generator: torch.Generator | None = None, *,
                  rows: torch.Tensor | None = None, device: torch.device | None = None,
                  augment: BatchAugment | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Float images (b, ...) and int64 labels (b,) of `indices` (B,), or of its
        positions `rows` only (random draws still cover all B), on `device`."""
        chosen = indices if rows is None else indices[rows]
        return (self.finish_batch(self.raw_batch(chosen), generator, draws=len(indices),
                                  rows=rows, device=device, augment=augment),
                self.labels[chosen].to(device or "cpu"))

    def finish_batch(self, raw: torch.Tensor, generator: torch.Generator | None = None, *,
                     draws: int | None = None, rows: torch.Tensor | None = None,
                     device: torch.device | None = None,
                     augment: BatchAugment | None = None) -> torch.Tensor:
        """`raw_batch` output -> model input on `device` (see BatchTransform)."""
        if device is not None:
            raw = raw.to(device, non_blocking=True)
        return self.transform(raw, generator, draws=draws, rows=rows, augment=augment)


class InMemoryDataset(BatchSource):
    """All samples in one tensor; a batch is one index operation."""

    def __init__(self, samples: torch.Tensor, labels: torch.Tensor, info: DatasetInfo,
                 transform: BatchTransform | None = None) -> None:
        if samples.shape[0] != labels.shape[0]:
            raise DataError(f"{info.source}: {samples.shape[0]} samples but "
                             f"{labels.shape[0]} labels")
        self.samples = samples                      # (N, ...) stored dtype, e.g. uint8
        self.labels = labels.to(torch.int64)        # (N,)
        self.info = info
        self.transform = transform or BatchTransform()

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def raw_batch(self, indices: torch.Tensor) -> torch.Tensor:
        return self.samples[indices]

