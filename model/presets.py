"""Named model presets: ``create_model("spikformer_4_384_cifar10")``.

Names read ``spikformer_<depth>_<embed dim>_<dataset>``. Heads follow the paper (12 for
D = 384 and 768, 8 for 256 and 512, 16 for the DVS models); T = 4 for static images, 16 for
event data. Other modules add presets (e.g. ``sparsespikformer_*`` with token selectors)
through `register_preset`, giving a config factory and, if the model is not a plain
`Spikformer`, a builder.

Parameter counts are exactly the reference architecture's without its unused LayerNorms
(e.g. Spikformer-4-256 has 4,155,178); the paper's table rounds some of these counts to two
decimals of a million and truncates others (4.15M, 5.76M, 16.81M, 29.68M are truncated,
36.01M and 66.34M rounded), see tests/model/test_presets.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from torch import nn

from .config import SpikformerConfig
from .spikformer import Spikformer

# Fields of SpikformerConfig that `create_model(name, **overrides)` may change.
BASE_OVERRIDES = (
    "depth", "embed_dim", "num_heads", "mlp_ratio", "timesteps", "num_classes", "in_channels",
    "img_size",
)


@dataclass(frozen=True)
class _Preset:
    config_factory: Callable[[], object]
    model_builder: Callable[[object], nn.Module]
    overrides: tuple[str, ...]


_REGISTRY: dict[str, _Preset] = {}


def register_preset(
    name: str,
    config_factory: Callable[[], object],
    model_builder: Callable[[object], nn.Module] | None = None,
    extra_overrides: Iterable[str] = (),
) -> None:
    """Adds a preset. `config_factory()` returns a config dataclass (a SpikformerConfig or a
    subclass / another dataclass with the override fields); `model_builder(config)` builds
    the model (default: `Spikformer`). `extra_overrides` names further config fields that
    `create_model` may override for this preset.
    """
    if name in _REGISTRY:
        raise ValueError(f"model preset {name!r} is already registered")
    _REGISTRY[name] = _Preset(
        config_factory=config_factory,
        model_builder=model_builder or Spikformer,
        overrides=BASE_OVERRIDES + tuple(extra_overrides),
    )


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def get_preset_config(name: str, **overrides):
    """The preset's config with `overrides` applied (validated by the config itself)."""
    preset = _lookup(name)
    unknown = sorted(set(overrides) - set(preset.overrides))
    if unknown:
        raise ValueError(
            f"model preset {name!r}: unknown override(s) {unknown}; valid: {list(preset.overrides)}"
        )
    config = preset.config_factory()
    return dataclasses.replace(config, **overrides) if overrides else config


def create_model(name: str, **overrides) -> nn.Module:
    """Builds preset `name` (see `list_models()`), optionally with config overrides."""
    preset = _lookup(name)
    return preset.model_builder(get_preset_config(name, **overrides))


def _lookup(name: str) -> _Preset:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model preset {name!r}; valid: {list_models()}")
    return _REGISTRY[name]


def _static(form: str, depth: int, dim: int, heads: int, classes: int, img_size: int):
    def factory() -> SpikformerConfig:
        return SpikformerConfig(
            form=form, img_size=img_size, in_channels=3, num_classes=classes, embed_dim=dim,
            num_heads=heads, depth=depth, timesteps=4,
        )

    return factory


def _dvs(classes: int):
    def factory() -> SpikformerConfig:
        return SpikformerConfig(
            form="dvs", img_size=128, in_channels=2, num_classes=classes, embed_dim=256,
            num_heads=16, depth=2, timesteps=16,
        )

    return factory


def _digits() -> SpikformerConfig:
    # scikit-learn digits (8x8, one channel) upscaled x2 to 16x16; a single max-pool after the
    # last SPS conv gives 8x8 = 64 tokens, one per original digit pixel. T=2 (not 4): half the
    # cost per epoch, so digits_recipe() reaches >= 95% in about a minute on 2 CPU cores
    # (T=4 needs ~2 minutes for the same accuracy; benchmarks/digits_training.py).
    return SpikformerConfig(
        form="cifar", img_size=16, in_channels=1, num_classes=10, embed_dim=64, num_heads=4,
        depth=4, timesteps=2, sps_pool_after=(3,),
    )


for _depth, _dim, _heads in ((4, 256, 8), (2, 384, 12), (4, 384, 12)):
    register_preset(
        f"spikformer_{_depth}_{_dim}_cifar10", _static("cifar", _depth, _dim, _heads, 10, 32)
    )
register_preset("spikformer_4_384_cifar100", _static("cifar", 4, 384, 12, 100, 32))
for _depth, _dim, _heads in ((8, 384, 12), (6, 512, 8), (8, 512, 8), (10, 512, 8), (8, 768, 12)):
    register_preset(
        f"spikformer_{_depth}_{_dim}_imagenet", _static("imagenet", _depth, _dim, _heads, 1000, 224)
    )
register_preset("spikformer_2_256_dvs128", _dvs(classes=11))  # DVS128 Gesture: 11 classes
register_preset("spikformer_2_256_cifar10dvs", _dvs(classes=10))
register_preset("spikformer_4_64_digits", _digits)

# SparseSpikformer presets (dense presets + token selectors) register themselves; imported
# last because they are built from the dense presets above.
from . import selector_presets  # noqa: E402,F401
