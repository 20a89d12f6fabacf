"""Iterative magnitude pruning with late rewinding, its baselines, and resuming."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest
import torch
from pruning_fixtures import TINY_PRUNABLE, tiny_dataset, tiny_model, tiny_train_config

from sparsespikformer.model.pruning.lottery import (
    LotteryConfig,
    LotteryTask,
    check_settings,
    run_lottery,
)
from sparsespikformer.model.pruning.masks import load_masks, prunable_parameters
from sparsespikformer.model.training.checkpoint import load_checkpoint
from sparsespikformer.model.training.loop import default_loss, train


def _task(epochs: int = 1, loss_fn=None) -> LotteryTask:
    return LotteryTask(build_model=tiny_model, train_set=tiny_dataset("train"),
                       test_set=tiny_dataset("test"), train_config=tiny_train_config(epochs),
                       loss_fn=loss_fn, progress=False)


def _state(path):
    return torch.load(path, weights_only=True)


class _InterruptAt:
    """A loss that raises KeyboardInterrupt at its n-th call (1-based): a killed run."""

    def __init__(self, call: int) -> None:
        self.call, self.calls = call, 0

    def __call__(self, model, images, targets, logits):
        self.calls += 1
        if self.calls == self.call:
            raise KeyboardInterrupt
        return default_loss(model, images, targets, logits)


def test_sparsity_follows_closed_form_each_round(tmp_path):
    table = run_lottery(LotteryConfig(rounds=4, rewind_epoch=1), _task(), tmp_path)
    assert list(table["round"]) == [0, 1, 2, 3, 4]
    assert list(table.columns[:5]) == ["round", "weight_sparsity", "test_accuracy",
                                       "params_nonzero", "seconds"]
    on_disk = pd.read_csv(tmp_path / "rounds.csv")
    for k, row in on_disk.iterrows():
        closed_form = 1 - 0.75 ** k          # 0, 25.0, 43.75, 57.81, 68.36 %
        assert row["weight_sparsity"] == pytest.approx(closed_form, abs=k * 0.5 / TINY_PRUNABLE)
        weights = _state(tmp_path / f"round_{k:02d}" / "weights.pt")
        zeros = sum(int((weights[n] == 0).sum()) for n in ("0.weight", "4.weight"))
        assert zeros / TINY_PRUNABLE >= row["weight_sparsity"]
        non_prunable = 4 + 4 + 4 + 3                        # conv bias, BN weight/bias, head bias
        assert row["params_nonzero"] == round(TINY_PRUNABLE * (1 - row["weight_sparsity"])) \
            + non_prunable


def test_layerwise_scope_prunes_every_tensor_at_the_rate(tmp_path):
    run_lottery(LotteryConfig(rounds=2, scope="layer"), _task(), tmp_path)
    masks = load_masks(tmp_path / "round_02" / "mask.pt")
    assert int(masks["0.weight"].sum()) == 36 - 9 - 7       # 36 -> 27 -> 20
    assert int(masks["4.weight"].sum()) == 192 - 48 - 36    # 192 -> 144 -> 108


def test_rewind_weights_are_the_epoch_r_weights_and_survivors_restart_from_them(tmp_path):
    epochs, rewind_epoch = 3, 2
    first_forward = {}

    def record_first_round1_forward(model, images, targets, logits):
        # the loss of round 1's first step runs on the weights the round started from
        record_first_round1_forward.calls += 1
        if record_first_round1_forward.calls == epochs * 3 + 1:
            first_forward.update({n: p.detach().clone()
                                  for n, p in prunable_parameters(model).items()})
        return default_loss(model, images, targets, logits)

    record_first_round1_forward.calls = 0
    run_lottery(LotteryConfig(rounds=1, rewind_epoch=rewind_epoch),
                _task(epochs, record_first_round1_forward), tmp_path / "lth")
    # independent oracle: the same dense run, killed right after epoch 2's checkpoint
    oracle_dir = tmp_path / "oracle"
    with pytest.raises(KeyboardInterrupt):
        train(tiny_model(0), tiny_dataset("train"), tiny_dataset("test"),
              tiny_train_config(epochs), oracle_dir, progress=False,
              loss_fn=_InterruptAt(rewind_epoch * 3 + 1))
    oracle = load_checkpoint(oracle_dir / "checkpoint.pt")
    assert oracle["epoch"] == rewind_epoch
    rewind = _state(tmp_path / "lth" / "round_00" / "rewind.pt")
    assert set(rewind) == set(oracle["model"])
    for name, value in oracle["model"].items():
        assert torch.equal(rewind[name], value), name
    masks = load_masks(tmp_path / "lth" / "round_01" / "mask.pt")
    for name, mask in masks.items():
        assert torch.equal(first_forward[name][mask], rewind[name][mask])
        assert bool((first_forward[name][~mask] == 0).all())


def test_interrupted_run_resumes_at_last_finished_round_bit_identically(tmp_path):
    config = LotteryConfig(rounds=2, rewind_epoch=1)
    run_lottery(config, _task(epochs=2), tmp_path / "straight")
    # 6 steps per round; call 16 is in round 2's second epoch, after its first checkpoint
    with pytest.raises(KeyboardInterrupt):
        run_lottery(config, _task(epochs=2, loss_fn=_InterruptAt(16)), tmp_path / "killed")
    finished = json.loads((tmp_path / "killed" / "round_01" / "result.json").read_text())
    assert not (tmp_path / "killed" / "round_02" / "result.json").exists()
    checkpoint = load_checkpoint(tmp_path / "killed" / "round_02" / "train" / "checkpoint.pt")
    masks = load_masks(tmp_path / "killed" / "round_02" / "mask.pt")
    for name, mask in masks.items():
        assert bool((checkpoint["model"][name][~mask] == 0).all())
    run_lottery(config, _task(epochs=2), tmp_path / "killed")
    again = json.loads((tmp_path / "killed" / "round_01" / "result.json").read_text())
    assert again == finished                                      # round 1 not redone
    straight = pd.read_csv(tmp_path / "straight" / "rounds.csv")
    resumed = pd.read_csv(tmp_path / "killed" / "rounds.csv")
    pd.testing.assert_series_equal(straight["test_accuracy"], resumed["test_accuracy"])
    a = _state(tmp_path / "straight" / "round_02" / "weights.pt")
    b = _state(tmp_path / "killed" / "round_02" / "weights.pt")
    for name in a:
        assert torch.equal(a[name], b[name]), name
    for name, mask in masks.items():
        assert bool((b[name][~mask] == 0).all())


def test_baselines_share_the_budget_and_the_dense_round(tmp_path):
    task = _task()
    run_lottery(LotteryConfig(rounds=2, baseline="reinit"), task, tmp_path)
    run_lottery(LotteryConfig(rounds=2, baseline="oneshot"), task, tmp_path)
    run_lottery(LotteryConfig(rounds=2, baseline="random"), task, tmp_path)
    imp = pd.read_csv(tmp_path / "rounds.csv")
    assert list(imp["baseline"]) == ["imp"] * 3
    reinit = pd.read_csv(tmp_path / "baseline_reinit" / "rounds.csv")
    oneshot = pd.read_csv(tmp_path / "baseline_oneshot" / "rounds.csv")
    random = pd.read_csv(tmp_path / "baseline_random" / "rounds.csv")
    assert list(reinit["round"]) == [0, 1, 2] and list(random["round"]) == [0, 1, 2]
    assert list(oneshot["round"]) == [0, 2]
    for table in (reinit, oneshot, random):
        assert table["test_accuracy"].iloc[0] == imp["test_accuracy"].iloc[0]   # same dense
    assert oneshot["weight_sparsity"].iloc[-1] == pytest.approx(1 - 0.75 ** 2,
                                                                abs=0.5 / TINY_PRUNABLE)
    for k in (1, 2):
        imp_mask = load_masks(tmp_path / f"round_{k:02d}" / "mask.pt")
        reinit_mask = load_masks(tmp_path / "baseline_reinit" / f"round_{k:02d}" / "mask.pt")
        random_mask = load_masks(tmp_path / "baseline_random" / f"round_{k:02d}" / "mask.pt")
        assert all(torch.equal(imp_mask[n], reinit_mask[n]) for n in imp_mask)
        assert not all(torch.equal(imp_mask[n], random_mask[n]) for n in imp_mask)
        assert random["weight_sparsity"].iloc[k] == pytest.approx(imp["weight_sparsity"].iloc[k])
    # the re-initialised ticket did not start from the ticket's weights
    rewind = _state(tmp_path / "round_00" / "rewind.pt")
    reinit_start = tiny_model(0 + 7919).state_dict()
    assert not torch.equal(rewind["4.weight"], reinit_start["4.weight"])


def test_rewind_epoch_after_training_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="rewind_epoch"):
        run_lottery(LotteryConfig(rounds=1, rewind_epoch=5), _task(epochs=1), tmp_path)


def test_baseline_can_train_only_chosen_rounds(tmp_path):
    run_lottery(LotteryConfig(rounds=3, baseline="reinit", baseline_rounds=(3,)), _task(),
                tmp_path)
    reinit = pd.read_csv(tmp_path / "baseline_reinit" / "rounds.csv")
    assert list(reinit["round"]) == [0, 3]
    assert reinit["weight_sparsity"].iloc[-1] == pytest.approx(1 - 0.75 ** 3,
                                                               abs=1.5 / TINY_PRUNABLE)
    with pytest.raises(ValueError, match="baseline_rounds"):
        LotteryConfig(rounds=3, baseline="reinit", baseline_rounds=(4,))


def test_dense_round_can_train_longer_than_the_retraining_rounds(tmp_path):
    task = dataclasses.replace(_task(epochs=1), dense_train_config=tiny_train_config(3))
    run_lottery(LotteryConfig(rounds=1), task, tmp_path)
    epochs = {k: len(pd.read_csv(tmp_path / f"round_0{k}" / "train" / "history.csv"))
              for k in (0, 1)}
    assert epochs == {0: 3, 1: 1}


def test_resume_checks_the_recorded_settings(tmp_path, caplog):
    run_lottery(LotteryConfig(rounds=1), _task(), tmp_path)
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings["lottery"] == {"rate": 0.25, "scope": "global", "rewind_epoch": 1, "seed": 0}
    assert "num_threads" not in settings["train"]                 # speed only: may change
    with pytest.raises(ValueError, match=r"was written with different pruning settings "
                                         r"\(dense_train.lr: 0.01 -> 0.02, train.lr: 0.01 -> "):
        task = _task()
        run_lottery(LotteryConfig(rounds=1),
                    dataclasses.replace(task, train_config=dataclasses.replace(
                        task.train_config, lr=2e-2)), tmp_path)
    # a folder from before settings were recorded: resumed with a warning, then recorded
    (tmp_path / "settings.json").unlink()
    run_lottery(LotteryConfig(rounds=1), _task(), tmp_path)
    assert "recording the current settings without checking them" in caplog.text
    assert json.loads((tmp_path / "settings.json").read_text()) == settings


def test_settings_may_change_while_nothing_is_saved(tmp_path):
    """A first try that saved nothing (out of memory at the first step) binds nothing."""
    task = _task()
    check_settings(tmp_path, LotteryConfig(rounds=1), task)  # what a failed first try leaves
    (tmp_path / "round_00").mkdir()
    other = dataclasses.replace(task, train_config=dataclasses.replace(task.train_config,
                                                                       lr=2e-2))
    check_settings(tmp_path, LotteryConfig(rounds=1), other)
    saved = json.loads((tmp_path / "settings.json").read_text())
    assert saved["train"]["lr"] == 2e-2


def test_round_result_must_match_its_folder(tmp_path):
    run_lottery(LotteryConfig(rounds=1), _task(), tmp_path)
    result = json.loads((tmp_path / "round_01" / "result.json").read_text())
    (tmp_path / "round_01" / "result.json").write_text(json.dumps({**result, "round": 0}))
    with pytest.raises(ValueError, match="round_01/result.json: 'round' is 0, not the folder"):
        run_lottery(LotteryConfig(rounds=1), _task(), tmp_path)
    (tmp_path / "round_01" / "result.json").write_text(json.dumps({**result, "seconds": "x"}))
    with pytest.raises(ValueError, match="round_01/result.json: 'seconds' must be a number"):
        run_lottery(LotteryConfig(rounds=1), _task(), tmp_path)
