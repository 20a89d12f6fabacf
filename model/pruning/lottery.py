"""Lottery-ticket pruning: iterative magnitude pruning (IMP) with late rewinding.

Round 0 trains the dense model and keeps a copy of its weights at the end of
epoch `rewind_epoch` (late rewinding, Frankle et al. 2020; Kim et al. 2022 for
SNNs). Round k >= 1 removes a fraction `rate` of the weights that survived
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

Layout of `out_dir` (every file written atomically):

    round_00/train/            the training run (checkpoint.pt, history.csv; resumable)
    round_00/rewind.pt         state dict at the end of epoch `rewind_epoch`
    round_XX/mask.pt           masks {weight name: bool tensor}
    round_XX/weights.pt        trained state dict (pruned weights exactly zero)
    round_XX/result.json       the round's metrics; written last = the round is finished
    rounds.csv                 one row per finished round
    settings.json              the settings that change results; a resumed run must match
    baseline_<name>/...        the same layout for a baseline

An interrupted run started again skips every finished round and resumes the
unfinished one from its last training checkpoint. Only `rounds` (and which
baseline rounds train) may change between runs in one folder.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from torch import nn

from sparsespikformer.model.data import Dataset
from sparsespikformer.model.pruning.masks import (
    PRUNING_SCOPES,
    MaskEnforcer,
    Masks,
    apply_masks_to_weights,
    check_masks_match,
    count_surviving,
    full_masks,
    load_masks,
    magnitude_prune,
    prunable_parameters,
    random_prune,
    save_masks,
    weight_sparsity,
)
from sparsespikformer.model.training.checkpoint import (
    is_state_dict,
    load_checkpoint,
    load_model_weights,
    load_training_checkpoint,
    require_keys,
)
from sparsespikformer.model.training.loop import (
    CHECKPOINT_NAME,
    SPEED_ONLY_FIELDS,
    LossFn,
    TrainConfig,
    steps_per_epoch,
    train,
)
from sparsespikformer.simulator.atomic import atomic_path, atomic_write_text
from sparsespikformer.simulator.errors import InputError

logger = logging.getLogger(__name__)

BASELINES = ("none", "reinit", "oneshot", "random")
ROUNDS_COLUMNS = ("round", "weight_sparsity", "test_accuracy", "params_nonzero", "seconds",
                  "baseline")
ROUNDS_NAME = "rounds.csv"
RESULT_NAME = "result.json"
MASK_NAME = "mask.pt"
WEIGHTS_NAME = "weights.pt"
REWIND_NAME = "rewind.pt"
SETTINGS_NAME = "settings.json"
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
    # Round 0 (the dense model the ticket is drawn from) may train longer than the
    # retraining rounds; None: `train_config` for every round.
    dense_train_config: TrainConfig | None = None


def round_dir(out_dir: Path, round_index: int) -> Path:
    return Path(out_dir) / f"round_{round_index:02d}"


def baseline_dir(out_dir: Path, baseline: str) -> Path:
    return Path(out_dir) if baseline == "none" else Path(out_dir) / f"baseline_{baseline}"


def is_round_finished(out_dir: Path, round_index: int) -> bool:
    return (round_dir(out_dir, round_index) / RESULT_NAME).is_file()


def read_round_result(out_dir: Path, round_index: int) -> dict:
    return _read_result(round_dir(out_dir, round_index) / RESULT_NAME)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err})") from err


def _read_result(path: Path) -> dict:
    """A round's result.json, checked: a bad one would put wrong numbers in rounds.csv."""
    result = _read_json(path)
    if not isinstance(result, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(result).__name__}")
    require_keys(result, ROUNDS_COLUMNS, path)
    for key in ROUNDS_COLUMNS[:-1]:
        value = result[key]
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value)):
            raise InputError(f"{path}: '{key}' must be a number, got {value!r}")
    if not isinstance(result["baseline"], str):
        raise InputError(f"{path}: 'baseline' must be a string, got {result['baseline']!r}")
    if not isinstance(result["round"], int) or path.parent.name != f"round_{result['round']:02d}":
        raise InputError(f"{path}: 'round' is {result['round']!r}, not the folder's round")
    return result


def load_state(path: Path) -> dict:
    state = load_checkpoint(path)
    if not is_state_dict(state):
        raise InputError(f"{path}: expected a state dict of tensors")
    return state


def _load_weights(model: nn.Module, path: Path) -> nn.Module:
    """`model` with the state dict in `path` loaded (strict); errors name the file."""
    load_model_weights(model, path)
    return model


def _load_masks(path: Path, model: nn.Module) -> Masks:
    """The masks in `path`, checked against `model`'s prunable weights."""
    masks = load_masks(path)
    try:
        check_masks_match(model, masks)
    except InputError as err:
        raise InputError(f"{path}: {err}") from err
    return masks


def save_state(state: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save({k: v.detach().clone() for k, v in state.items()}, tmp)


def params_nonzero(model: nn.Module, masks: Masks) -> int:
    """Surviving prunable weights plus every parameter that is never pruned."""
    prunable = prunable_parameters(model)
    others = sum(p.numel() for name, p in model.named_parameters() if name not in prunable)
    return count_surviving(masks) + others


def write_rounds_csv(out_dir: Path) -> pd.DataFrame:
    """Rebuild rounds.csv from the finished rounds' result files."""
    out_dir = Path(out_dir)
    rows = [_read_result(p) for p in sorted(out_dir.glob(f"round_*/{RESULT_NAME}"))]
    table = pd.DataFrame(rows, columns=list(ROUNDS_COLUMNS))
    atomic_write_text(out_dir / ROUNDS_NAME, table.to_csv(index=False))
    return table


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
        if self.steps_done == self.capture_step:
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
            save_state(model.state_dict(), rewind_path)
        spe = steps_per_epoch(len(task.train_set), task.train_config.batch_size)
        capture = _RewindCapture(rewind_path, rewind_epoch * spe, _steps_done(train_dir), enforcer)
        after_step = capture.after_optimizer_step
    history = train(model, task.train_set, task.test_set, task.train_config, train_dir,
                    progress=task.progress, loss_fn=task.loss_fn,
                    after_backward=enforcer.after_backward, after_optimizer_step=after_step,
                    metadata=task.metadata)
    if rewind_epoch is not None and not (out / REWIND_NAME).is_file():
        raise InputError(f"{out}: rewind weights of epoch {rewind_epoch} were not captured "
                         f"(is rewind_epoch <= epochs = {task.train_config.epochs}?)")
    return float(history["test_accuracy"].iloc[-1])


def _finish_round(out_dir: Path, round_index: int, model: nn.Module, masks: Masks,
                  accuracy: float, seconds: float, baseline: str) -> dict:
    out = round_dir(out_dir, round_index)
    save_masks(masks, out / MASK_NAME)
    save_state(model.state_dict(), out / WEIGHTS_NAME)
    result = {"round": round_index, "weight_sparsity": weight_sparsity(masks),
              "test_accuracy": accuracy, "params_nonzero": params_nonzero(model, masks),
              "seconds": seconds, "baseline": "imp" if baseline == "none" else baseline}
    atomic_write_text(out / RESULT_NAME, json.dumps(result, indent=2) + "\n")
    write_rounds_csv(out_dir)
    logger.info("%s round %d: sparsity %.4f, test accuracy %.4f (%.0f s)", result["baseline"],
                round_index, result["weight_sparsity"], accuracy, seconds)
    return result


def _run_round(out_dir: Path, round_index: int, model: nn.Module, masks: Masks,
               task: LotteryTask, baseline: str, rewind_epoch: int | None = None) -> dict:
    """Train one round (resuming if interrupted) and write its files."""
    out = round_dir(out_dir, round_index)
    save_masks(masks, out / MASK_NAME)
    started = time.perf_counter()
    accuracy = _train_masked(model, masks, task, out, rewind_epoch)
    return _finish_round(out_dir, round_index, model, masks, accuracy,
                         time.perf_counter() - started, baseline)


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
    model = _load_weights(task.build_model(config.seed), round_dir(out_dir, 0) / REWIND_NAME)
    check_masks_match(model, masks)
    apply_masks_to_weights(model, masks)
    return model


def trained_model(out_dir: Path, round_index: int, config: LotteryConfig,
                  task: LotteryTask) -> nn.Module:
    return _load_weights(task.build_model(config.seed),
                         round_dir(out_dir, round_index) / WEIGHTS_NAME)


def _imp_rounds(out_dir: Path, config: LotteryConfig, task: LotteryTask) -> None:
    _dense_round(out_dir, config, task)
    for k in range(1, config.rounds + 1):
        if is_round_finished(out_dir, k):
            continue
        previous = trained_model(out_dir, k - 1, config, task)
        masks = magnitude_prune(previous, _load_masks(round_dir(out_dir, k - 1) / MASK_NAME,
                                                      previous), config.rate, config.scope)
        _run_round(out_dir, k, rewound_model(out_dir, masks, config, task), masks, task, "none")


def _copy_dense_result(ticket_dir: Path, out_dir: Path, baseline: str) -> None:
    """A baseline's round 0 is the IMP run's dense model: same row, no retraining."""
    if is_round_finished(out_dir, 0):
        return
    result = dict(read_round_result(ticket_dir, 0), baseline=baseline)
    atomic_write_text(round_dir(out_dir, 0) / RESULT_NAME, json.dumps(result, indent=2) + "\n")
    write_rounds_csv(out_dir)


def _reinit_rounds(ticket_dir: Path, out_dir: Path, config: LotteryConfig,
                   task: LotteryTask) -> None:
    for k in config.trained_baseline_rounds():
        if is_round_finished(out_dir, k):
            continue
        model = task.build_model(config.seed + REINIT_SEED_OFFSET)
        masks = _load_masks(round_dir(ticket_dir, k) / MASK_NAME, model)
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


def _settings(config: LotteryConfig, task: LotteryTask) -> dict:
    """Everything besides `rounds` and the baseline that changes a run's results."""
    def train_fields(train_config: TrainConfig) -> dict:
        fields = dataclasses.asdict(train_config)
        return {k: v for k, v in fields.items() if k not in SPEED_ONLY_FIELDS}

    settings = {
        "lottery": {"rate": config.rate, "scope": config.scope,
                    "rewind_epoch": config.rewind_epoch, "seed": config.seed},
        "train": train_fields(task.train_config),
        "dense_train": train_fields(task.dense_train_config or task.train_config),
        "metadata": task.metadata or {},
    }
    # A JSON round trip, so tuples compare equal to the lists read back.
    return json.loads(json.dumps(settings, default=str))


def _flatten(settings: dict) -> dict:
    return {f"{section}.{key}": value for section, fields in settings.items()
            if isinstance(fields, dict) for key, value in fields.items()}


def _has_saved_work(out_dir: Path) -> bool:
    """Whether any round result, weights or training checkpoint exists under `out_dir`."""
    return any(out_dir.rglob("*.pt")) or any(out_dir.rglob(RESULT_NAME))


def check_settings(out_dir: Path, config: LotteryConfig, task: LotteryTask) -> None:
    """Record the run's settings in `out_dir`, or check them against those recorded."""
    path = Path(out_dir) / SETTINGS_NAME
    current = _settings(config, task)
    if not path.is_file() or not _has_saved_work(Path(out_dir)):
        # Nothing saved yet (say, the first try ran out of memory): any settings may start.
        if any(Path(out_dir).glob(f"round_*/{RESULT_NAME}")):
            logger.warning("%s: no %s (written by an older version); recording the current "
                           "settings without checking them", out_dir, SETTINGS_NAME)
        atomic_write_text(path, json.dumps(current, indent=2) + "\n")
        return
    saved = _read_json(path)
    if not isinstance(saved, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(saved).__name__}")
    old, new = _flatten(saved), _flatten(current)
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if changed:
        details = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
        raise InputError(f"{out_dir} was written with different pruning settings ({details}); "
                         f"use a new output folder or the same settings")


def run_lottery(config: LotteryConfig, task: LotteryTask, out_dir: str | Path) -> pd.DataFrame:
    """Run (or resume) IMP, or a baseline of it, in `out_dir`; returns its rounds table.

    A baseline first makes sure the IMP rounds it depends on exist in `out_dir`
    (round 0 for every baseline, all rounds for `reinit`), then writes its own
    rounds under `out_dir/baseline_<name>/`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_settings(out_dir, config, task)
    if config.baseline == "none":
        _imp_rounds(out_dir, config, task)
        return write_rounds_csv(out_dir)
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
    return write_rounds_csv(own_dir)
