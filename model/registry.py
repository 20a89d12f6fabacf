"""The model preset registry: ``create_model("spikformer_4_384_cifar10")``.

One dict of named presets, a `register` decorator and `list_models(pattern)` with fnmatch
filters, in the manner of timm's ``_registry.py``. The bundled presets live in
`sparsespikformer.model.presets` (dense Spikformers) and
`sparsespikformer.model.sparse_presets` (with token selectors); both register here, and the
registry imports them on first lookup, so neither preset module imports the other's users.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from torch import nn

from sparsespikformer.simulator.errors import InputError

# Fields of SpikformerConfig that `create_model(name, **overrides)` may change.
BASE_OVERRIDES = (
    "depth", "embed_dim", "num_heads", "mlp_ratio", "timesteps", "num_classes", "in_channels",
    "img_size",
)
# Modules whose import registers the bundled presets (dense first: sparse ones extend them).
_BUNDLED_MODULES = ("sparsespikformer.model.presets", "sparsespikformer.model.sparse_presets")


@dataclass(frozen=True)
class Preset:
    """One registered preset: how to make its config, how to build it, what may change."""

    config_factory: Callable[[], object]
    model_builder: Callable[[object], nn.Module]
    overrides: tuple[str, ...]


_REGISTRY: dict[str, Preset] = {}


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

    Raises:
        ValueError: `name` is already registered.
    """
    if name in _REGISTRY:
        raise InputError(f"model preset {name!r} is already registered")
    if model_builder is None:
        from sparsespikformer.model.nn.spikformer import Spikformer
        model_builder = Spikformer
    _REGISTRY[name] = Preset(
        config_factory=config_factory,
        model_builder=model_builder,
        overrides=BASE_OVERRIDES + tuple(extra_overrides),
    )


def register(factory: Callable[[], object] | None = None, *,
             model_builder: Callable[[object], nn.Module] | None = None,
             extra_overrides: Iterable[str] = ()):
    """Decorator: registers a config factory under its function name.

    ``@register`` or ``@register(model_builder=..., extra_overrides=...)``; returns the
    factory unchanged.
    """
    def decorate(fn: Callable[[], object]) -> Callable[[], object]:
        register_preset(fn.__name__, fn, model_builder, extra_overrides)
        return fn

    return decorate(factory) if factory is not None else decorate


def _load_bundled() -> None:
    for module in _BUNDLED_MODULES:
        importlib.import_module(module)


def list_models(pattern: str | Iterable[str] = "*",
                exclude: str | Iterable[str] = ()) -> list[str]:
    """Registered preset names matching any of `pattern` and none of `exclude` (fnmatch
    wildcards, e.g. ``list_models("*_cifar10", exclude="sparse*")``), sorted."""
    _load_bundled()
    include = [pattern] if isinstance(pattern, str) else list(pattern)
    excluded = [exclude] if isinstance(exclude, str) else list(exclude)
    return sorted(
        name for name in _REGISTRY
        if any(fnmatch.fnmatchcase(name, p) for p in include)
        and not any(fnmatch.fnmatchcase(name, p) for p in excluded)
    )


def get_preset_config(name: str, **overrides):
    """The preset's config with `overrides` applied (validated by the config itself).

    Raises:
        ValueError: unknown preset or override name.
    """
    preset = _lookup(name)
    unknown = sorted(set(overrides) - set(preset.overrides))
    if unknown:
        raise InputError(
            f"model preset {name!r}: unknown override(s) {unknown}; valid: {list(preset.overrides)}"
        )
    config = preset.config_factory()
    return dataclasses.replace(config, **overrides) if overrides else config


def create_model(name: str, **overrides) -> nn.Module:
    """Builds preset `name` (see `list_models()`), optionally with config overrides."""
    preset = _lookup(name)
    return preset.model_builder(get_preset_config(name, **overrides))


def _lookup(name: str) -> Preset:
    _load_bundled()
    if name not in _REGISTRY:
        raise InputError(f"unknown model preset {name!r}; valid: {list_models()}")
    return _REGISTRY[name]
