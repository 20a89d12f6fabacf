"""One Spikformer encoder block: x + SSA(x), then x + MLP(x).

The reference defines ``norm1``/``norm2`` LayerNorms that its forward never calls; they are
left out here (`convert_reference_state_dict` drops their checkpoint entries).
"""

from __future__ import annotations

import torch
from torch import nn

from sparsespikformer.model.nn.attention import SpikingSelfAttention
from sparsespikformer.model.nn.config import SpikformerConfig
from sparsespikformer.model.nn.mlp import SpikingMLP


class Block(nn.Module):
    """(T, B, N, C) residual stream (sums of spikes) -> (T, B, N, C), contiguous."""

    def __init__(self, config: SpikformerConfig):
        super().__init__()
        self.attn = SpikingSelfAttention(config)
        self.mlp = SpikingMLP(config)

    def forward(self, x: torch.Tensor, keep_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = _residual_add(x, self.attn(x, keep_mask))
        return _residual_add(x, self.mlp(x))


def _residual_add(x: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
    # The conv forms hand back a transposed view; keep the stream in (T, B, N, C) memory order.
    return (x + update).contiguous()
