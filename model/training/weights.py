"""The one checkpoint loader: any checkpoint the field writes, into a model, or a precise error.

Used by `eval`, `trace --checkpoint`, `train --teacher`, `prune --teacher`, the LTH round
store, the demo and the Python API (`load_reference_checkpoint`). Steps:

1. read the file safely (`checkpoint.load_checkpoint`: `weights_only=True`, the argparse
   Namespace of timm / reference checkpoints allowed);
2. find the state dict in its container (`checkpoint_layout.find_weights`; this project's
   own training checkpoints are checked for their format version);
3. remove wrapper prefixes found from the keys (`checkpoint_layout.wrapper_prefix`);
4. drop the reference code's entries of modules it defines but never calls
   (`reference_checkpoint.UNUSED_REFERENCE_KEYS`) when the model has no such entry;
5. compare with the model: missing and unexpected keys and shape mismatches, with the
   Spikformer each side is (`checkpoint_architecture`), in one `CheckpointError` line;
6. `load_state_dict(strict=True)`, whose in-place copy widens fp16 / bf16 weights to the
   model's float32 (never `assign=True`, which would keep the file's dtype).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sparsespikformer.model.reference_checkpoint import UNUSED_REFERENCE_KEYS
from sparsespikformer.model.training.checkpoint import (
    is_training_checkpoint,
    load_checkpoint,
    own_model_state,
)
from sparsespikformer.model.training.checkpoint_architecture import architecture_of
from sparsespikformer.model.training.checkpoint_layout import (
    describe_place,
    find_weights,
    is_ema_container,
    is_ema_prefix,
    no_ema_weights,
    under_prefix,
    without_interior_wrappers,
    wrapper_prefix,
)
from sparsespikformer.simulator.errors import CheckpointError

SHOWN_KEYS = 4   # keys named per list in an error; the rest are counted
# BatchNorm fills a missing counter itself (checkpoints older than PyTorch 0.4.1 lack it).
_OPTIONAL_SUFFIX = ".num_batches_tracked"


@dataclass(frozen=True)
class LoadedWeights:
    """Where the weights were in the file and what was done to fit them."""

    place: str                 # "['state_dict_ema']", or 'the file itself'
    prefix: str                # wrapper prefix removed from every key ('' if none)
    dropped: tuple[str, ...]   # reference entries of unused modules left out


def load_model_weights(model: nn.Module, path: str | Path, *, ema: bool = False,
                       model_label: str = "the model") -> dict:
    """Load the weights in the checkpoint at `path` into `model` (strict).

    `ema`: load the EMA copy (timm `state_dict_ema`, DeiT `model_ema`, ...). `model_label`
    names the model in errors (the CLI passes "--preset NAME"). Returns the whole
    checkpoint dict (metadata, epoch, args, ...).

    Raises:
        FileNotFoundError: no file at `path`.
        CheckpointError: unreadable, no weights, or they do not fit (one line that says why).
    """
    checkpoint = load_checkpoint(path)
    apply_model_weights(model, checkpoint, path, ema=ema, model_label=model_label)
    return checkpoint


def apply_model_weights(model: nn.Module, checkpoint: dict, path: str | Path, *,
                        ema: bool = False, model_label: str = "the model") -> LoadedWeights:
    """Load the weights in `checkpoint` (read from `path`) into `model`; see the module doc."""
    target = model.state_dict()
    state, loaded = model_weights_in(checkpoint, path, roots=_roots(target), ema=ema,
                                     keep=target.keys())
    _check_fit(state, target, path, model_label, loaded)
    model.load_state_dict(state, strict=True)
    return loaded


def model_weights_in(checkpoint: Mapping, path: str | Path, *, roots: set[str], ema: bool,
                     keep=()) -> tuple[dict[str, torch.Tensor], LoadedWeights]:
    """The model's state dict in `checkpoint`, unwrapped, without the reference's unused
    entries (except those named in `keep`). `roots`: the model's top-level names."""
    if is_training_checkpoint(checkpoint):
        if ema:
            raise no_ema_weights(checkpoint, path)
        state, where = own_model_state(checkpoint, path), ["model"]
    else:
        state, where = find_weights(checkpoint, path, ema=ema)
    state = without_interior_wrappers(state)
    ema_inside = ema and not is_ema_container(where)
    prefix = wrapper_prefix(state, roots, prefer_ema=ema_inside, path=path)
    if ema_inside and not is_ema_prefix(prefix):
        raise no_ema_weights(checkpoint, path)
    state = under_prefix(state, prefix)
    keep = set(keep)
    dropped = tuple(k for k in state if UNUSED_REFERENCE_KEYS.match(k) and k not in keep)
    state = {k: v for k, v in state.items() if k not in dropped}
    return state, LoadedWeights(describe_place(where), prefix, dropped)


def _roots(target: Mapping[str, torch.Tensor]) -> set[str]:
    return {key.split(".")[0] for key in target}


def _check_fit(state: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
               path: str | Path, model_label: str, loaded: LoadedWeights) -> None:
    missing = [k for k in target if k not in state and not k.endswith(_OPTIONAL_SUFFIX)]
    unexpected = [k for k in state if k not in target]
    mismatched = [k for k in state if k in target and state[k].shape != target[k].shape]
    if not (missing or unexpected or mismatched):
        return
    found = architecture_of(state)
    wanted = architecture_of(target)
    parts = []
    if found != wanted:
        parts.append(f"checkpoint is {found.name()}{found.details(wanted)}, {model_label} is "
                     f"{wanted.name()}{wanted.details(found)}")
    if missing:
        parts.append(f"{len(missing)} missing: {_listed(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected: {_listed(unexpected)}")
    if mismatched:
        shapes = [f"{k} checkpoint {_shape(state[k])} vs model {_shape(target[k])}"
                  for k in mismatched]
        parts.append(f"{len(mismatched)} of another shape: {_listed(shapes)}")
    origin = f"weights from {loaded.place}" + (
        f", wrapper prefix {loaded.prefix!r} removed" if loaded.prefix else "")
    raise CheckpointError(f"{path}: weights do not fit {model_label}: {'; '.join(parts)} "
                          f"({origin})")


def _listed(items: list[str]) -> str:
    """The first SHOWN_KEYS items whole, then how many more: never cut inside an item."""
    shown = ", ".join(items[:SHOWN_KEYS])
    rest = len(items) - SHOWN_KEYS
    return f"{shown} and {rest} more" if rest > 0 else shown


def _shape(tensor: torch.Tensor) -> str:
    return "(" + ", ".join(map(str, tensor.shape)) + ")"
