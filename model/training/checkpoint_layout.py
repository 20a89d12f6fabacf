"""Where a checkpoint keeps the model's weights, and under which names.

Checkpoints in the field nest the state dict in a container and prefix its keys with the
names of the wrappers the model was trained in. Both are undone here, for any nn.Module.

Containers (the first key found holds the weights; `ema=True` looks at the EMA keys):

    model               this project's checkpoints, the reference DVS train.py, DeiT main.py
    state_dict          timm CheckpointSaver (the reference CIFAR / ImageNet train.py), Lightning
    model_state_dict    the PyTorch tutorial "Saving and loading a general checkpoint"
    model_state, module, net, network    other training scripts
    state_dict_ema      timm CheckpointSaver with --model-ema
    model_ema           DeiT main.py (timm ModelEma)
    ema_state_dict      MMEngine EMAHook
    ema, ema_model      other training scripts

Wrapper prefixes, in any number, combination and order:

    module.                torch.nn.DataParallel and DistributedDataParallel; timm ModelEmaV2 /
                           ModelEmaV3 and torch.optim.swa_utils.AveragedModel (self.module =
                           deepcopy(model)); MMEngine's averaged models
    _orig_mod.             torch.compile's OptimizedModule
    model. (or any name)   a LightningModule holding the network as self.model
    ema.                   timm ModelEma (v1) keeps its copy as .ema; modules holding an EMA
    _checkpoint_wrapped_module., _fsdp_wrapped_module.
                           torch.distributed's activation-checkpoint and FSDP wrappers, which
                           may sit anywhere inside a key, not only in front

Rather than trusting a fixed list, the prefix is found from the keys: it is whatever stands
before the first name the model itself has at its top level (`patch_embed`, `block`, `head`,
... for a Spikformer). Keys outside that prefix belong to the wrapper (AveragedModel's
`n_averaged`, a Lightning module's loss or metrics, a second model copy) and are left out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping

import torch

from sparsespikformer.simulator.errors import CheckpointError

WEIGHT_KEYS = ("model", "state_dict", "model_state_dict", "model_state", "module", "net",
               "network")
EMA_WEIGHT_KEYS = ("state_dict_ema", "model_ema", "ema_state_dict", "ema", "ema_model")
# Wrapper segments that may stand anywhere in a key (torch.distributed wrappers).
INTERIOR_WRAPPERS = ("_checkpoint_wrapped_module.", "_fsdp_wrapped_module.")
# A prefix segment naming an EMA / averaged copy: 'ema', 'model_ema', 'ema_model', 'swa', ...
_EMA_SEGMENT = re.compile(r"(^|_)(ema|swa|averaged)($|_)")
_NESTING_LIMIT = 4  # {'state_dict': {'model': ...}} and the like; deeper is not a checkpoint


def is_state_dict(value) -> bool:
    """A dict of tensors keyed by parameter names (may be empty)."""
    return isinstance(value, Mapping) and all(isinstance(k, str) and torch.is_tensor(v)
                                              for k, v in value.items())


def find_weights(checkpoint: Mapping, path, *, ema: bool = False
                 ) -> tuple[Mapping, list[str]]:
    """The state dict inside `checkpoint`, and the container keys that led to it.

    `ema`: start from an EMA container key if the file has one (else the prefix vote of
    `wrapper_prefix` has to find an EMA copy among the keys).

    Raises:
        CheckpointError: no state dict found; names the keys the file has.
    """
    where: list[str] = []
    current = checkpoint
    if ema:
        key = _container_key(current, EMA_WEIGHT_KEYS)
        if key is not None:
            where.append(key)
            current = current[key]
    for _ in range(_NESTING_LIMIT):
        if is_state_dict(current):
            return current, where
        key = _container_key(current, WEIGHT_KEYS)
        if key is None:
            break
        where.append(key)
        current = current[key]
    raise CheckpointError(f"{path}: {_no_weights_reason(checkpoint, current, where)}")


def is_ema_container(where: list[str]) -> bool:
    return bool(where) and where[0] in EMA_WEIGHT_KEYS


def describe_place(where: list[str]) -> str:
    """"['state_dict_ema']" for the keys that led to the weights; 'the file itself' if none."""
    return "".join(f"[{key!r}]" for key in where) if where else "the file itself"


def _container_key(container: Mapping, names: tuple[str, ...]) -> str | None:
    for key in names:
        if isinstance(container.get(key), Mapping) and container[key]:
            return key
    return None


def _no_weights_reason(checkpoint: Mapping, current, where: list[str]) -> str:
    if where and isinstance(current, Mapping):
        bad = [k for k, v in current.items() if not torch.is_tensor(v)][:3]
        return (f"{describe_place(where)} is not a state dict of tensors (non-tensor entries: "
                f"{', '.join(map(repr, bad))})")
    return (f"no model weights: neither a state dict nor a training checkpoint (looked for "
            f"{', '.join(map(repr, WEIGHT_KEYS))}; the file has {_keys_text(checkpoint)})")


def no_ema_weights(checkpoint: Mapping, path) -> CheckpointError:
    """The error for --ema on a file without an EMA copy."""
    return CheckpointError(
        f"{path}: no EMA weights (no {', '.join(map(repr, EMA_WEIGHT_KEYS))} and no EMA copy "
        f"among the keys; the file has {_keys_text(checkpoint)}); drop --ema to load its "
        f"main weights")


def _keys_text(container: Mapping, limit: int = 6) -> str:
    keys = [repr(k) for k in container]
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"keys {', '.join(keys[:limit])}{more}" if keys else "no keys"


def without_interior_wrappers(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` with every activation-checkpoint / FSDP wrapper segment removed from its keys."""
    out = {}
    for key, value in state.items():
        for segment in INTERIOR_WRAPPERS:
            key = key.replace(segment, "")
        out[key] = value
    return out


def wrapper_prefix(keys: Iterable[str], roots: set[str], *, prefer_ema: bool, path) -> str:
    """The prefix the model's own keys stand under ('' if none).

    `roots` are the top-level names of the model's keys. Each key that reaches one of them
    votes for the text before it; the prefix with most votes wins. Two copies of the model
    in one file (e.g. 'model.' and 'ema.module.' in a Lightning module with an EMA) tie:
    `prefer_ema` picks the EMA copy, otherwise the other one.

    Raises:
        CheckpointError: several copies, and `prefer_ema` does not tell them apart.
    """
    prefixes = (_prefix_before_root(key, roots) for key in keys)
    votes = Counter(prefix for prefix in prefixes if prefix is not None)
    if not votes:
        return ""
    top = max(votes.values())
    tied = sorted(prefix for prefix, count in votes.items() if count == top)
    preferred = [p for p in tied if is_ema_prefix(p) == prefer_ema] or tied
    if len(preferred) > 1:
        raise CheckpointError(f"{path}: holds several copies of the model (under "
                              f"{', '.join(repr(p) for p in preferred)}); cannot tell which "
                              f"to load")
    return preferred[0]


def _prefix_before_root(key: str, roots: set[str]) -> str | None:
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        if part in roots:
            return ".".join(parts[:i]) + "." if i else ""
    return None


def is_ema_prefix(prefix: str) -> bool:
    """Whether a wrapper prefix names an EMA / averaged copy ('ema.module.', 'model_ema.')."""
    return any(_EMA_SEGMENT.search(segment) for segment in prefix.split(".") if segment)


def under_prefix(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of `state` whose key starts with `prefix`, with the prefix removed."""
    return {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
