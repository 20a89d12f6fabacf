"""Training loop, schedule, checkpoints and resume."""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sparsespikformer.model.data import load_dataset
from sparsespikformer.model.data.base import DatasetInfo, InMemoryDataset
from sparsespikformer.model.training.checkpoint import (
    CHECKPOINT_FORMAT,
    load_checkpoint,
    load_training_checkpoint,
    save_checkpoint,
)
from sparsespikformer.model.training.loop import (
    TrainConfig,
    build_optimizer,
    evaluate,
    mixup,
    soft_cross_entropy,
    soft_targets,
    train,
)
from sparsespikformer.model.training.schedule import WarmupCosineSchedule
from sparsespikformer.model.training.weights import load_model_weights

# ---------------------------------------------------------------- helpers


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TinyNet(nn.Module):
    """Stand-in with a conv, batch norm (running stats), dropout (global RNG) and a head."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(4 * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:       # (B, 1, 16, 16)
        x = F.max_pool2d(torch.relu(self.bn(self.conv(x))), 4)   # (B, 4, 4, 4)
        return self.head(self.drop(x.flatten(1)))


def _subset(dataset, count: int) -> InMemoryDataset:
    images, labels = dataset.get_batch(torch.arange(count))
    return InMemoryDataset(images, labels, dataset.info)


@pytest.fixture(scope="module")
def digits_small():
    return (_subset(load_dataset("digits", "train"), 96),
            _subset(load_dataset("digits", "test"), 40))


def _model(seed: int) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet()


def _deterministic_columns(history: pd.DataFrame) -> pd.DataFrame:
    return history.drop(columns=["seconds"])


# ---------------------------------------------------------------- schedule, losses


def test_schedule_closed_form_points():
    schedule = WarmupCosineSchedule(base_lr=1e-3, min_lr=1e-5, warmup_steps=10, total_steps=110)
    assert schedule.lr_at(0) == pytest.approx(1e-5)
    assert schedule.lr_at(5) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))   # linear warm-up
    assert schedule.lr_at(10) == pytest.approx(1e-3)
    assert schedule.lr_at(60) == pytest.approx((1e-3 + 1e-5) / 2)          # cosine midpoint
    quarter = 1e-5 + (1e-3 - 1e-5) * (1 + math.cos(math.pi / 4)) / 2       # 1/4 of the cosine
    assert schedule.lr_at(35) == pytest.approx(quarter)
    assert schedule.lr_at(110) == pytest.approx(1e-5)
    lrs = [schedule.lr_at(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_schedule_rejects_bad_values():
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupCosineSchedule(base_lr=1e-3, min_lr=0, warmup_steps=20, total_steps=10)
    with pytest.raises(ValueError, match="min_lr"):
        WarmupCosineSchedule(base_lr=1e-3, min_lr=1e-2, warmup_steps=0, total_steps=10)


def test_soft_targets_match_torch_label_smoothing():
    torch.manual_seed(0)
    logits, labels = torch.randn(6, 5), torch.tensor([0, 4, 2, 2, 1, 3])
    targets = soft_targets(labels, 5, 0.1)
    torch.testing.assert_close(targets.sum(1), torch.ones(6))
    torch.testing.assert_close(soft_cross_entropy(logits, targets),
                               F.cross_entropy(logits, labels, label_smoothing=0.1))


def test_mixup_blends_with_partner():
    images = torch.arange(4.0).view(4, 1)
    targets = torch.eye(4)
    generator = torch.Generator().manual_seed(3)
    partner = torch.randperm(4, generator=torch.Generator().manual_seed(3))
    mixed, mixed_targets = mixup(images, targets, 0.7, generator)
    torch.testing.assert_close(mixed, 0.7 * images + 0.3 * images[partner])
    torch.testing.assert_close(mixed_targets, 0.7 * targets + 0.3 * targets[partner])


def test_weight_decay_skips_biases_and_norms():
    optimizer = build_optimizer(TinyNet(), TrainConfig(weight_decay=0.05))
    decayed = {p.ndim for g in optimizer.param_groups if g["weight_decay"] == 0.05
               for p in g["params"]}
    plain = [p for g in optimizer.param_groups if g["weight_decay"] == 0.0 for p in g["params"]]
    assert decayed == {2, 4} and len(plain) == 4      # conv+head biases, BN weight+bias


def test_train_config_validation():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="warmup_epochs"):
        TrainConfig(epochs=2, warmup_epochs=3)
    with pytest.raises(ValueError, match="label_smoothing"):
        TrainConfig(label_smoothing=1.0)


@pytest.mark.parametrize("field", ["lr", "weight_decay", "warmup_epochs", "min_lr",
                                   "label_smoothing", "mixup_alpha"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_train_config_rejects_non_finite_numbers(field, value):
    # nan passed every range check (mixup nan = off; lr nan blamed min_lr); inf trained to NaN
    with pytest.raises(ValueError, match=f"^{field} must be a finite number"):
        TrainConfig(**{field: value})


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_train_config_rejects_seeds_numpy_cannot_take(seed):
    with pytest.raises(ValueError, match="^seed must be in 0..4294967295"):
        TrainConfig(seed=seed)


# ---------------------------------------------------------------- evaluate


class _Oracle(nn.Module):
    """Predicts the class written in pixel 0, with confidence `scale`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.one_hot(x[:, 0, 0, 0].long(), 3).float() * 2.0


def test_evaluate_against_hand_counted_accuracy_and_loss():
    images = torch.zeros(5, 1, 2, 2)
    images[:, 0, 0, 0] = torch.tensor([0.0, 1, 2, 2, 0])
    labels = torch.tensor([0, 1, 2, 0, 1])                  # 3 right, 2 wrong
    info = DatasetInfo("toy", "test", 3, (1, 2, 2), ("a", "b", "c"), "memory")
    scores = evaluate(_Oracle(), InMemoryDataset(images, labels, info), batch_size=2)
    assert scores["accuracy"] == pytest.approx(3 / 5)
    right = -math.log(math.exp(2) / (math.exp(2) + 2))
    wrong = -math.log(1 / (math.exp(2) + 2))
    assert scores["loss"] == pytest.approx((3 * right + 2 * wrong) / 5)


# ---------------------------------------------------------------- train


def test_training_learns_digits(tmp_path):
    train_set, test_set = load_dataset("digits", "train"), load_dataset("digits", "test")
    config = TrainConfig(epochs=4, batch_size=32, lr=1e-2, warmup_epochs=0, seed=0)
    history = train(_model(0), train_set, test_set, config, tmp_path, progress=False)
    assert list(history["epoch"]) == [1, 2, 3, 4]
    assert history["test_accuracy"].iloc[-1] > 0.85        # chance is 0.10
    on_disk = pd.read_csv(tmp_path / "history.csv")
    pd.testing.assert_frame_equal(on_disk, history, check_exact=False, rtol=1e-9)


def test_same_seed_same_weights(tmp_path, digits_small):
    config = TrainConfig(epochs=2, batch_size=16, seed=5, mixup_alpha=0.4)
    runs = []
    for name in ("a", "b"):
        model = _model(1)
        history = train(model, *digits_small, config, tmp_path / name, progress=False)
        runs.append((model.state_dict(), _deterministic_columns(history)))
    for key, value in runs[0][0].items():
        assert torch.equal(value, runs[1][0][key]), key
    pd.testing.assert_frame_equal(runs[0][1], runs[1][1], check_exact=True)


class _Interrupt(Exception):
    pass


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, digits_small):
    config = TrainConfig(epochs=3, batch_size=16, warmup_epochs=1, seed=2, mixup_alpha=0.4)
    steps_per_epoch = 96 // 16

    straight = _model(7)
    straight_history = train(straight, *digits_small, config, tmp_path / "straight",
                             progress=False)

    calls = {"n": 0}

    def crash_in_epoch_two(model):
        calls["n"] += 1
        if calls["n"] == steps_per_epoch + 2:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(_model(7), *digits_small, config, tmp_path / "resumed", progress=False,
              after_optimizer_step=crash_in_epoch_two)
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["epoch"] == 1

    resumed = _model(123)                     # different init: everything must come from disk
    torch.manual_seed(999)                    # and the global RNG too
    resumed_history = train(resumed, *digits_small, config, tmp_path / "resumed",
                            progress=False)
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    pd.testing.assert_frame_equal(_deterministic_columns(straight_history),
                                  _deterministic_columns(resumed_history), check_exact=True)


def test_finished_run_is_not_trained_again(tmp_path, digits_small):
    config = TrainConfig(epochs=1, batch_size=32)
    first = train(_model(0), *digits_small, config, tmp_path, progress=False)
    steps = []
    again = train(_model(0), *digits_small, config, tmp_path, progress=False,
                  after_optimizer_step=lambda m: steps.append(1))
    assert steps == []
    pd.testing.assert_frame_equal(first, again)


def test_resume_refuses_changed_settings(tmp_path, digits_small):
    train(_model(0), *digits_small, TrainConfig(epochs=1, batch_size=32), tmp_path,
          progress=False)
    with pytest.raises(ValueError, match=r"checkpoint.pt was written with different .*lr"):
        train(_model(0), *digits_small, TrainConfig(epochs=2, batch_size=32, lr=1e-3),
              tmp_path, progress=False)


def test_resume_refuses_fewer_epochs_than_done(tmp_path, digits_small):
    config = TrainConfig(epochs=2, batch_size=32)
    train(_model(0), *digits_small, config, tmp_path, progress=False)
    with pytest.raises(ValueError, match="checkpoint.pt has 2 epochs done, more than epochs=1"):
        train(_model(0), *digits_small, dataclasses.replace(config, epochs=1), tmp_path,
              progress=False)


def test_hooks_run_every_step_and_can_hold_weights_at_zero(tmp_path, digits_small):
    counts = {"backward": 0, "step": 0, "loss": 0}
    mask = torch.ones_like(TinyNet().head.weight)
    mask[:, :8] = 0

    def after_backward(model):
        counts["backward"] += 1
        model.head.weight.grad.mul_(mask)

    def after_step(model):
        counts["step"] += 1
        with torch.no_grad():
            model.head.weight.mul_(mask)

    def loss_fn(model, images, targets, logits):
        counts["loss"] += 1
        assert targets.shape == (16, 10) and images.shape == (16, 1, 16, 16)
        return soft_cross_entropy(logits, targets)

    model = _model(0)
    train(model, *digits_small, TrainConfig(epochs=2, batch_size=16), tmp_path,
          progress=False, loss_fn=loss_fn, after_backward=after_backward,
          after_optimizer_step=after_step)
    assert counts == {"backward": 12, "step": 12, "loss": 12}
    assert torch.count_nonzero(model.head.weight[:, :8]) == 0
    assert torch.count_nonzero(model.head.weight[:, 8:]) > 0


def test_batch_larger_than_data_is_an_error(tmp_path, digits_small):
    with pytest.raises(ValueError, match="batch_size 500 is larger"):
        train(_model(0), *digits_small, TrainConfig(epochs=1, batch_size=500), tmp_path,
              progress=False)


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_weights_load_and_errors(tmp_path, digits_small):
    model = _model(0)
    train(model, *digits_small, TrainConfig(epochs=1, batch_size=32), tmp_path, progress=False,
          metadata={"preset": "tiny"})
    fresh = _model(1)
    state = load_model_weights(fresh, tmp_path / "checkpoint.pt")
    assert state["metadata"] == {"preset": "tiny"}
    for key, value in model.state_dict().items():
        assert torch.equal(value, fresh.state_dict()[key])

    save_checkpoint(tmp_path / "bare.pt", model.state_dict())          # bare state dict
    load_model_weights(_model(2), tmp_path / "bare.pt")

    with pytest.raises(ValueError, match="bare.pt: weights do not fit"):
        load_model_weights(TinyNet(num_classes=3), tmp_path / "bare.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="bad.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    assert not list(tmp_path.glob(".*.tmp"))                            # no half-written files


def _truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("write, message", [
    (lambda p: p.write_text("hello\n"), "not a readable checkpoint"),   # was KeyError: 101
    (lambda p: p.write_bytes(b""), "not a readable checkpoint"),
    (lambda p: p.write_bytes(bytes(range(256)) * 4), "not a readable checkpoint"),
    (_truncated, "not a readable checkpoint"),
    (lambda p: torch.save([1, 2], p), "expected a dict, got list"),
], ids=["text", "empty", "binary", "truncated", "list"])
def test_unreadable_checkpoint_is_a_value_error_naming_the_file(tmp_path, write, message):
    path = tmp_path / "bad.pt"
    save_checkpoint(path, {"w": torch.zeros(3)})
    write(path)
    with pytest.raises(ValueError, match=f"^{path}: {message}"):
        load_checkpoint(path)


@pytest.mark.parametrize("state, message", [
    ({"format": CHECKPOINT_FORMAT, "version": 1}, "missing key\\(s\\) 'model'"),
    ({"format": CHECKPOINT_FORMAT, "version": 1, "model": 5}, "'model' is not a state dict"),
    ({"format": CHECKPOINT_FORMAT, "version": 2, "model": {}}, "checkpoint version 2"),
    ({"w": torch.zeros(2), "step": 3}, "no model weights: neither a state dict nor a training"),
], ids=["no_model", "model_int", "version", "mixed"])
def test_malformed_checkpoint_is_a_value_error_naming_file_and_key(tmp_path, state, message):
    save_checkpoint(tmp_path / "c.pt", state)
    with pytest.raises(ValueError, match=f"c.pt: {message}"):
        load_model_weights(TinyNet(), tmp_path / "c.pt")


def test_training_checkpoint_checks_every_key(tmp_path, digits_small):
    train(_model(0), *digits_small, TrainConfig(epochs=1, batch_size=32), tmp_path,
          progress=False)
    state = load_training_checkpoint(tmp_path / "checkpoint.pt")
    del state["optimizer"]
    state["history"] = "x"
    save_checkpoint(tmp_path / "checkpoint.pt", state)
    with pytest.raises(ValueError, match="checkpoint.pt: missing key\\(s\\) 'optimizer'"):
        train(_model(0), *digits_small, TrainConfig(epochs=2, batch_size=32), tmp_path,
              progress=False)
    state["optimizer"] = {}
    save_checkpoint(tmp_path / "checkpoint.pt", state)
    with pytest.raises(ValueError, match="checkpoint.pt: 'history' is a str, expected list"):
        load_training_checkpoint(tmp_path / "checkpoint.pt")


# ---------------------------------------------------------------- recipes


def test_recipes_and_model_fitting():
    from sparsespikformer.model import get_preset_config
    from sparsespikformer.model.training.recipes import (
        digits_recipe,
        model_overrides_for,
        recipe_for,
    )

    assert recipe_for("spikformer_4_64_digits", "digits") == digits_recipe()
    assert recipe_for("spikformer_4_384_cifar10", "cifar10:/x") == TrainConfig()
    digits = get_preset_config("spikformer_4_64_digits")
    frames = DatasetInfo("frames", "train", 3, (5, 2, 16, 16), ("a", "b", "c"), "x")
    assert model_overrides_for(digits, frames) == {"num_classes": 3, "in_channels": 2,
                                                   "timesteps": 5}
    assert model_overrides_for(digits, load_dataset("digits", "test").info) == {}
    cifar = DatasetInfo("cifar10", "train", 10, (3, 32, 32), tuple("abcdefghij"), "x")
    assert model_overrides_for(digits, cifar) == {"in_channels": 3, "img_size": 32}
