"""Weight masks for lottery-ticket pruning.

A mask is a dict `{parameter name: bool tensor of the parameter's shape}`, True
where the weight survives. Prunable weights are every parameter with `ndim > 1`:
convolutions, linears, token-selector MLPs and the head. Biases and batch-norm
affine parameters are 1-D and never pruned (as in Kim et al. 2022 and the
SparseSpikformer paper).

A pruned weight must be exactly zero in every forward pass and never come back.
`MaskEnforcer` does that for a training loop: it zeroes the gradients of pruned
weights after backward, and after each optimizer step zeroes the weights and the
optimizer's per-weight state (Adam's moments would otherwise keep pushing a
pruned weight away from zero through weight decay or stale momentum).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from sparsespikformer.model.training.checkpoint import is_state_dict, load_checkpoint
from sparsespikformer.simulator.atomic import atomic_path
from sparsespikformer.simulator.errors import CheckpointError

logger = logging.getLogger(__name__)

Masks = dict[str, torch.Tensor]

PRUNING_SCOPES = ("global", "layer")


def prunable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Every weight with ndim > 1, by name, in the model's parameter order."""
    return {name: p for name, p in model.named_parameters() if p.ndim > 1}


def full_masks(model: nn.Module) -> Masks:
    """All-True masks: nothing pruned yet."""
    return {name: torch.ones_like(p, dtype=torch.bool)
            for name, p in prunable_parameters(model).items()}


def count_prunable(masks: Masks) -> int:
    return sum(int(m.numel()) for m in masks.values())


def count_surviving(masks: Masks) -> int:
    return sum(int(m.sum()) for m in masks.values())


def weight_sparsity(masks: Masks) -> float:
    """Fraction of prunable weights that are pruned (0 = dense)."""
    total = count_prunable(masks)
    return 0.0 if total == 0 else (total - count_surviving(masks)) / total


def model_weight_sparsity(model: nn.Module) -> float:
    """Measured fraction of exact zeros over the prunable weights of `model`."""
    params = prunable_parameters(model)
    total = sum(p.numel() for p in params.values())
    zeros = sum(int((p.detach() == 0).sum()) for p in params.values())
    return 0.0 if total == 0 else zeros / total


def check_masks_match(model: nn.Module, masks: Masks) -> None:
    """Raise ValueError unless `masks` covers exactly the prunable weights of `model`."""
    params = prunable_parameters(model)
    missing = sorted(set(params) - set(masks))
    extra = sorted(set(masks) - set(params))
    if missing or extra:
        raise CheckpointError(f"mask does not match the model: missing {missing[:3]}, "
                         f"unknown {extra[:3]}")
    for name, p in params.items():
        if tuple(masks[name].shape) != tuple(p.shape):
            raise CheckpointError(f"mask '{name}' has shape {tuple(masks[name].shape)}, "
                             f"the weight {tuple(p.shape)}")


@torch.no_grad()
def apply_masks_to_weights(model: nn.Module, masks: Masks) -> None:
    params = prunable_parameters(model)
    for name, mask in masks.items():
        params[name].mul_(mask.to(device=params[name].device, dtype=params[name].dtype))


@torch.no_grad()
def apply_masks_to_gradients(model: nn.Module, masks: Masks) -> None:
    params = prunable_parameters(model)
    for name, mask in masks.items():
        grad = params[name].grad
        if grad is not None:
            grad.mul_(mask.to(device=grad.device, dtype=grad.dtype))


@torch.no_grad()
def apply_masks_to_optimizer_state(optimizer: torch.optim.Optimizer, model: nn.Module,
                                   masks: Masks) -> None:
    """Zero every per-weight state tensor (e.g. Adam's exp_avg, exp_avg_sq) of pruned weights."""
    params = prunable_parameters(model)
    for name, mask in masks.items():
        state = optimizer.state.get(params[name])
        if not state:
            continue
        for value in state.values():
            if torch.is_tensor(value) and value.shape == mask.shape:
                value.mul_(mask.to(device=value.device, dtype=value.dtype))


class MaskEnforcer:
    """Keeps pruned weights at exactly zero inside `training.train()`.

    Pass `after_backward` and `after_optimizer_step` as the training hooks.
    Masking the gradients before every step also keeps AdamW's moments of the
    pruned weights at exactly zero (they start at zero in a fresh optimizer and
    only ever see zero gradients), and decoupled weight decay of a zero weight
    is zero, so the optimizer never moves a pruned weight; re-masking the
    weights after the step makes that a guarantee rather than an argument.
    `apply_masks_to_optimizer_state` is there for an optimizer that was built
    before the masks changed.
    """

    def __init__(self, masks: Masks) -> None:
        self.masks = masks
        self._moved: tuple[torch.device, Masks] | None = None

    def _masks_for(self, model: nn.Module) -> Masks:
        """The masks on the model's device (copied there once, not every step)."""
        first = next(iter(prunable_parameters(model).values()), None)
        device = torch.device("cpu") if first is None else first.device
        if self._moved is None or self._moved[0] != device:
            self._moved = (device, {name: mask.to(device) for name, mask in self.masks.items()})
        return self._moved[1]

    def after_backward(self, model: nn.Module) -> None:
        apply_masks_to_gradients(model, self._masks_for(model))

    def after_optimizer_step(self, model: nn.Module) -> None:
        apply_masks_to_weights(model, self._masks_for(model))


def _keep_count(surviving: int, rate: float) -> int:
    """How many of `surviving` weights stay after pruning a fraction `rate` of them."""
    return surviving - int(round(rate * surviving))


def _check_rate(rate: float) -> None:
    if not 0.0 <= rate < 1.0:
        raise CheckpointError(f"pruning rate must be in [0, 1), got {rate}")


def _keep_largest(scores: torch.Tensor, n_keep: int) -> torch.Tensor:
    """Bool mask of the `n_keep` largest entries of a flat score vector."""
    keep = torch.zeros_like(scores, dtype=torch.bool)
    if n_keep > 0:
        # stable sort: ties broken by position, so the result is deterministic
        order = torch.sort(scores, descending=True, stable=True).indices
        keep[order[:n_keep]] = True
    return keep


def _prune_by_scores(scores: dict[str, torch.Tensor], masks: Masks, rate: float,
                     scope: str) -> Masks:
    """Remove a fraction `rate` of the surviving weights with the lowest scores."""
    _check_rate(rate)
    if scope not in PRUNING_SCOPES:
        raise CheckpointError(f"pruning scope must be one of {PRUNING_SCOPES}, got '{scope}'")
    # pruned weights score -inf so they are never chosen again
    masked = {name: torch.where(masks[name], scores[name].float(),
                                torch.tensor(float("-inf")))
              for name in masks}
    if scope == "layer":
        return {name: _keep_largest(masked[name].flatten(),
                                    _keep_count(int(masks[name].sum()), rate)
                                    ).view_as(masks[name])
                for name in masks}
    flat = torch.cat([masked[name].flatten() for name in masks])
    keep_flat = _keep_largest(flat, _keep_count(count_surviving(masks), rate))
    new_masks, offset = {}, 0
    for name, mask in masks.items():
        new_masks[name] = keep_flat[offset:offset + mask.numel()].view_as(mask)
        offset += mask.numel()
    return new_masks


def magnitude_prune(model: nn.Module, masks: Masks, rate: float, scope: str = "global"
                    ) -> Masks:
    """New masks with a fraction `rate` of the survivors, smallest |w| first, removed."""
    check_masks_match(model, masks)
    params = prunable_parameters(model)
    # on the CPU, where the masks live: the same ranking whatever device trained the model
    scores = {name: params[name].detach().abs().cpu() for name in masks}
    return _prune_by_scores(scores, masks, rate, scope)


def random_prune(masks: Masks, rate: float, seed: int, scope: str = "global") -> Masks:
    """New masks with a fraction `rate` of the survivors removed uniformly at random."""
    generator = torch.Generator().manual_seed(seed)
    scores = {name: torch.rand(mask.shape, generator=generator) for name, mask in masks.items()}
    return _prune_by_scores(scores, masks, rate, scope)


def save_masks(masks: Masks, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        torch.save({name: m.clone() for name, m in masks.items()}, tmp)


def load_masks(path: str | Path) -> Masks:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask file not found: {path}")
    loaded = load_checkpoint(path)  # any unreadable file: a ValueError naming it
    if not is_state_dict(loaded):
        raise CheckpointError(f"{path}: not a mask file (expected a dict of tensors)")
    return {name: m.to(torch.bool) for name, m in loaded.items()}
