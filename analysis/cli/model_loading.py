"""Build the model a CLI command works on: a preset, optionally a checkpoint, and its data.

`train` records the preset, data spec and image size in a checkpoint's metadata, so
`eval` and `trace` need only `--checkpoint`; explicit arguments win. Any other checkpoint
(the reference code's timm checkpoints, DataParallel / EMA / compiled-model state dicts, ...)
goes through the same loader (`model/training/weights.py`) and needs `--preset`; without it
the error names the presets whose architecture the weights have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sparsespikformer.simulator.errors import InputError


@dataclass(frozen=True)
class LoadedModel:
    model: Any  # torch.nn.Module (torch is imported lazily)
    preset: str
    data: str
    img_size: int
    metadata: dict


def load_model_for_data(*, preset: str | None, checkpoint: str | None, data: str | None,
                        split: str, img_size: int | None = None, ema: bool = False):
    """The model (weights loaded if `checkpoint`; its EMA copy if `ema`) and the dataset
    split it runs on."""
    from sparsespikformer.model import create_model, get_preset_config
    from sparsespikformer.model.data import load_dataset
    from sparsespikformer.model.training.checkpoint import is_training_checkpoint, load_checkpoint
    from sparsespikformer.model.training.recipes import model_overrides_for
    from sparsespikformer.model.training.weights import apply_model_weights

    if ema and not checkpoint:
        raise InputError("--ema needs --checkpoint")
    state = load_checkpoint(checkpoint) if checkpoint else {}
    metadata = _checked_metadata(state, checkpoint) if is_training_checkpoint(state) else {}
    preset = preset or metadata.get("preset")
    if preset is None:
        raise InputError(f"{checkpoint}: no preset recorded in the checkpoint; pass --preset"
                         f"{_matching_presets(state, checkpoint, ema)}")
    data = data or metadata.get("data", "digits")
    # The architecture the checkpoint was trained with, if it was trained as this preset.
    trained_as = dict(metadata.get("overrides", {})) if metadata.get("preset") == preset else {}
    try:
        preset_config = get_preset_config(preset, **trained_as)
    except InputError as err:
        if not trained_as:
            raise
        raise InputError(f"{checkpoint}: 'metadata.overrides' do not fit ({err})") from err
    img_size = img_size or metadata.get("img_size") or preset_config.img_size
    dataset = load_dataset(data, split, img_size=img_size)
    model = create_model(preset, **{**trained_as,
                                    **model_overrides_for(preset_config, dataset.info)})
    if checkpoint:
        apply_model_weights(model, state, checkpoint, ema=ema, model_label=f"--preset {preset}")
    return LoadedModel(model, preset, data, img_size, metadata), dataset


def _matching_presets(state: dict, checkpoint: str | None, ema: bool) -> str:
    """' (checkpoint is spikformer 4-384 CIFAR form; presets of that form and size: ...)'."""
    import torch

    from sparsespikformer.model import create_model, list_models
    from sparsespikformer.model.reference_checkpoint import SPIKFORMER_ROOTS
    from sparsespikformer.model.training.checkpoint_architecture import architecture_of
    from sparsespikformer.model.training.weights import model_weights_in

    weights, _ = model_weights_in(state, checkpoint, roots=set(SPIKFORMER_ROOTS), ema=ema)
    found = architecture_of(weights)
    if found.form is None:
        return f" (checkpoint is {found.name()})"
    with torch.device("meta"):   # shapes only: no memory, no initialisation
        bundled = {name: architecture_of(create_model(name).state_dict())
                   for name in list_models()}
    # the same in every respect (classes, channels, selectors), else the same form and size
    matching = ([n for n, arch in bundled.items() if arch == found]
                or [n for n, arch in bundled.items() if arch.name() == found.name()])
    presets = ", ".join(matching) if matching else "none bundled"
    return f" (checkpoint is {found.name()}; matching presets: {presets})"


# What `train` records in a checkpoint's metadata, and the type each value must have.
_METADATA_TYPES = {"preset": str, "data": str, "img_size": int, "overrides": dict}


def _checked_metadata(state: dict, checkpoint: str | None) -> dict:
    """The checkpoint's metadata (empty if none); a wrong type would crash the model build."""
    metadata = state.get("metadata", {})
    if not isinstance(metadata, dict):
        raise InputError(f"{checkpoint}: 'metadata' is a {type(metadata).__name__}, "
                         f"expected dict")
    for key, kind in _METADATA_TYPES.items():
        value = metadata.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise InputError(f"{checkpoint}: 'metadata.{key}' is {value!r}, expected "
                             f"{kind.__name__}")
    if metadata.get("img_size") is not None and metadata["img_size"] < 1:
        raise InputError(f"{checkpoint}: 'metadata.img_size' is {metadata['img_size']}, "
                         f"expected a positive integer")
    return metadata
