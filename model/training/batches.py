"""One epoch of training batches: every step's global batch, and this process's share of it.

The global batch of step s is a fixed function of (seed, epoch, s): `plan_epoch` shuffles
with the epoch's generator and, when mixup is on, draws every step's mixing weight λ (numpy
Beta) and partner permutation up front; the per-step flips and augmentations then draw
from the same generator, in step order, for the whole global batch. A process that trains
rows [lo, hi) of it (`Shard`) materialises only those rows and their mixup partners, and
gets exactly what a single process would have for them, so `--batch-size` is the global
batch and results do not depend on how many processes share it.

Targets are soft labels (B, K): label smoothing, then mixup `λ x + (1 - λ) x[partner]` of
images and targets alike (Zhang et al. 2018; the reference's `mixup_mode: batch`, with the
partner a random permutation of the batch).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from sparsespikformer.model.data.augment import BatchAugment
from sparsespikformer.model.data.base import BatchSource
from sparsespikformer.model.training.distributed import Shard
from sparsespikformer.model.training.seeding import epoch_generator, epoch_numpy_rng
from sparsespikformer.simulator.errors import InputError

# Offset between the epoch generator's seed and the one the loader gives its workers.
_WORKER_SEED_OFFSET = 7_919


def soft_targets(labels: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """One-hot labels with `smoothing` spread evenly over all classes: (B, K)."""
    off_value = smoothing / num_classes
    targets = torch.full((labels.shape[0], num_classes), off_value, device=labels.device)
    targets.scatter_(1, labels[:, None], 1.0 - smoothing + off_value)
    return targets


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_k target_k log softmax(logits)_k."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def mixup(images: torch.Tensor, targets: torch.Tensor, lam: float,
          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Blend every sample with a random partner of the same batch."""
    partner = torch.randperm(images.shape[0], generator=generator)        # (B,)
    mixed = lam * images + (1.0 - lam) * images[partner]
    return mixed, lam * targets + (1.0 - lam) * targets[partner]


def steps_per_epoch(num_samples: int, batch_size: int) -> int:
    """Full batches only (the partial last batch is dropped, as in timm's loader;
    a different shuffle each epoch still visits every sample)."""
    steps = num_samples // batch_size
    if steps == 0:
        raise InputError(f"batch_size {batch_size} is larger than the training set "
                         f"({num_samples} samples)")
    return steps


@dataclass(frozen=True)
class EpochPlan:
    """The draws an epoch makes before its first step."""

    batches: torch.Tensor                 # (S, B) sample indices of every global batch
    lams: list[float] | None              # mixup weight of each step (None: no mixup)
    partners: torch.Tensor | None         # (S, B) mixup partner positions in the batch


def plan_epoch(num_samples: int, batch_size: int, seed: int, epoch: int,
               mixup_alpha: float | None) -> tuple[EpochPlan, torch.Generator]:
    """The epoch's plan, and its generator (which the steps' flips and augmentations go
    on drawing from). `mixup_alpha` None: mixup off this epoch."""
    generator = epoch_generator(seed, epoch)
    spe = steps_per_epoch(num_samples, batch_size)
    order = torch.randperm(num_samples, generator=generator)
    batches = order[: spe * batch_size].view(spe, batch_size)               # (S, B)
    if mixup_alpha is None:
        return EpochPlan(batches, None, None), generator
    beta_rng = epoch_numpy_rng(seed, epoch)
    lams = [float(beta_rng.beta(mixup_alpha, mixup_alpha)) for _ in range(spe)]
    partners = torch.stack([torch.randperm(batch_size, generator=generator)
                            for _ in range(spe)])                           # (S, B)
    return EpochPlan(batches, lams, partners), generator


@dataclass(frozen=True)
class StepRows:
    """Which rows of a global batch this process loads, and where its own samples and
    their partners sit among them."""

    rows: torch.Tensor | None       # sorted positions to load (None: the whole batch)
    own: torch.Tensor               # (b,) index into the loaded rows
    partner: torch.Tensor | None    # (b,) index of each own sample's mixup partner


def step_rows(batch_size: int, shard: Shard, partners: torch.Tensor | None) -> StepRows:
    lo, hi = shard.bounds(batch_size)
    own = torch.arange(lo, hi)
    if partners is None:
        whole = shard.world_size == 1
        return StepRows(None if whole else own, torch.arange(hi - lo), None)
    if shard.world_size == 1:
        return StepRows(None, own, partners)
    rows = torch.unique(torch.cat([own, partners[own]]))                   # sorted
    return StepRows(rows, torch.searchsorted(rows, own),
                    torch.searchsorted(rows, partners[own]))


@dataclass(frozen=True)
class StepBatch:
    images: torch.Tensor    # (b, ...) this process's share, on the training device
    targets: torch.Tensor   # (b, K) soft targets
    labels: torch.Tensor    # (b,) hard labels


class EpochBatches:
    """Iterates one epoch's steps for one process (see the module docstring)."""

    def __init__(self, dataset: BatchSource, *, batch_size: int, seed: int, epoch: int,
                 mixup_alpha: float | None, label_smoothing: float, shard: Shard,
                 device: torch.device, augment: BatchAugment | None = None,
                 num_workers: int = 0) -> None:
        self.dataset = dataset
        self.plan, self.generator = plan_epoch(len(dataset), batch_size, seed, epoch,
                                               mixup_alpha)
        self.shard, self.device, self.augment = shard, device, augment
        self.smoothing = label_smoothing
        self.num_classes = dataset.info.num_classes
        self.loader_seed = seed * 1_000_003 + epoch + _WORKER_SEED_OFFSET
        self.num_workers = num_workers if getattr(dataset, "decodes_lazily", False) else 0
        shard.bounds(batch_size)                        # the global batch must divide

    def __len__(self) -> int:
        return self.plan.batches.shape[0]

    def _rows(self, step: int) -> StepRows:
        partners = None if self.plan.partners is None else self.plan.partners[step]
        return step_rows(self.plan.batches.shape[1], self.shard, partners)

    def _loaded(self, step: int, rows: StepRows) -> torch.Tensor:
        indices = self.plan.batches[step]
        return indices if rows.rows is None else indices[rows.rows]

    def __iter__(self) -> Iterator[StepBatch]:
        all_rows = [self._rows(step) for step in range(len(self))]
        raws = self._raw_batches([self._loaded(s, r) for s, r in enumerate(all_rows)])
        for step, (rows, raw) in enumerate(zip(all_rows, raws)):
            yield self._finish(step, rows, raw)

    def _raw_batches(self, loaded: list[torch.Tensor]):
        if self.num_workers == 0:
            return (self.dataset.raw_batch(indices) for indices in loaded)
        # Decoding in worker processes; every random draw stays here, in step order.
        return torch.utils.data.DataLoader(
            _RawItems(self.dataset), batch_sampler=[i.tolist() for i in loaded],
            num_workers=self.num_workers, pin_memory=self.device.type == "cuda",
            worker_init_fn=seed_worker,
            generator=torch.Generator().manual_seed(self.loader_seed))

    def _finish(self, step: int, rows: StepRows, raw: torch.Tensor) -> StepBatch:
        indices = self.plan.batches[step]
        images = self.dataset.finish_batch(raw, self.generator, draws=len(indices),
                                           rows=rows.rows, device=self.device,
                                           augment=self.augment)
        labels = self.dataset.labels[self._loaded(step, rows)].to(self.device)
        targets = soft_targets(labels, self.num_classes, self.smoothing)     # (rows, K)
        own = rows.own.to(self.device)
        if rows.partner is None:
            return StepBatch(images[own], targets[own], labels[own])
        lam = self.plan.lams[step]
        partner = rows.partner.to(self.device)
        return StepBatch(lam * images[own] + (1.0 - lam) * images[partner],
                         lam * targets[own] + (1.0 - lam) * targets[partner], labels[own])


class _RawItems(torch.utils.data.Dataset):
    """A data set's undecoded items, for loader workers."""

    def __init__(self, dataset: BatchSource) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.dataset.raw_batch(torch.tensor([index]))[0]


def seed_worker(worker_id: int) -> None:
    """Seed a loader worker's Python and numpy generators from its torch seed (which the
    loader derives from its seeded generator and the worker id)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
