"""Spikformer (Zhou et al., ICLR 2023; docs/references.md), built as the reference code builds it.

Input: an image batch (B, C, H, W), repeated over ``config.timesteps``, or event frames
(B, T, C, H, W) used as they are. SPS turns it into tokens (T, B, N, D); the blocks keep that
layout; logits = head(mean over T of the mean over tokens).

Token-selector plumbing: ``token_selectors`` maps a block index (as a string) to a module
called as ``x, keep_mask = selector(x, keep_mask)`` just before that block. In eval mode a
selector gathers the kept tokens (keep_mask None, fewer tokens downstream); in training it
may return x unchanged with a (B, N) {0, 1} keep_mask that the attention and the readout
honour. Empty by default, so a dense model has exactly the reference's parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from sparsespikformer.model.nn.block import Block
from sparsespikformer.model.nn.config import SpikformerConfig
from sparsespikformer.model.nn.sps import SPS
from sparsespikformer.simulator.errors import InputError


class Spikformer(nn.Module):
    def __init__(self, config: SpikformerConfig):
        super().__init__()
        self.config = config
        self.patch_embed = SPS(config)
        self.block = nn.ModuleList(Block(config) for _ in range(config.depth))
        self.head = nn.Linear(config.embed_dim, config.num_classes)
        self.token_selectors = nn.ModuleDict()
        self.apply(_init_linear)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) or (B, T, C, H, W) -> logits (B, num_classes)."""
        tokens, keep_mask = self.forward_tokens(x)
        return self.readout(tokens, keep_mask)

    def forward_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Tokens (T, B, N, D) after the last block, and the keep_mask in force (or None)."""
        x = self.patch_embed(self.time_major_frames(x))  # (T, B, N, D)
        keep_mask = None
        for i, blk in enumerate(self.block):
            key = str(i)
            if key in self.token_selectors:
                x, keep_mask = self.token_selectors[key](x, keep_mask)
            x = blk(x, keep_mask)
        return x, keep_mask

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens (T, B, N, D) before the readout."""
        return self.forward_tokens(x)[0]

    def readout(self, tokens: torch.Tensor, keep_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(T, B, N, D) -> logits: head of the time mean of the (masked) token mean."""
        if keep_mask is None:
            pooled = tokens.mean(2)  # (T, B, D)
        else:
            mask = keep_mask.to(tokens.dtype)  # (B, N)
            pooled = (tokens * mask[None, :, :, None]).sum(2) / mask.sum(1)[None, :, None]
        return self.head(pooled.mean(0))

    def time_major_frames(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) repeated T times, or (B, T, C, H, W) -> (T, B, C, H, W)."""
        if x.dim() == 4:
            frames = x.unsqueeze(0).repeat(self.config.timesteps, 1, 1, 1, 1)
        elif x.dim() == 5:
            frames = x.transpose(0, 1)
        else:
            raise InputError(
                f"Spikformer input must be (B, C, H, W) or (B, T, C, H, W), got {tuple(x.shape)}"
            )
        C, H, W = frames.shape[2:]
        if C != self.config.in_channels:
            raise InputError(
                f"Spikformer expects {self.config.in_channels} input channels, got {C}"
            )
        step = self.config.downsample
        if H % step or W % step:
            raise InputError(f"Spikformer input size {H}x{W} is not divisible by {step}")
        return frames


def _init_linear(module: nn.Module) -> None:
    # As the reference's _init_weights: truncated normal (std 0.02) for every nn.Linear, zero
    # bias; convolutions and BatchNorms keep PyTorch's defaults.
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
