"""Load checkpoints saved by the reference Spikformer code (ZK-Zhou/spikformer).

Our modules carry the reference's names, so a reference state dict maps 1:1 once its
wrapping is removed and the entries of modules we do not build are dropped: the per-block
``norm1`` / ``norm2`` LayerNorms (defined, never called), and in the DVS model the unused
``pos_embed`` parameter and final ``norm`` LayerNorm.
"""

from __future__ import annotations

import argparse
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch

from sparsespikformer.simulator.errors import CheckpointError

_WRAPPER_KEYS = ("state_dict", "model")
_PARALLEL_PREFIX = "module."
_UNUSED_KEYS = re.compile(r"^(block\.\d+\.norm[12]\.(weight|bias)|pos_embed|norm\.(weight|bias))$")


def convert_reference_state_dict(checkpoint: Mapping) -> OrderedDict[str, torch.Tensor]:
    """A state dict that `Spikformer.load_state_dict(..., strict=True)` accepts.

    `checkpoint` is a reference state dict, optionally wrapped as {'state_dict': ...} or
    {'model': ...} (timm checkpoints), with or without DataParallel 'module.' prefixes.
    """
    state = _unwrap(checkpoint)
    converted: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"reference checkpoint: non-string key {key!r}")
        name = key[len(_PARALLEL_PREFIX):] if key.startswith(_PARALLEL_PREFIX) else key
        if _UNUSED_KEYS.match(name):
            continue
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"reference checkpoint: entry {key!r} is not a tensor")
        converted[name] = value
    if not converted:
        raise CheckpointError("reference checkpoint: no model weights found")
    return converted


def load_reference_checkpoint(path: str | Path) -> OrderedDict[str, torch.Tensor]:
    """Reads a reference checkpoint file (weights only) and converts it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reference checkpoint not found: {path}")
    # timm's checkpoint saver stores the argparse Namespace of the run next to the weights.
    with torch.serialization.safe_globals([argparse.Namespace]):
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"{path}: not a state dict or checkpoint dict")
    return convert_reference_state_dict(checkpoint)


def _unwrap(checkpoint: Mapping) -> Mapping:
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(
            f"reference checkpoint must be a mapping, got {type(checkpoint).__name__}")
    for key in _WRAPPER_KEYS:
        inner = checkpoint.get(key)
        if isinstance(inner, Mapping):
            return inner
    return checkpoint
