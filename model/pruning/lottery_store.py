"""The folder a lottery-ticket run writes: round folders, their files, the rounds table and the
settings a resumed run must match (as `analysis/sweeps/store.py` does for sweeps).

Layout of `out_dir` (every file written atomically):

    round_00/train/            the training run (checkpoint.pt, history.csv; resumable)
    round_00/rewind.pt         state dict at the end of epoch `rewind_epoch`
    round_XX/mask.pt           masks {weight name: bool tensor}
    round_XX/weights.pt        trained state dict (pruned weights exactly zero)
    round_XX/result.json       the round's metrics; written last = the round is finished
    rounds.csv                 one row per finished round
    settings.json              the settings that change results; a resumed run must match
    baseline_<name>/...        the same layout for a baseline
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch
from torch import nn

from sparsespikformer.model.pruning.masks import Masks, check_masks_match, load_masks
from sparsespikformer.model.training.checkpoint import (
    is_state_dict,
    load_checkpoint,
    require_keys,
)
from sparsespikformer.model.training.loop import SPEED_ONLY_FIELDS, TrainConfig
from sparsespikformer.model.training.weights import load_model_weights
from sparsespikformer.simulator.atomic import atomic_path, atomic_write_text
from sparsespikformer.simulator.errors import InputError

if TYPE_CHECKING:
    from sparsespikformer.model.pruning.lottery import LotteryConfig, LotteryTask

logger = logging.getLogger(__name__)

ROUNDS_COLUMNS = ("round", "weight_sparsity", "test_accuracy", "params_nonzero", "seconds",
                  "baseline")
OPTIONAL_COLUMN = "test_samples"  # the test images each accuracy was measured on
ROUNDS_NAME = "rounds.csv"
RESULT_NAME = "result.json"
MASK_NAME = "mask.pt"
WEIGHTS_NAME = "weights.pt"
REWIND_NAME = "rewind.pt"
SETTINGS_NAME = "settings.json"


def round_dir(out_dir: Path, round_index: int) -> Path:
    return Path(out_dir) / f"round_{round_index:02d}"


def baseline_dir(out_dir: Path, baseline: str) -> Path:
    return Path(out_dir) if baseline == "none" else Path(out_dir) / f"baseline_{baseline}"


def is_round_finished(out_dir: Path, round_index: int) -> bool:
    return (round_dir(out_dir, round_index) / RESULT_NAME).is_file()


def read_round_result(out_dir: Path, round_index: int) -> dict:
    return read_result_file(round_dir(out_dir, round_index) / RESULT_NAME)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err})") from err


def read_result_file(path: Path) -> dict:
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
    samples = result.get(OPTIONAL_COLUMN)  # absent in rounds written before it existed
    if samples is not None and (not isinstance(samples, int) or isinstance(samples, bool)
                                or samples < 1):
        raise InputError(f"{path}: '{OPTIONAL_COLUMN}' must be a positive integer, "
                         f"got {samples!r}")
    return result


def load_state(path: Path) -> dict:
    state = load_checkpoint(path)
    if not is_state_dict(state):
        raise InputError(f"{path}: expected a state dict of tensors")
    return state


def load_weights_into(model: nn.Module, path: Path) -> nn.Module:
    """`model` with the state dict in `path` loaded (strict); errors name the file."""
    load_model_weights(model, path)
    return model


def load_round_masks(path: Path, model: nn.Module) -> Masks:
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


def rounds_table(out_dir: Path) -> pd.DataFrame:
    """One row per finished round, from the rounds' result files."""
    rows = [read_result_file(p) for p in sorted(Path(out_dir).glob(f"round_*/{RESULT_NAME}"))]
    optional = [OPTIONAL_COLUMN] if any(OPTIONAL_COLUMN in row for row in rows) else []
    return pd.DataFrame(rows, columns=list(ROUNDS_COLUMNS) + optional)


def write_rounds_csv(out_dir: Path) -> pd.DataFrame:
    """Rebuild rounds.csv from the finished rounds' result files."""
    table = rounds_table(out_dir)
    atomic_write_text(Path(out_dir) / ROUNDS_NAME, table.to_csv(index=False))
    return table


def run_settings(config: LotteryConfig, task: LotteryTask) -> dict:
    """Everything besides `rounds` and the baseline that changes a run's results."""
    def train_fields(train_config: TrainConfig) -> dict:
        fields = dataclasses.asdict(train_config)
        if not train_config.augment.active:   # as settings.json had it before augmentation
            fields.pop("augment")
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
    current = run_settings(config, task)
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
