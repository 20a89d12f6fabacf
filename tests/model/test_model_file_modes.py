"""The model's writers follow the umask like every other output (field case 13's kind):
a lottery-ticket run (round folders, masks, weights, rewind weights, result.json,
rounds.csv, settings.json, each round's training checkpoint and history) and
`save_checkpoint` / `save_masks` on their own, under umask 022 and 077."""

from __future__ import annotations

import pytest
import torch
from file_modes import UMASKS, assert_umask_modes, umask
from pruning_fixtures import tiny_dataset, tiny_model, tiny_train_config

from sparsespikformer.model.pruning.lottery import LotteryConfig, LotteryTask, run_lottery
from sparsespikformer.model.pruning.masks import save_masks
from sparsespikformer.model.training.checkpoint import save_checkpoint


@pytest.mark.parametrize("mask", UMASKS)
def test_lottery_rounds_checkpoints_and_history(tmp_path, mask):
    task = LotteryTask(build_model=tiny_model, train_set=tiny_dataset("train"),
                       test_set=tiny_dataset("test"), train_config=tiny_train_config(1),
                       progress=False)
    with umask(mask):
        run_lottery(LotteryConfig(rounds=1, rewind_epoch=1), task, tmp_path / "lth")
    written = {p.name for p in (tmp_path / "lth").rglob("*")}
    assert {"mask.pt", "weights.pt", "rewind.pt", "result.json", "rounds.csv",
            "checkpoint.pt", "history.csv"} <= written
    assert_umask_modes(tmp_path / "lth", mask)


@pytest.mark.parametrize("mask", UMASKS)
def test_checkpoint_and_mask_files(tmp_path, mask):
    with umask(mask):
        save_checkpoint(tmp_path / "out" / "ckpt" / "checkpoint.pt", {"model": {}})
        save_masks({"w": torch.ones(2, 2, dtype=torch.bool)}, tmp_path / "out" / "m" / "mask.pt")
    assert_umask_modes(tmp_path / "out", mask)
