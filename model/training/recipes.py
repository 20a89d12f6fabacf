"""Training recipes, and fitting a preset to the data it is trained on.

`digits_recipe()` is the tuned CPU recipe for the `*_digits` presets (measured by
benchmarks/digits_training.py); the demo and the pruning stages reuse it.
Everything else starts from the Spikformer CIFAR recipe (TrainConfig defaults:
AdamW 5e-4, weight decay 0.06, cosine to 1e-5, label smoothing 0.1).
"""

from __future__ import annotations

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


def recipe_for(preset: str, data_spec: str) -> TrainConfig:
    """The digits recipe for a digits preset on the digits data, else the defaults."""
    if preset.endswith("_digits") and data_spec == "digits":
        return digits_recipe()
    return TrainConfig()


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
