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
optimizer, step, epoch, torch RNG state, history, config, and what ran it:
world size, device type, AMP mode). Shuffling, flips, augmentations and
mixup draw from generators derived from (seed, epoch) (`batches.py`), and
the learning rate is a function of the step, so an interrupted run that is
started again ends bit-identical to one that never stopped.

Devices and scale (`Runtime`, `devices.py`, `distributed.py`): the model,
its optimizer state and every batch live on `runtime.device`; the forward
pass runs under autocast for `runtime.amp` (a gradient scaler for fp16).
Under torchrun the model is wrapped in DistributedDataParallel, each rank
trains its share of every global batch, metrics are summed over ranks and
rank 0 alone writes checkpoints, logs and progress bars.
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
from torch import nn
from tqdm import tqdm

from sparsespikformer.model.data import Dataset
from sparsespikformer.model.data.augment import AugmentConfig, BatchAugment
from sparsespikformer.model.training.batches import (
    EpochBatches,
    mixup,
    soft_cross_entropy,
    soft_targets,
    steps_per_epoch,
)
from sparsespikformer.model.training.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    load_training_checkpoint,
    save_checkpoint,
)
from sparsespikformer.model.training.devices import Runtime, autocast, grad_scaler
from sparsespikformer.model.training.distributed import (
    Shard,
    all_reduce_sum,
    broadcast_tensors,
    current_shard,
    run_on_main,
)
from sparsespikformer.model.training.evaluation import evaluate
from sparsespikformer.model.training.schedule import WarmupCosineSchedule
from sparsespikformer.model.training.seeding import deterministic_algorithms, torch_threads
from sparsespikformer.model.training.sync_batchnorm import (
    to_plain_batchnorm,
    to_sync_batchnorm,
)
from sparsespikformer.simulator.atomic import atomic_write_text
from sparsespikformer.simulator.checks import SEED_LIMIT
from sparsespikformer.simulator.errors import InputError

__all__ = ["CHECKPOINT_NAME", "HISTORY_NAME", "TrainConfig", "TrainHooks", "build_optimizer",
           "default_loss", "evaluate", "mixup", "soft_cross_entropy", "soft_targets",
           "steps_per_epoch", "train"]

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
    augment: AugmentConfig = AugmentConfig()  # batched crop / RandAugment / erasing (recipes)

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
        if not isinstance(self.augment, AugmentConfig):
            raise InputError(f"augment must be an AugmentConfig, got {self.augment!r}")

    def mixup_active(self, epoch: int) -> bool:
        return self.mixup_alpha > 0 and (self.mixup_off_epoch is None
                                         or epoch < self.mixup_off_epoch)


def default_loss(model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                 logits: torch.Tensor) -> torch.Tensor:
    return soft_cross_entropy(logits, targets)


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on weight matrices and kernels, not on biases or norms."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim > 1 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr)


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


@dataclass(frozen=True)
class _Parts:
    """Everything one run trains with."""

    model: nn.Module                  # the model itself (hooks, checkpoints)
    forward: nn.Module                # what runs the forward: the model, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    runtime: Runtime
    device: torch.device
    shard: Shard
    augment: BatchAugment | None


# Fields added after checkpoints were first written: an old checkpoint ran with the default.
_ADDED_FIELDS = {"augment": dataclasses.asdict(AugmentConfig())}


def _check_resumable(saved: dict, config: TrainConfig, path: Path) -> None:
    current = dataclasses.asdict(config)
    saved = {**_ADDED_FIELDS, **saved}
    changed = sorted(k for k in current if k not in _RESUMABLE_CHANGES
                     and saved.get(k) != current[k])
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
        raise InputError(f"{path} was written with different training settings ({details}); "
                         f"use a new output folder or the same settings")
    if saved.get("epochs") != config.epochs:
        logger.warning("%s: resuming with epochs=%d instead of %s; the cosine schedule "
                       "stretches from here", path, config.epochs, saved.get("epochs"))


def _resume(path: Path, parts: _Parts, config: TrainConfig) -> _RunState:
    state = load_training_checkpoint(path)
    _check_resumable(state["config"], config, path)
    if state["epoch"] > config.epochs:
        raise InputError(f"{path} has {state['epoch']} epochs done, more than epochs="
                         f"{config.epochs}; use a new output folder or epochs >= "
                         f"{state['epoch']}")
    try:
        parts.model.load_state_dict(state["model"], strict=True)
        parts.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        if "grad_scaler" in state and parts.scaler.is_enabled():
            parts.scaler.load_state_dict(state["grad_scaler"])
        if "cuda_rng" in state and parts.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], parts.device)
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        summary = " ".join(str(err).split())[:300]
        raise InputError(f"{path}: checkpoint does not fit this model ({summary})") from err
    if parts.shard.is_main:
        logger.info("resuming from %s after epoch %d", path, state["epoch"])
    return _RunState(epoch=state["epoch"], history=list(state["history"]))


def runtime_record(parts: _Parts) -> dict:
    """What ran an epoch: recorded in every checkpoint and history row."""
    return {"world_size": parts.shard.world_size, "device_type": parts.device.type,
            "amp": parts.runtime.amp}


def _save(out_dir: Path, parts: _Parts, config: TrainConfig, run: _RunState, step: int,
          metadata: dict) -> None:
    state = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model": parts.model.state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "step": step,
        "epoch": run.epoch,
        "torch_rng": torch.get_rng_state(),
        "history": run.history,
        "config": dataclasses.asdict(config),
        "metadata": metadata,
        "runtime": runtime_record(parts),
    }
    if parts.scaler.is_enabled():
        state["grad_scaler"] = parts.scaler.state_dict()
    if parts.device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(parts.device)
    save_checkpoint(out_dir / CHECKPOINT_NAME, state)
    atomic_write_text(out_dir / HISTORY_NAME, pd.DataFrame(run.history).to_csv(index=False))


def _train_one_epoch(parts: _Parts, train_set: Dataset, config: TrainConfig,
                     schedule: WarmupCosineSchedule, spe: int, epoch: int,
                     hooks: TrainHooks, progress: bool) -> dict[str, float]:
    batches = EpochBatches(
        train_set, batch_size=config.batch_size, seed=config.seed, epoch=epoch,
        mixup_alpha=config.mixup_alpha if config.mixup_active(epoch) else None,
        label_smoothing=config.label_smoothing, shard=parts.shard, device=parts.device,
        augment=parts.augment, num_workers=config.num_workers)
    parts.forward.train()
    # loss x samples, correct, samples: summed on the device, read once per epoch
    sums = torch.zeros(3, dtype=torch.float64, device=parts.device)
    bar = tqdm(batches, total=spe, desc=f"epoch {epoch + 1}/{config.epochs}",
               file=sys.stderr, disable=not (progress and parts.shard.is_main), leave=False,
               dynamic_ncols=True)
    for batch_index, batch in enumerate(bar):
        lr = schedule.lr_at(epoch * spe + batch_index)
        for group in parts.optimizer.param_groups:
            group["lr"] = lr
        with autocast(parts.device, parts.runtime.amp):
            logits = parts.forward(batch.images)                              # (b, K)
            loss = hooks.loss_fn(parts.model, batch.images, batch.targets, logits)
        parts.optimizer.zero_grad(set_to_none=True)
        parts.scaler.scale(loss).backward()
        if hooks.after_backward is not None:
            hooks.after_backward(parts.model)
        parts.scaler.step(parts.optimizer)
        parts.scaler.update()
        if hooks.after_optimizer_step is not None:
            hooks.after_optimizer_step(parts.model)
        samples = batch.labels.shape[0]
        # Under mixup the dominant of the two blended labels counts as the answer.
        correct = (logits.detach().argmax(dim=-1) == batch.targets.argmax(dim=-1)).sum()
        sums += torch.stack([loss.detach().double() * samples, correct.double(),
                             torch.tensor(float(samples), dtype=torch.float64,
                                          device=parts.device)])
        if batch_index % 10 == 0 and not bar.disable:
            loss_sum, right, seen = sums.tolist()
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{right / seen:.3f}")
    bar.close()
    loss_sum, right, seen = all_reduce_sum(sums).tolist()
    return {"train_loss": loss_sum / seen, "train_accuracy": right / seen, "lr": lr}


def _assemble(model: nn.Module, config: TrainConfig, runtime: Runtime,
              input_shape: tuple[int, ...]) -> _Parts:
    device = runtime.torch_device()
    shard = current_shard()
    model.to(device)
    if shard.world_size > 1 and runtime.sync_bn:
        to_sync_batchnorm(model, device)   # new layers: before the optimizer takes them
    elif runtime.sync_bn:
        logger.warning("--sync-bn without torchrun: one process already sees the whole batch")
    optimizer = build_optimizer(model, config)
    forward = model
    if shard.world_size > 1:
        forward = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    augment = BatchAugment(config.augment, input_shape) if config.augment.active else None
    return _Parts(model, forward, optimizer, grad_scaler(device, runtime.amp), runtime,
                  device, shard, augment)


def _share_buffers(model: nn.Module) -> None:
    """Rank 0's batch-norm running statistics on every rank (those it saves), so all
    ranks evaluate the model the checkpoint holds."""
    buffers = dict(model.named_buffers())
    for name, value in broadcast_tensors(buffers).items():
        buffers[name].copy_(value)


def train(model: nn.Module, train_set: Dataset, test_set: Dataset, config: TrainConfig,
          out_dir: str | Path, progress: bool = True, *,
          loss_fn: LossFn | None = None,
          after_backward: ModelHook | None = None,
          after_optimizer_step: ModelHook | None = None,
          metadata: dict | None = None,
          runtime: Runtime | None = None) -> pd.DataFrame:
    """Train `model` for `config.epochs`, resuming from `out_dir` if it holds a checkpoint.

    Returns the history, one row per epoch: epoch, train_loss, train_accuracy,
    test_loss, test_accuracy, lr, seconds, world_size, device_type, amp. `metadata`
    (plain values, e.g. the preset name and data spec) is stored in the checkpoint.
    `runtime` (default: `Runtime()`, the best device, float32) says where and how it runs;
    the model is left on that device. Under torchrun every rank calls this alike.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spe = steps_per_epoch(len(train_set), config.batch_size)
    schedule = WarmupCosineSchedule(base_lr=config.lr, min_lr=config.min_lr,
                                    warmup_steps=round(config.warmup_epochs * spe),
                                    total_steps=config.epochs * spe)
    parts = _assemble(model, config, runtime or Runtime(), train_set.info.input_shape)
    checkpoint_path = out_dir / CHECKPOINT_NAME
    run = _resume(checkpoint_path, parts, config) if checkpoint_path.exists() else _RunState()
    hooks = TrainHooks(loss_fn=loss_fn or default_loss, after_backward=after_backward,
                       after_optimizer_step=after_optimizer_step)
    try:
        with deterministic_algorithms(config.deterministic), torch_threads(config.num_threads):
            for epoch in range(run.epoch, config.epochs):
                _run_epoch(parts, train_set, test_set, config, schedule, spe, epoch, hooks,
                           progress, run, out_dir, metadata or {})
    finally:
        if parts.forward is not model and parts.runtime.sync_bn:
            to_plain_batchnorm(model)
    return pd.DataFrame(run.history)


def _run_epoch(parts: _Parts, train_set: Dataset, test_set: Dataset, config: TrainConfig,
               schedule: WarmupCosineSchedule, spe: int, epoch: int, hooks: TrainHooks,
               progress: bool, run: _RunState, out_dir: Path, metadata: dict) -> None:
    started = time.perf_counter()
    row = _train_one_epoch(parts, train_set, config, schedule, spe, epoch, hooks, progress)
    _share_buffers(parts.model)
    scores = evaluate(parts.model, test_set, config.eval_batch_size, amp=parts.runtime.amp,
                      shard=parts.shard)
    row = {"epoch": epoch + 1, **row, "test_loss": scores["loss"],
           "test_accuracy": scores["accuracy"], "seconds": time.perf_counter() - started,
           **runtime_record(parts)}
    run.history.append(row)
    run.epoch = epoch + 1
    run_on_main(_save, out_dir, parts, config, run, run.epoch * spe, metadata)
    if parts.shard.is_main:
        logger.info("epoch %d/%d: train loss %.4f acc %.4f, test loss %.4f acc %.4f (%.1f s)",
                    run.epoch, config.epochs, row["train_loss"], row["train_accuracy"],
                    row["test_loss"], row["test_accuracy"], row["seconds"])
