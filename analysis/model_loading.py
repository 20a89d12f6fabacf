"""Build the model a CLI command works on: a preset, optionally a checkpoint, and its data.

`train` records the preset, data spec and image size in a checkpoint's metadata, so
`eval` and `trace` need only `--checkpoint`; explicit arguments win.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LoadedModel:
    model: Any  # torch.nn.Module (torch is imported lazily)
    preset: str
    data: str
    img_size: int
    metadata: dict


def load_model_for_data(*, preset: str | None, checkpoint: str | None, data: str | None,
                        split: str, img_size: int | None = None):
    """The model (weights loaded if `checkpoint`) and the dataset split it runs on."""
    from sparsespikformer.model import create_model, get_preset_config
    from sparsespikformer.model.checkpoint import apply_model_weights, load_checkpoint
    from sparsespikformer.model.datasets import load_dataset
    from sparsespikformer.model.recipes import model_overrides_for

    state = load_checkpoint(checkpoint) if checkpoint else {}
    metadata = state.get("metadata", {}) if isinstance(state.get("metadata"), dict) else {}
    preset = preset or metadata.get("preset")
    if preset is None:
        raise ValueError(f"{checkpoint}: no preset recorded in the checkpoint; pass --preset")
    data = data or metadata.get("data", "digits")
    # The architecture the checkpoint was trained with, if it was trained as this preset.
    trained_as = dict(metadata.get("overrides", {})) if metadata.get("preset") == preset else {}
    preset_config = get_preset_config(preset, **trained_as)
    img_size = img_size or metadata.get("img_size") or preset_config.img_size
    dataset = load_dataset(data, split, img_size=img_size)
    model = create_model(preset, **{**trained_as,
                                    **model_overrides_for(preset_config, dataset.info)})
    if checkpoint:
        apply_model_weights(model, state, checkpoint)
    return LoadedModel(model, preset, data, img_size, metadata), dataset
