"""Training recipes, and fitting a preset to the data it is trained on.

`digits_recipe()` is the tuned CPU recipe for the `*_digits` presets (measured by
benchmarks/digits_training.py); the demo and the pruning stages reuse it.
Without `--recipe`, everything else starts from the TrainConfig defaults (the Spikformer
optimizer: AdamW 5e-4, weight decay 0.06, cosine to 1e-5, label smoothing 0.1).

The published recipes (`--recipe NAME`, `RECIPES`) carry docs/references.md's Spikformer CIFAR-10
figures: 300 epochs, batch 128, AdamW lr 5e-4, weight decay 6e-2, cosine to 1e-5 after 20
warm-up epochs, random crop with 4 pixels of padding, flips (the data set's), RandAugment
m9, random erasing 0.25, mixup 0.5 switched off after epoch 200, label smoothing 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sparsespikformer.model.data.augment import AugmentConfig
from sparsespikformer.model.data.base import DatasetInfo
from sparsespikformer.model.training.loop import TrainConfig
from sparsespikformer.simulator.errors import InputError

DIGITS_PRESET = "spikformer_4_64_digits"


def digits_recipe() -> TrainConfig:
    """Spikformer-4-64 (T=2) on the 16x16 digits: >= 95% test accuracy in about a minute
    on 2 idle CPU cores (benchmarks/digits_training.py).

    Short-schedule choices: batch 16 gives 89 steps per epoch on 1,437 images; the
    peak lr 1e-2 (vs 5e-4 in the 300-epoch CIFAR recipe) lets 6 epochs suffice, with
    half an epoch of warm-up. Mixup is off (a regulariser for long schedules, not tried here).
    Test accuracy by epoch, seed 0: 19, 64, 87, 96, 97, 97% (1 thread; 2 threads round
    differently and give a slightly different path to about the same end).
    """
    return TrainConfig(epochs=6, batch_size=16, lr=1e-2, weight_decay=6e-2, warmup_epochs=0.5,
                       min_lr=1e-5, label_smoothing=0.1, mixup_alpha=0.0, seed=0)


def recipe_for(preset: str, data_spec: str, recipe: str | None = None) -> TrainConfig:
    """The named recipe's training settings; without one, the digits recipe for a digits
    preset on the digits data, else the TrainConfig defaults."""
    if recipe is not None:
        return get_recipe(recipe).train
    if preset.endswith("_digits") and data_spec == "digits":
        return digits_recipe()
    return TrainConfig()


@dataclass(frozen=True)
class Recipe:
    """A published training setting: the training run, and for pruning its LTH rounds."""

    description: str
    train: TrainConfig
    # `prune` defaults (LotteryConfig fields: rounds, rate, rewind_epoch); flags win
    lottery: dict = field(default_factory=dict)


# Spikformer CIFAR-10 (docs/references.md; the reference code's cifar10.yml: timm's
# rand-m9-n1-mstd0.4-inc1, reprob 0.25 with remode const, mixup 0.5 off at 200, cutmix 0).
_SPIKFORMER_CIFAR = TrainConfig(
    epochs=300, batch_size=128, lr=5e-4, weight_decay=6e-2, warmup_epochs=20, min_lr=1e-5,
    label_smoothing=0.1, mixup_alpha=0.5, mixup_off_epoch=200,
    augment=AugmentConfig(crop_padding=4, randaugment_ops=1, randaugment_magnitude=9,
                          erase_prob=0.25))

RECIPES: dict[str, Recipe] = {
    "spikformer_cifar10": Recipe(
        "Spikformer on CIFAR-10/100 (Zhou et al. 2023): 300 epochs, batch 128, AdamW 5e-4, "
        "wd 0.06, 20 warm-up epochs, crop+flip+RandAugment m9+erasing 0.25, mixup 0.5 "
        "until epoch 200, label smoothing 0.1", _SPIKFORMER_CIFAR),
    # docs/references.md has no separate ImageNet figures: the same optimizer and schedule. The
    # reference code's imagenet.yml crops nothing (scale 1.0: the whole image, resized) and
    # runs timm's rand-m9-mstd0.5-inc1, i.e. two RandAugment operations.
    "spikformer_imagenet": Recipe(
        "Spikformer on ImageNet-style folders: the CIFAR figures, no crop (whole image "
        "resized), RandAugment n2 m9", replace(
            _SPIKFORMER_CIFAR, augment=AugmentConfig(crop_padding=0, randaugment_ops=2,
                                                     randaugment_magnitude=9, erase_prob=0.25))),
    # SparseSpikformer (docs/references.md): batch 64; LTH 25 % of the survivors per round, up to
    # 15 rounds, global, late rewinding to epoch 20; the selector loss CE + 2.0 ratio MSE +
    # 0.5 KL is SelectorLossConfig's default.
    "sparsespikformer_cifar10": Recipe(
        "SparseSpikformer on CIFAR-10: the Spikformer recipe at batch 64; prune: 15 IMP "
        "rounds of 25 %, rewinding to epoch 20",
        replace(_SPIKFORMER_CIFAR, batch_size=64),
        lottery={"rounds": 15, "rate": 0.25, "rewind_epoch": 20}),
    "digits": Recipe("the tuned CPU recipe of the *_digits presets (6 epochs, about a minute)",
                     digits_recipe()),
}


def with_changes(base: TrainConfig, changes: dict) -> TrainConfig:
    """`base` with the fields in `changes` replaced. A shorter run than the recipe's warm-up
    (say `--recipe spikformer_cifar10 --epochs 5`) warms up over all of it, unless the
    warm-up is among the changes."""
    if "epochs" in changes and "warmup_epochs" not in changes:
        changes = {**changes, "warmup_epochs": min(base.warmup_epochs, changes["epochs"])}
    return replace(base, **changes)


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise InputError(f"--recipe {name!r}: unknown; expected one of "
                         f"{', '.join(sorted(RECIPES))}")
    return RECIPES[name]


def model_overrides_for(preset_config, info: DatasetInfo) -> dict[str, int]:
    """Overrides for `create_model(preset, **overrides)` so the model fits the data:
    class count, input channels, image size and (for frame data) timesteps.
    Only values that differ from the preset are returned."""
    if len(info.input_shape) == 4:                  # frames: (T, C, H, W)
        timesteps, channels, height, width = info.input_shape
    else:                                           # images: (C, H, W)
        timesteps = preset_config.timesteps
        channels, height, width = info.input_shape
    if height != width:
        raise InputError(f"{info.source}: inputs are {height}x{width}; the model needs square "
                         f"inputs (pass an image size to resize them)")
    wanted = {"num_classes": info.num_classes, "in_channels": channels, "img_size": height,
              "timesteps": timesteps}
    return {key: value for key, value in wanted.items()
            if getattr(preset_config, key) != value}
