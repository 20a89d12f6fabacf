"""Spiking MLP of a Spikformer block: fc1-BN-LIF (D -> ratio*D), fc2-BN-LIF (back to D).

CIFAR form: ``nn.Linear`` + BatchNorm1d; ImageNet form: 1x1 ``Conv2d`` + BatchNorm2d;
DVS form: 1x1 ``Conv1d`` + BatchNorm1d (all with bias), as in the reference files.
"""

from __future__ import annotations

import torch
from torch import nn

from sparsespikformer.model.nn.config import SpikformerConfig
from sparsespikformer.model.nn.lif import lif_from_config
from sparsespikformer.model.nn.token_ops import channels_first, conv_bn, linear_bn


class SpikingMLP(nn.Module):
    """(T, B, N, C) tokens -> (T, B, N, C) spikes."""

    def __init__(self, config: SpikformerConfig):
        super().__init__()
        dim, hidden = config.embed_dim, config.mlp_hidden_dim
        self.form = config.form
        if self.form == "cifar":
            self.fc1_linear = nn.Linear(dim, hidden)
        elif self.form == "imagenet":
            self.fc1_conv = nn.Conv2d(dim, hidden, kernel_size=1)
        else:
            self.fc1_conv = nn.Conv1d(dim, hidden, kernel_size=1)
        self.fc1_bn = _batch_norm(self.form, hidden)
        self.fc1_lif = lif_from_config(config)
        if self.form == "cifar":
            self.fc2_linear = nn.Linear(hidden, dim)
        elif self.form == "imagenet":
            self.fc2_conv = nn.Conv2d(hidden, dim, kernel_size=1)
        else:
            self.fc2_conv = nn.Conv1d(hidden, dim, kernel_size=1)
        self.fc2_bn = _batch_norm(self.form, dim)
        self.fc2_lif = lif_from_config(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[0]
        if self.form == "cifar":
            h = self.fc1_lif(linear_bn(self.fc1_linear, self.fc1_bn, x))  # (T, B, N, hidden)
            return self.fc2_lif(linear_bn(self.fc2_linear, self.fc2_bn, h))
        h = self.fc1_lif(conv_bn(self.fc1_conv, self.fc1_bn, channels_first(x), T))
        out = self.fc2_lif(conv_bn(self.fc2_conv, self.fc2_bn, h.flatten(0, 1), T))
        return out.transpose(2, 3)  # (T, B, C, N) -> (T, B, N, C) view


def _batch_norm(form: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if form == "imagenet" else nn.BatchNorm1d(channels)
