"""Lottery-ticket pruning: iterative magnitude pruning (IMP) with late rewinding.

Round 0 trains the dense model and keeps a copy of its weights at the end of
epoch `rewind_epoch` (late rewinding, Frankle et al. 2020; Kim et al. 2022 for
SNNs; docs/references.md). Round k >= 1 removes a fraction `rate` of the weights that survived
round k-1, smallest |w| of the trained round-(k-1) weights first (globally over
every weight with ndim > 1, or per tensor), rewinds the survivors to their
epoch-`rewind_epoch` values and trains again for the same number of epochs with
the pruned weights held at exactly zero. After k rounds the weight sparsity is
1 - (1 - rate)^k: 25.0%, 43.8%, 57.8%, 68.4%, ... for rate 0.25.

Baselines with the same training budget, each in its own sub-folder and
reusing the IMP run's round 0 (and, for `reinit`, its masks):
* `reinit`: the winning mask of round k on a fresh random initialisation;
* `oneshot`: one magnitude pruning of the dense model to the final sparsity,
  rewound and retrained once;
* `random`: the same sparsity ladder with uniformly random masks, rewound.

The layout of `out_dir` (round folders, rounds.csv, settings.json) is
`sparsespikformer.model.pruning.lottery_store`'s.

An interrupted run started again skips every finished round and resumes the
unfinished one from its last training checkpoint. Only `rounds` (and which
baseline rounds train) may change between runs in one folder.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import pandas as pd
from torch import nn

from sparsespikformer.model.data import Dataset
from sparsespikformer.model.pruning.lottery_store import (
    MASK_NAME,
    RESULT_NAME,
    REWIND_NAME,
    WEIGHTS_NAME,
    baseline_dir,
    check_settings,
    is_round_finished,
    load_round_masks,
    load_weights_into,
    read_round_result,
    round_dir,
    rounds_table,
    save_state,
    write_rounds_csv,
)
from sparsespikformer.model.pruning.masks import (
    PRUNING_SCOPES,
    MaskEnforcer,
    Masks,
    apply_masks_to_weights,
    check_masks_match,
    count_surviving,
    full_masks,
    magnitude_prune,
    prunable_parameters,
    random_prune,
    save_masks,
    weight_sparsity,
)
from sparsespikformer.model.training.checkpoint import (
    load_training_checkpoint,
)
from sparsespikformer.model.training.devices import Runtime
from sparsespikformer.model.training.distributed import (
    broadcast_tensors,
    current_shard,
    run_on_main,
)
from sparsespikformer.model.training.loop import (
    CHECKPOINT_NAME,
    LossFn,
    TrainConfig,
    steps_per_epoch,
    train,
)
from sparsespikformer.simulator.atomic import atomic_write_text
from sparsespikformer.simulator.errors import InputError

logger = logging.getLogger(__name__)

BASELINES = ("none", "reinit", "oneshot", "random")
REINIT_SEED_OFFSET = 7919     # a fresh initialisation that shares nothing with the ticket's
RANDOM_PRUNE_SEED_STRIDE = 1009

# build_model(seed) -> a freshly initialised model (same architecture every call)
ModelBuilder = Callable[[int], nn.Module]


@dataclass(frozen=True)
class LotteryConfig:
    rounds: int = 9               # 1 - 0.75^9 = 92.5% sparsity; 8 rounds give 89.99%
    rate: float = 0.25            # fraction of the surviving weights removed per round
    rewind_epoch: int = 1         # late rewinding target (20 at full CIFAR scale)
    scope: str = "global"         # 'global' or 'layer'
    baseline: str = "none"        # 'none' (IMP), 'reinit', 'oneshot', 'random'
    seed: int = 0                 # model initialisation; baselines derive theirs from it
    baseline_rounds: tuple[int, ...] | None = None   # rounds a reinit/random baseline trains
                                                      # (None: all of 1..rounds)

    def __post_init__(self) -> None:
        if self.rounds < 0:
            raise InputError(f"rounds must be >= 0, got {self.rounds}")
        if not 0.0 < self.rate < 1.0:
            raise InputError(f"rate must be in (0, 1), got {self.rate}")
        if self.scope not in PRUNING_SCOPES:
            raise InputError(f"scope must be one of {PRUNING_SCOPES}, got '{self.scope}'")
        if self.baseline not in BASELINES:
            raise InputError(f"baseline must be one of {BASELINES}, got '{self.baseline}'")
        if self.seed < 0:
            raise InputError(f"seed must be >= 0, got {self.seed}")
        if self.rewind_epoch < 0:
            raise InputError(f"rewind_epoch must be >= 0, got {self.rewind_epoch}")
        if self.baseline_rounds is not None:
            object.__setattr__(self, "baseline_rounds", tuple(self.baseline_rounds))
            bad = [k for k in self.baseline_rounds if not 1 <= k <= self.rounds]
            if bad:
                raise InputError(f"baseline_rounds must be in 1..{self.rounds}, got {bad}")

    def trained_baseline_rounds(self) -> tuple[int, ...]:
        if self.baseline_rounds is None:
            return tuple(range(1, self.rounds + 1))
        return tuple(sorted(set(self.baseline_rounds)))

    def sparsity_after(self, round_index: int) -> float:
        """Closed-form target: 1 - (1 - rate)^round."""
        return 1.0 - (1.0 - self.rate) ** round_index


@dataclass(frozen=True)
class LotteryTask:
    """Everything a round needs besides the lottery settings."""

    build_model: ModelBuilder
    train_set: Dataset
    test_set: Dataset
    train_config: TrainConfig
    initial_state: dict | None = None   # loaded before round 0 (e.g. a student from its teacher)
    loss_fn: LossFn | None = None       # None: training's default cross entropy
    progress: bool = True
    metadata: dict | None = None
    runtime: Runtime | None = None      # device, AMP, batch-norm sync (None: Runtime())
    # Round 0 (the dense model the ticket is drawn from) may train longer than the
    # retraining rounds; None: `train_config` for every round.
    dense_train_config: TrainConfig | None = None


def params_nonzero(model: nn.Module, masks: Masks) -> int:
    """Surviving prunable weights plus every parameter that is never pruned."""
    prunable = prunable_parameters(model)
    others = sum(p.numel() for name, p in model.named_parameters() if name not in prunable)
    return count_surviving(masks) + others


# ---------------------------------------------------------------- one training run


class _RewindCapture:
    """Saves the model's state dict once `rewind_epoch` epochs of steps are done."""

    def __init__(self, path: Path, capture_step: int, steps_done: int,
                 enforcer: MaskEnforcer | None) -> None:
        self.path = path
        self.capture_step = capture_step
        self.steps_done = steps_done
        self.enforcer = enforcer

    def after_optimizer_step(self, model: nn.Module) -> None:
        if self.enforcer is not None:
            self.enforcer.after_optimizer_step(model)
        self.steps_done += 1
        if self.steps_done == self.capture_step and current_shard().is_main:
            save_state(model.state_dict(), self.path)


def _steps_done(train_dir: Path) -> int:
    checkpoint = train_dir / CHECKPOINT_NAME
    return load_training_checkpoint(checkpoint)["step"] if checkpoint.is_file() else 0


def _train_masked(model: nn.Module, masks: Masks, task: LotteryTask, out: Path,
                  rewind_epoch: int | None) -> float:
    """Train with `masks` enforced; optionally capture rewind weights. Returns test accuracy."""
    check_masks_match(model, masks)
    apply_masks_to_weights(model, masks)
    enforcer = MaskEnforcer(masks)
    after_step = enforcer.after_optimizer_step
    train_dir = out / "train"
    if rewind_epoch is not None:
        rewind_path = out / REWIND_NAME
        if rewind_epoch == 0 and not rewind_path.is_file():
            run_on_main(save_state, model.state_dict(), rewind_path)
        spe = steps_per_epoch(len(task.train_set), task.train_config.batch_size)
        capture = _RewindCapture(rewind_path, rewind_epoch * spe, _steps_done(train_dir), enforcer)
        after_step = capture.after_optimizer_step
    history = train(model, task.train_set, task.test_set, task.train_config, train_dir,
                    progress=task.progress, loss_fn=task.loss_fn,
                    after_backward=enforcer.after_backward, after_optimizer_step=after_step,
                    metadata=task.metadata, runtime=task.runtime)
    if rewind_epoch is not None and not (out / REWIND_NAME).is_file():
        raise InputError(f"{out}: rewind weights of epoch {rewind_epoch} were not captured "
                         f"(is rewind_epoch <= epochs = {task.train_config.epochs}?)")
    return float(history["test_accuracy"].iloc[-1])


def _finish_round(out_dir: Path, round_index: int, model: nn.Module, masks: Masks,
                  accuracy: float, seconds: float, baseline: str, task: LotteryTask) -> dict:
    out = round_dir(out_dir, round_index)
    # test_samples: the n behind the accuracy, so reports can give its binomial interval
    result = {"round": round_index, "weight_sparsity": weight_sparsity(masks),
              "test_accuracy": accuracy, "params_nonzero": params_nonzero(model, masks),
              "seconds": seconds, "baseline": "imp" if baseline == "none" else baseline,
              "test_samples": len(task.test_set), "runtime": _runtime_record(model, task)}

    def write() -> None:
        save_masks(masks, out / MASK_NAME)
        save_state(model.state_dict(), out / WEIGHTS_NAME)
        atomic_write_text(out / RESULT_NAME, json.dumps(result, indent=2) + "\n")
        write_rounds_csv(out_dir)

    run_on_main(write)
    if not current_shard().is_main:
        return result
    logger.info("%s round %d: sparsity %.4f, test accuracy %.4f (%.0f s)", result["baseline"],
                round_index, result["weight_sparsity"], accuracy, seconds)
    return result


def _run_round(out_dir: Path, round_index: int, model: nn.Module, masks: Masks,
               task: LotteryTask, baseline: str, rewind_epoch: int | None = None) -> dict:
    """Train one round (resuming if interrupted) and write its files."""
    out = round_dir(out_dir, round_index)
    masks = broadcast_tensors(masks)     # rank 0 decides: every rank prunes alike
    run_on_main(save_masks, masks, out / MASK_NAME)
    started = time.perf_counter()
    accuracy = _train_masked(model, masks, task, out, rewind_epoch)
    return _finish_round(out_dir, round_index, model, masks, accuracy,
                         time.perf_counter() - started, baseline, task)


def _runtime_record(model: nn.Module, task: LotteryTask) -> dict:
    """What trained the round (world size, device type, AMP mode), for its result.json."""
    first = next(iter(model.parameters()), None)
    return {"world_size": current_shard().world_size,
            "device_type": "cpu" if first is None else first.device.type,
            "amp": (task.runtime or Runtime()).amp}


# ---------------------------------------------------------------- rounds


def _dense_round(out_dir: Path, config: LotteryConfig, task: LotteryTask) -> None:
    if is_round_finished(out_dir, 0):
        return
    if task.dense_train_config is not None:
        task = replace(task, train_config=task.dense_train_config)
    if config.rewind_epoch > task.train_config.epochs:
        raise InputError(f"rewind_epoch {config.rewind_epoch} is after the last epoch "
                         f"({task.train_config.epochs})")
    model = task.build_model(config.seed)
    if task.initial_state is not None:
        model.load_state_dict(task.initial_state, strict=True)
    _run_round(out_dir, 0, model, full_masks(model), task, "none",
               rewind_epoch=config.rewind_epoch)


def rewound_model(out_dir: Path, masks: Masks, config: LotteryConfig,
                  task: LotteryTask) -> nn.Module:
    """A model holding round 0's epoch-`rewind_epoch` weights, pruned by `masks`."""
    model = load_weights_into(task.build_model(config.seed), round_dir(out_dir, 0) / REWIND_NAME)
    check_masks_match(model, masks)
    apply_masks_to_weights(model, masks)
    return model


def trained_model(out_dir: Path, round_index: int, config: LotteryConfig,
                  task: LotteryTask) -> nn.Module:
    return load_weights_into(task.build_model(config.seed),
                         round_dir(out_dir, round_index) / WEIGHTS_NAME)


def _imp_rounds(out_dir: Path, config: LotteryConfig, task: LotteryTask) -> None:
    _dense_round(out_dir, config, task)
    for k in range(1, config.rounds + 1):
        if is_round_finished(out_dir, k):
            continue
        previous = trained_model(out_dir, k - 1, config, task)
        masks = magnitude_prune(previous, load_round_masks(round_dir(out_dir, k - 1) / MASK_NAME,
                                                      previous), config.rate, config.scope)
        _run_round(out_dir, k, rewound_model(out_dir, masks, config, task), masks, task, "none")


def _copy_dense_result(ticket_dir: Path, out_dir: Path, baseline: str) -> None:
    """A baseline's round 0 is the IMP run's dense model: same row, no retraining."""
    if is_round_finished(out_dir, 0):
        return
    result = dict(read_round_result(ticket_dir, 0), baseline=baseline)

    def write() -> None:
        atomic_write_text(round_dir(out_dir, 0) / RESULT_NAME,
                          json.dumps(result, indent=2) + "\n")
        write_rounds_csv(out_dir)

    run_on_main(write)


def _reinit_rounds(ticket_dir: Path, out_dir: Path, config: LotteryConfig,
                   task: LotteryTask) -> None:
    for k in config.trained_baseline_rounds():
        if is_round_finished(out_dir, k):
            continue
        model = task.build_model(config.seed + REINIT_SEED_OFFSET)
        masks = load_round_masks(round_dir(ticket_dir, k) / MASK_NAME, model)
        _run_round(out_dir, k, model, masks, task, "reinit")


def _oneshot_round(ticket_dir: Path, out_dir: Path, config: LotteryConfig,
                   task: LotteryTask) -> None:
    k = config.rounds
    if k == 0 or is_round_finished(out_dir, k):
        return
    dense = trained_model(ticket_dir, 0, config, task)
    masks = magnitude_prune(dense, full_masks(dense), config.sparsity_after(k), config.scope)
    _run_round(out_dir, k, rewound_model(ticket_dir, masks, config, task), masks, task,
               "oneshot")


def _random_rounds(ticket_dir: Path, out_dir: Path, config: LotteryConfig,
                   task: LotteryTask) -> None:
    masks = full_masks(task.build_model(config.seed))
    for k in range(1, config.rounds + 1):
        # the ladder is recomputed from round 1 so a resumed run draws the same masks
        masks = random_prune(masks, config.rate, seed=config.seed * RANDOM_PRUNE_SEED_STRIDE + k,
                             scope=config.scope)
        if is_round_finished(out_dir, k) or k not in config.trained_baseline_rounds():
            continue
        _run_round(out_dir, k, rewound_model(ticket_dir, masks, config, task), masks, task,
                   "random")


def run_lottery(config: LotteryConfig, task: LotteryTask, out_dir: str | Path) -> pd.DataFrame:
    """Run (or resume) IMP, or a baseline of it, in `out_dir`; returns its rounds table.

    A baseline first makes sure the IMP rounds it depends on exist in `out_dir`
    (round 0 for every baseline, all rounds for `reinit`), then writes its own
    rounds under `out_dir/baseline_<name>/`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_on_main(check_settings, out_dir, config, task)
    if config.baseline == "none":
        _imp_rounds(out_dir, config, task)
        return _rounds_table(out_dir)
    needed = config if config.baseline == "reinit" else LotteryConfig(
        rounds=0, rate=config.rate, rewind_epoch=config.rewind_epoch, scope=config.scope,
        seed=config.seed)
    _imp_rounds(out_dir, needed, task)
    own_dir = baseline_dir(out_dir, config.baseline)
    _copy_dense_result(out_dir, own_dir, config.baseline)
    if config.baseline == "reinit":
        _reinit_rounds(out_dir, own_dir, config, task)
    elif config.baseline == "oneshot":
        _oneshot_round(out_dir, own_dir, config, task)
    else:
        _random_rounds(out_dir, own_dir, config, task)
    return _rounds_table(own_dir)


def _rounds_table(out_dir: Path) -> pd.DataFrame:
    """rounds.csv rewritten by rank 0; every rank returns the table."""
    run_on_main(write_rounds_csv, out_dir)
    return rounds_table(out_dir)
