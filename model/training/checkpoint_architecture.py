"""Which Spikformer a state dict holds, read from its key names and shapes alone.

The three forms of the reference code (see `model/nn/config.py`) name and shape their layers
differently, so the keys tell them apart:

    CIFAR form     block.i.attn.q_linear.weight (D, D)       mlp.fc1_linear.weight (4D, D)
    ImageNet form  block.i.attn.q_conv.weight   (D, D, 1)    mlp.fc1_conv.weight   (4D, D, 1, 1)
    DVS form       block.i.attn.q_conv.weight   (D, D, 1)    mlp.fc1_conv.weight   (4D, D, 1)

Depth is the number of `block.i`, the width D the rows of `patch_embed.rpe_conv.weight`, the
classes the rows of `head.weight`, the input channels the columns of
`patch_embed.proj_conv.weight`; learned token selectors have `token_selectors.<block>.mlp`
weights. The image size and the pooling positions leave no trace in the weights.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch

FORM_NAMES = {"cifar": "CIFAR", "imagenet": "ImageNet", "dvs": "DVS"}
_BLOCK = re.compile(r"^block\.(\d+)\.")
_LEARNED_SELECTOR = re.compile(r"^token_selectors\.(\d+)\.mlp\.")


@dataclass(frozen=True)
class Architecture:
    """What the weights of a Spikformer fix: form, depth, width, classes, channels, selectors."""

    form: str | None                # 'cifar', 'imagenet', 'dvs'; None: not a Spikformer
    depth: int = 0
    embed_dim: int = 0
    num_classes: int = 0
    in_channels: int = 0
    learned_selectors: tuple[int, ...] = ()   # blocks with a learned selector before them

    def name(self) -> str:
        """'spikformer 8-512 ImageNet form'."""
        if self.form is None:
            return "not a Spikformer (no patch_embed / block / head weights)"
        return f"spikformer {self.depth}-{self.embed_dim} {FORM_NAMES[self.form]} form"

    def details(self, other: Architecture) -> str:
        """The properties beyond `name()` in which `self` differs from `other`, in words."""
        if self.form is None or other.form is None:
            return ""
        parts = []
        if self.num_classes != other.num_classes:
            parts.append(_count(self.num_classes, "class", "classes"))
        if self.in_channels != other.in_channels:
            parts.append(_count(self.in_channels, "input channel", "input channels"))
        if self.learned_selectors != other.learned_selectors:
            blocks = self.learned_selectors
            where = ("block" if len(blocks) == 1 else "blocks") + " " + ", ".join(map(str, blocks))
            parts.append(f"learned token selectors before {where}" if blocks
                         else "no learned token selectors")
        return f" ({', '.join(parts)})" if parts else ""


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def architecture_of(state: Mapping[str, torch.Tensor]) -> Architecture:
    """The Spikformer that `state` (keys without wrapper prefixes) holds."""
    blocks = {int(m.group(1)) for key in state if (m := _BLOCK.match(key))}
    rpe = state.get("patch_embed.rpe_conv.weight")
    head = state.get("head.weight")
    stem = state.get("patch_embed.proj_conv.weight")
    form = _form_of(state)
    if form is None or rpe is None or head is None or stem is None or not blocks:
        return Architecture(form=None)
    selectors = sorted({int(m.group(1)) for key in state if (m := _LEARNED_SELECTOR.match(key))})
    return Architecture(form=form, depth=max(blocks) + 1, embed_dim=int(rpe.shape[0]),
                        num_classes=int(head.shape[0]), in_channels=int(stem.shape[1]),
                        learned_selectors=tuple(selectors))


def _form_of(state: Mapping[str, torch.Tensor]) -> str | None:
    for key, value in state.items():
        if key.endswith(".attn.q_linear.weight"):
            return "cifar"
        if key.endswith(".mlp.fc1_conv.weight"):
            return "imagenet" if value.dim() == 4 else "dvs"
    return None
