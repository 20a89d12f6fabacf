"""Spiking Patch Splitting (SPS): the convolutional patch embedding of Spikformer.

Four conv3x3-BN-LIF stages widen the channels to D/8, D/4, D/2, D; a 3x3/2 max-pool follows
the stages listed in ``config.sps_pool_after``. A conv-BN-LIF relative position embedding
(RPE) of the final map is added to that map. Module names match the reference
(``proj_conv``, ``proj_bn1``, ``maxpool3``, ``rpe_lif``, ...).
"""

from __future__ import annotations

import torch
from torch import nn

from sparsespikformer.model.nn.config import NUM_SPS_CONVS, SpikformerConfig
from sparsespikformer.model.nn.lif import lif_from_config
from sparsespikformer.model.nn.token_ops import float32


def _stage_suffix(index: int) -> str:
    # The reference names stage 0 without a number: proj_conv, proj_conv1, proj_conv2, ...
    return "" if index == 0 else str(index)


class SPS(nn.Module):
    """(T, B, C_in, H, W) frames -> (T, B, N, D) tokens, N = (H / 2^pools) * (W / 2^pools)."""

    def __init__(self, config: SpikformerConfig):
        super().__init__()
        self.pool_after = config.sps_pool_after
        dim = config.embed_dim
        widths = (config.in_channels, dim // 8, dim // 4, dim // 2, dim)
        for i in range(NUM_SPS_CONVS):
            sfx = _stage_suffix(i)
            conv = nn.Conv2d(widths[i], widths[i + 1], kernel_size=3, padding=1, bias=False)
            setattr(self, f"proj_conv{sfx}", conv)
            setattr(self, f"proj_bn{sfx}", nn.BatchNorm2d(widths[i + 1]))
            setattr(self, f"proj_lif{sfx}", lif_from_config(config))
            if i in self.pool_after:
                setattr(self, f"maxpool{sfx}", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        self.rpe_conv = nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=1, bias=False)
        self.rpe_bn = nn.BatchNorm2d(dim)
        self.rpe_lif = lif_from_config(config)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        T, B = frames.shape[:2]
        x = frames.flatten(0, 1)  # (T*B, C, H, W)
        for i in range(NUM_SPS_CONVS):
            sfx = _stage_suffix(i)
            x = getattr(self, f"proj_bn{sfx}")(float32(getattr(self, f"proj_conv{sfx}")(x)))
            x = getattr(self, f"proj_lif{sfx}")(x.reshape(T, B, *x.shape[1:])).flatten(0, 1)
            if i in self.pool_after:
                x = getattr(self, f"maxpool{sfx}")(x)
        rpe = self.rpe_bn(float32(self.rpe_conv(x)))  # (T*B, D, h, w)
        rpe = self.rpe_lif(rpe.reshape(T, B, *rpe.shape[1:])).flatten(0, 1)
        x = rpe + x  # values 0, 1, 2
        # (T*B, D, h, w) -> (T, B, N, D), made contiguous once for all blocks.
        return x.reshape(T, B, x.shape[1], -1).transpose(2, 3).contiguous()

