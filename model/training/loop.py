"""Training and evaluation: AdamW, warm-up + cosine per step, label smoothing,
optional mixup, a checkpoint every epoch, resume after interruption.

`train()` is deliberately one explicit loop with three plug-in points, so
later stages reuse it instead of copying it:

* `after_backward(model)`: runs between `backward()` and `optimizer.step()`,
  e.g. to zero the gradients of pruned weights (lottery-ticket masks);
* `after_optimizer_step(model)`: runs after every step, e.g. to re-apply a
  weight mask so pruned weights stay exactly zero;
* `loss_fn(model, images, targets, logits) -> loss`: replaces the default
  soft-target cross entropy, e.g. to add a ratio loss and a KL term to a
  teacher when training token selectors. `targets` are soft labels (B, K) with
  label smoothing and mixup already applied; `images` are the (mixed) inputs.

Resuming: every epoch ends with an atomic `out_dir/checkpoint.pt` (model,
optimizer, step, epoch, torch RNG state, history, config). Shuffling,
flips and mixup draw from generators derived from (seed, epoch), and the
learning rate is a function of the step, so an interrupted run that is
started again ends bit-identical to one that never stopped.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from sparsespikformer.model.data import Dataset
from sparsespikformer.model.training.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    load_training_checkpoint,
    save_checkpoint,
)
from sparsespikformer.model.training.schedule import WarmupCosineSchedule
from sparsespikformer.model.training.seeding import (
    deterministic_algorithms,
    epoch_generator,
    epoch_numpy_rng,
    torch_threads,
)
from sparsespikformer.simulator.atomic import atomic_write_text
from sparsespikformer.simulator.checks import SEED_LIMIT
from sparsespikformer.simulator.errors import InputError

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_NAME = "history.csv"

ModelHook = Callable[[nn.Module], None]
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

# Fields that may change between an interrupted run and its resumption without
# changing what is computed (epochs may grow: the cosine then stretches, with a warning).
# TrainConfig fields that change speed, not results.
SPEED_ONLY_FIELDS = ("eval_batch_size", "num_workers", "num_threads")
_RESUMABLE_CHANGES = {"epochs", *SPEED_ONLY_FIELDS}


_FLOAT_FIELDS = ("lr", "weight_decay", "warmup_epochs", "min_lr", "label_smoothing",
                 "mixup_alpha")
# numpy seeds are 32-bit unsigned (and seed * stride + epoch must fit torch's int64 seeds);
# analysis/arg_types.py checks --seed against the same limit.


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 5e-4                  # peak AdamW learning rate (Spikformer recipe)
    weight_decay: float = 6e-2        # not applied to biases and norm parameters
    warmup_epochs: float = 1.0        # may be fractional: warm-up is counted in steps
    min_lr: float = 1e-5              # cosine floor and warm-up start
    label_smoothing: float = 0.1
    mixup_alpha: float = 0.0          # Beta(alpha, alpha) mixing; 0 turns mixup off
    mixup_off_epoch: int | None = None  # epoch from which mixup stops (reference: 200 of 300)
    seed: int = 0
    eval_batch_size: int = 256
    num_workers: int = 0              # decoder processes for lazily loaded image folders only
    num_threads: int | None = None    # torch intra-op threads while training; None: torch's
    deterministic: bool = True        # torch.use_deterministic_algorithms during training

    def __post_init__(self) -> None:
        # NaN passes no range test below (every comparison is False) and inf trains to NaN.
        for name in _FLOAT_FIELDS:
            if not math.isfinite(getattr(self, name)):
                raise InputError(f"{name} must be a finite number, got {getattr(self, name)}")
        if not 0 <= self.seed < SEED_LIMIT:
            raise InputError(f"seed must be in 0..{SEED_LIMIT - 1}, got {self.seed}")
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                    "eval_batch_size": self.eval_batch_size}
        for name, value in positive.items():
            if value <= 0:
                raise InputError(f"{name} must be positive, got {value}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise InputError(f"warmup_epochs must be in 0..epochs, got {self.warmup_epochs}")
        if not 0 <= self.min_lr <= self.lr:
            raise InputError(f"min_lr must be in 0..lr, got {self.min_lr}")
        if self.weight_decay < 0 or self.mixup_alpha < 0 or self.num_workers < 0:
            raise InputError("weight_decay, mixup_alpha and num_workers must be >= 0")
        if not 0 <= self.label_smoothing < 1:
            raise InputError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.num_threads is not None and self.num_threads <= 0:
            raise InputError(f"num_threads must be positive, got {self.num_threads}")

    def mixup_active(self, epoch: int) -> bool:
        return self.mixup_alpha > 0 and (self.mixup_off_epoch is None
                                         or epoch < self.mixup_off_epoch)


# ---------------------------------------------------------------- losses, targets


def soft_targets(labels: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """One-hot labels with `smoothing` spread evenly over all classes: (B, K)."""
    off_value = smoothing / num_classes
    targets = torch.full((labels.shape[0], num_classes), off_value)
    targets.scatter_(1, labels[:, None], 1.0 - smoothing + off_value)
    return targets


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_k target_k log softmax(logits)_k."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def default_loss(model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                 logits: torch.Tensor) -> torch.Tensor:
    return soft_cross_entropy(logits, targets)


def mixup(images: torch.Tensor, targets: torch.Tensor, lam: float,
          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Blend every sample with a random partner of the same batch."""
    partner = torch.randperm(images.shape[0], generator=generator)        # (B,)
    mixed = lam * images + (1.0 - lam) * images[partner]
    return mixed, lam * targets + (1.0 - lam) * targets[partner]


# ---------------------------------------------------------------- optimizer, batches


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on weight matrices and kernels, not on biases or norms."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim > 1 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr)


def steps_per_epoch(num_samples: int, batch_size: int) -> int:
    """Full batches only (the partial last batch is dropped, as in timm's loader;
    a different shuffle each epoch still visits every sample)."""
    steps = num_samples // batch_size
    if steps == 0:
        raise InputError(f"batch_size {batch_size} is larger than the training set "
                         f"({num_samples} samples)")
    return steps


def iterate_batches(dataset: Dataset, batches: torch.Tensor, generator: torch.Generator | None,
                    num_workers: int):
    """Yield (images, labels) for each row of `batches` (num_batches, batch_size)."""
    lazy = hasattr(dataset, "augment_batch")
    if num_workers == 0 or not lazy:
        for indices in batches:
            yield dataset.get_batch(indices, generator)
        return
    # Decoding runs in worker processes; random flips stay in this process so
    # they come from the seeded generator in a fixed order.
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches.tolist(),
                                         num_workers=num_workers)
    for images, labels in loader:
        yield dataset.augment_batch(images, generator), labels


# ---------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, batch_size: int = 256) -> dict[str, float]:
    """Top-1 accuracy (0..1) and mean cross-entropy loss (no smoothing) on `dataset`."""
    num_samples = len(dataset)
    if num_samples == 0:
        raise InputError(f"{dataset.info.source}: the {dataset.info.split} split is empty")
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    order = torch.arange(num_samples)
    try:
        for indices in order.split(batch_size):
            images, labels = dataset.get_batch(indices)
            logits = model(images)                                      # (B, K)
            loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
            correct += int((logits.argmax(dim=-1) == labels).sum())
    finally:
        model.train(was_training)
    return {"accuracy": correct / num_samples, "loss": loss_sum / num_samples,
            "samples": float(num_samples)}


# ---------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainHooks:
    """The plug-in points of `train()` (see the module docstring)."""

    loss_fn: LossFn = default_loss
    after_backward: ModelHook | None = None
    after_optimizer_step: ModelHook | None = None


@dataclass
class _RunState:
    """What a checkpoint restores."""

    epoch: int = 0                                   # epochs finished
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)


def _check_resumable(saved: dict, config: TrainConfig, path: Path) -> None:
    current = dataclasses.asdict(config)
    changed = sorted(k for k in current if k not in _RESUMABLE_CHANGES
                     and saved.get(k) != current[k])
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
        raise InputError(f"{path} was written with different training settings ({details}); "
                         f"use a new output folder or the same settings")
    if saved.get("epochs") != config.epochs:
        logger.warning("%s: resuming with epochs=%d instead of %s; the cosine schedule "
                       "stretches from here", path, config.epochs, saved.get("epochs"))


def _resume(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
            config: TrainConfig) -> _RunState:
    state = load_training_checkpoint(path)
    _check_resumable(state["config"], config, path)
    if state["epoch"] > config.epochs:
        raise InputError(f"{path} has {state['epoch']} epochs done, more than epochs="
                         f"{config.epochs}; use a new output folder or epochs >= "
                         f"{state['epoch']}")
    try:
        model.load_state_dict(state["model"], strict=True)
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        summary = " ".join(str(err).split())[:300]
        raise InputError(f"{path}: checkpoint does not fit this model ({summary})") from err
    logger.info("resuming from %s after epoch %d", path, state["epoch"])
    return _RunState(epoch=state["epoch"], history=list(state["history"]))


def _save(out_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
          config: TrainConfig, run: _RunState, step: int, metadata: dict) -> None:
    save_checkpoint(out_dir / CHECKPOINT_NAME, {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "epoch": run.epoch,
        "torch_rng": torch.get_rng_state(),
        "history": run.history,
        "config": dataclasses.asdict(config),
        "metadata": metadata,
    })
    atomic_write_text(out_dir / HISTORY_NAME, pd.DataFrame(run.history).to_csv(index=False))


def _train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, train_set: Dataset,
                     config: TrainConfig, schedule: WarmupCosineSchedule, spe: int, epoch: int,
                     hooks: TrainHooks, progress: bool) -> dict[str, float]:
    generator = epoch_generator(config.seed, epoch)
    beta_rng = epoch_numpy_rng(config.seed, epoch)
    order = torch.randperm(len(train_set), generator=generator)
    batches = order[: spe * config.batch_size].view(spe, config.batch_size)   # (S, B)
    num_classes = train_set.info.num_classes
    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    bar = tqdm(iterate_batches(train_set, batches, generator, config.num_workers), total=spe,
               desc=f"epoch {epoch + 1}/{config.epochs}", file=sys.stderr,
               disable=not progress, leave=False, dynamic_ncols=True)
    for batch_index, (images, labels) in enumerate(bar):
        step = epoch * spe + batch_index
        lr = schedule.lr_at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        targets = soft_targets(labels, num_classes, config.label_smoothing)   # (B, K)
        if config.mixup_active(epoch):
            lam = float(beta_rng.beta(config.mixup_alpha, config.mixup_alpha))
            images, targets = mixup(images, targets, lam, generator)
        logits = model(images)                                                 # (B, K)
        loss = hooks.loss_fn(model, images, targets, logits)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if hooks.after_backward is not None:
            hooks.after_backward(model)
        optimizer.step()
        if hooks.after_optimizer_step is not None:
            hooks.after_optimizer_step(model)
        loss_sum += loss.item() * labels.shape[0]
        # Under mixup the dominant of the two blended labels counts as the answer.
        correct += int((logits.detach().argmax(dim=-1) == targets.argmax(dim=-1)).sum())
        seen += labels.shape[0]
        if batch_index % 10 == 0:
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
    bar.close()
    return {"train_loss": loss_sum / seen, "train_accuracy": correct / seen, "lr": lr}


def train(model: nn.Module, train_set: Dataset, test_set: Dataset, config: TrainConfig,
          out_dir: str | Path, progress: bool = True, *,
          loss_fn: LossFn | None = None,
          after_backward: ModelHook | None = None,
          after_optimizer_step: ModelHook | None = None,
          metadata: dict | None = None) -> pd.DataFrame:
    """Train `model` for `config.epochs`, resuming from `out_dir` if it holds a checkpoint.

    Returns the history, one row per epoch: epoch, train_loss, train_accuracy,
    test_loss, test_accuracy, lr, seconds. `metadata` (plain values, e.g. the
    preset name and data spec) is stored in the checkpoint.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spe = steps_per_epoch(len(train_set), config.batch_size)
    schedule = WarmupCosineSchedule(base_lr=config.lr, min_lr=config.min_lr,
                                    warmup_steps=round(config.warmup_epochs * spe),
                                    total_steps=config.epochs * spe)
    optimizer = build_optimizer(model, config)
    checkpoint_path = out_dir / CHECKPOINT_NAME
    run = (_resume(checkpoint_path, model, optimizer, config) if checkpoint_path.exists()
           else _RunState())
    hooks = TrainHooks(loss_fn=loss_fn or default_loss, after_backward=after_backward,
                       after_optimizer_step=after_optimizer_step)
    with deterministic_algorithms(config.deterministic), torch_threads(config.num_threads):
        for epoch in range(run.epoch, config.epochs):
            started = time.perf_counter()
            row = _train_one_epoch(model, optimizer, train_set, config, schedule, spe,
                                   epoch, hooks, progress)
            scores = evaluate(model, test_set, config.eval_batch_size)
            row = {"epoch": epoch + 1, **row, "test_loss": scores["loss"],
                   "test_accuracy": scores["accuracy"],
                   "seconds": time.perf_counter() - started}
            run.history.append(row)
            run.epoch = epoch + 1
            _save(out_dir, model, optimizer, config, run, run.epoch * spe, metadata or {})
            logger.info("epoch %d/%d: train loss %.4f acc %.4f, test loss %.4f acc %.4f (%.1f s)",
                        run.epoch, config.epochs, row["train_loss"], row["train_accuracy"],
                        row["test_loss"], row["test_accuracy"], row["seconds"])
    return pd.DataFrame(run.history)
