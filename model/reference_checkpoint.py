"""Load checkpoints saved by the reference Spikformer code (ZK-Zhou/spikformer).

Our modules carry the reference's names, so a reference state dict maps 1:1 once its
wrapping is removed and the entries of modules we do not build are dropped: the per-block
``norm1`` / ``norm2`` LayerNorms (defined, never called), and in the DVS model the unused
``pos_embed`` parameter and final ``norm`` LayerNorm.

These two functions are the model-free view of the one checkpoint loader
(`sparsespikformer.model.training.weights`): they unwrap every container and wrapper prefix
that loader does, without a model to compare against. To load into a model, with errors that
say why weights do not fit, use `load_model_weights(model, path)`.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch

from sparsespikformer.simulator.errors import CheckpointError

UNUSED_REFERENCE_KEYS = re.compile(
    r"^(block\.\d+\.norm[12]\.(weight|bias)|pos_embed|norm\.(weight|bias))$")
# Top-level names of a Spikformer's state dict: what stands before them is a wrapper prefix.
SPIKFORMER_ROOTS = frozenset({"patch_embed", "block", "head", "token_selectors"})


def convert_reference_state_dict(checkpoint: Mapping, *, ema: bool = False,
                                 path: str = "reference checkpoint"
                                 ) -> OrderedDict[str, torch.Tensor]:
    """A state dict that `Spikformer.load_state_dict(..., strict=True)` accepts.

    `checkpoint` is a reference state dict, bare or in any container the one loader knows
    ({'state_dict': ...}, {'model': ...}, timm's 'state_dict_ema' with `ema`, ...), with any
    wrapper prefixes ('module.', '_orig_mod.', ...).

    Raises:
        CheckpointError: not a mapping, no weights in it, or only unused entries.
    """
    from sparsespikformer.model.training.weights import model_weights_in

    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(
            f"{path} must be a mapping, got {type(checkpoint).__name__}")
    state, _ = model_weights_in(checkpoint, path, roots=set(SPIKFORMER_ROOTS), ema=ema)
    if not state:
        raise CheckpointError(f"{path}: no model weights found")
    return OrderedDict(state)


def load_reference_checkpoint(path: str | Path, *, ema: bool = False
                              ) -> OrderedDict[str, torch.Tensor]:
    """Reads a reference checkpoint file (weights only) and converts it.

    Raises:
        FileNotFoundError: no such file. CheckpointError: see `convert_reference_state_dict`.
    """
    from sparsespikformer.model.training.checkpoint import load_checkpoint

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reference checkpoint not found: {path}")
    return convert_reference_state_dict(load_checkpoint(path), ema=ema, path=str(path))
