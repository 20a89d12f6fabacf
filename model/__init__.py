"""sparsespikformer.model: LIF neurons, Spikformer, presets, GFLOPs, checkpoints, ...

Names are imported lazily (first attribute access), so `import sparsespikformer.model` stays
cheap. To export a name, add one line to `_EXPORTS`: public name -> submodule.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "LIF": "lif",
    "lif_multistep": "lif",
    "Spikformer": "spikformer",
    "SpikformerConfig": "config",
    "create_model": "presets",
    "list_models": "presets",
    "get_preset_config": "presets",
    "register_preset": "presets",
    "gflops": "flops",
    "count_macs": "flops",
    "convert_reference_state_dict": "reference_checkpoint",
    "load_reference_checkpoint": "reference_checkpoint",
    "record_trace": "tracing",
    "layer_shapes": "tracing",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
