"""Checkpoints: written atomically, read back with `torch.load(weights_only=True)`.

A training checkpoint is a dict of tensors and plain Python values only (no
pickled classes), so loading it cannot run code:

    {'format': 'sparsespikformer-train', 'version': 1,
     'model': state_dict, 'optimizer': state_dict, 'step': int, 'epoch': int,
     'torch_rng': ByteTensor, 'history': [ {column: float, ...}, ... ],
     'config': {TrainConfig fields}, 'metadata': {str: plain value}}

`load_model_weights` also accepts a bare state dict, e.g. one converted from
the reference Spikformer code.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from sparsespikformer.simulator.atomic import atomic_write_with

CHECKPOINT_FORMAT = "sparsespikformer-train"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write `state` to `path`; a crash mid-write leaves the previous file intact."""
    atomic_write_with(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint safely; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's own message suggests weights_only=False, which would run pickled code: no.
        raise ValueError(f"{path}: not a readable checkpoint (torch.load with "
                         f"weights_only=True refused it: not a PyTorch file, or it pickles "
                         f"arbitrary objects)") from err
    except (zipfile.BadZipFile, RuntimeError, EOFError, ValueError, AttributeError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: not a readable checkpoint ({first_line})") from err
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a dict, got {type(state).__name__}")
    return state


def is_training_checkpoint(state: dict) -> bool:
    return state.get("format") == CHECKPOINT_FORMAT


def model_state_from(state: dict, path: str | Path) -> dict:
    """The model's state dict inside a training checkpoint, or `state` itself."""
    if is_training_checkpoint(state):
        version = state.get("version")
        if version != CHECKPOINT_VERSION:
            raise ValueError(f"{path}: checkpoint version {version}, this build reads "
                             f"{CHECKPOINT_VERSION}")
        return state["model"]
    if all(isinstance(v, torch.Tensor) for v in state.values()):
        return state
    raise ValueError(f"{path}: neither a training checkpoint nor a state dict")


def apply_model_weights(model: nn.Module, state: dict, path: str | Path) -> None:
    """Load the weights in `state` (read from `path`) into `model`, strictly."""
    try:
        model.load_state_dict(model_state_from(state, path), strict=True)
    except RuntimeError as err:
        summary = " ".join(str(err).split())[:300]
        raise ValueError(f"{path}: weights do not fit the model ({summary})") from err


def load_model_weights(model: nn.Module, path: str | Path) -> dict:
    """Load weights into `model` (strict); returns the whole checkpoint dict."""
    state = load_checkpoint(path)
    apply_model_weights(model, state, path)
    return state
