"""Checkpoints: written atomically, read back with `torch.load(weights_only=True)`.

A training checkpoint is a dict of tensors and plain Python values only (no
pickled classes), so loading it cannot run code:

    {'format': 'sparsespikformer-train', 'version': 1,
     'model': state_dict, 'optimizer': state_dict, 'step': int, 'epoch': int,
     'torch_rng': ByteTensor, 'history': [ {column: float, ...}, ... ],
     'config': {TrainConfig fields}, 'metadata': {str: plain value}}

Files written by other code are read the same way, with exactly the known-safe globals
their containers need allowed (`SAFE_GLOBALS`); `weights_only` is never turned off. Putting
the weights in them into a model is `model/training/weights.py`'s job (`load_model_weights`).
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import torch

from sparsespikformer.model.training.checkpoint_layout import is_state_dict
from sparsespikformer.simulator.atomic import atomic_write_with
from sparsespikformer.simulator.errors import CheckpointError

CHECKPOINT_FORMAT = "sparsespikformer-train"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write `state` to `path`; a crash mid-write leaves the previous file intact."""
    atomic_write_with(path, lambda tmp: torch.save(state, tmp))


# Globals a checkpoint may pickle besides tensors and plain containers. timm's CheckpointSaver
# (the reference Spikformer's train.py) and the reference DVS train.py store the run's
# argparse.Namespace under 'args'; a Namespace only sets attributes, so it cannot run code.
SAFE_GLOBALS = (argparse.Namespace,)


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint safely (`torch.load(weights_only=True)` with `SAFE_GLOBALS`).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: unreadable, not a dict, or it pickles a global not in SAFE_GLOBALS
            (named, with what to do instead).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's own message suggests weights_only=False, which would run pickled code: no.
        raise CheckpointError(f"{path}: not a readable checkpoint "
                              f"({_refusal_reason(path)})") from err
    except OSError:
        raise
    except Exception as err:
        # Arbitrary bytes make torch's unpickler raise almost anything (KeyError for a text
        # file, IndexError, struct.error, ...): every one of them means "unreadable".
        raise CheckpointError(f"{path}: not a readable checkpoint ({_first_line(err)})") from err
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a dict, got {type(state).__name__}")
    return state


def _refusal_reason(path: Path) -> str:
    """Why torch.load(weights_only=True) refused `path`, naming the unsafe globals if any."""
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip checkpoint at all: nothing more to say
        unsafe = []
    if not unsafe:
        return ("torch.load with weights_only=True refused it: not a PyTorch file, or it "
                "pickles arbitrary objects")
    return (f"it pickles {', '.join(unsafe)}, which torch.load(weights_only=True) does not "
            f"load because unpickling it could run code; re-save the weights with "
            f"torch.save(model.state_dict(), PATH)")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def require_keys(state: dict, keys, path: str | Path) -> None:
    """Raise a ValueError naming `path` and every key of `keys` that `state` lacks."""
    missing = [key for key in keys if key not in state]
    if missing:
        raise CheckpointError(f"{path}: missing key(s) {', '.join(map(repr, missing))}")


# Every key a training checkpoint holds, and the type its value must have.
_TRAINING_KEYS = {"model": dict, "optimizer": dict, "step": int, "epoch": int,
                  "torch_rng": torch.Tensor, "history": list, "config": dict, "metadata": dict}


def check_training_checkpoint(state: dict, path: str | Path) -> dict:
    """`state` if it is a complete training checkpoint of this version, else a ValueError."""
    if not is_training_checkpoint(state):
        raise CheckpointError(f"{path}: not a training checkpoint (format is "
                         f"{state.get('format')!r}, expected {CHECKPOINT_FORMAT!r})")
    _check_version(state, path)
    require_keys(state, _TRAINING_KEYS, path)
    for key, kind in _TRAINING_KEYS.items():
        if not isinstance(state[key], kind) or isinstance(state[key], bool):
            raise CheckpointError(f"{path}: '{key}' is a {type(state[key]).__name__}, expected "
                             f"{kind.__name__}")
    if not is_state_dict(state["model"]):
        raise CheckpointError(f"{path}: 'model' is not a state dict of tensors")
    if not all(isinstance(row, dict) for row in state["history"]):
        raise CheckpointError(f"{path}: 'history' is not a list of dicts")
    return state


def load_training_checkpoint(path: str | Path) -> dict:
    """Read a training checkpoint written by `train()`; errors name the file and key."""
    return check_training_checkpoint(load_checkpoint(path), path)


def is_training_checkpoint(state: dict) -> bool:
    return state.get("format") == CHECKPOINT_FORMAT


def _check_version(state: dict, path: str | Path) -> None:
    version = state.get("version")
    if version != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {version!r}, this build reads "
                         f"{CHECKPOINT_VERSION}")


def own_model_state(state: dict, path: str | Path) -> dict:
    """The model's state dict inside one of this project's training checkpoints."""
    _check_version(state, path)
    require_keys(state, ["model"], path)
    if not is_state_dict(state["model"]):
        raise CheckpointError(f"{path}: 'model' is not a state dict of tensors")
    return state["model"]
