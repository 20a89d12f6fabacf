"""Tiny stand-ins shared by the pruning tests: a small conv net and a random data set."""

from __future__ import annotations

import torch
from torch import nn

from sparsespikformer.model.data.base import DatasetInfo, InMemoryDataset
from sparsespikformer.model.training.loop import TrainConfig

NUM_CLASSES = 3


def tiny_dataset(split: str, samples: int = 48, seed: int = 0) -> InMemoryDataset:
    generator = torch.Generator().manual_seed(seed if split == "train" else seed + 1)
    labels = torch.randint(0, NUM_CLASSES, (samples,), generator=generator)
    images = torch.rand(samples, 1, 4, 4, generator=generator)
    images[:, 0, 0, 0] += labels.float()            # learnable signal
    info = DatasetInfo(name="tiny", split=split, num_classes=NUM_CLASSES, input_shape=(1, 4, 4),
                       class_names=tuple(str(c) for c in range(NUM_CLASSES)), source="tiny")
    return InMemoryDataset(images, labels, info)


def tiny_model(seed: int = 0) -> nn.Module:
    """conv 1->4 (36 weights) + BN + linear 64->3 (192 weights): 228 prunable weights."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(64, NUM_CLASSES))


TINY_PRUNABLE = 4 * 1 * 3 * 3 + NUM_CLASSES * 64


def tiny_train_config(epochs: int = 1) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=16, lr=1e-2, warmup_epochs=0, min_lr=1e-3,
                       eval_batch_size=64)
