"""Projection + BatchNorm on token tensors, in the two layouts the reference code uses.

Blocks keep tokens as (T, B, N, C). The CIFAR form projects them with ``nn.Linear`` directly;
the ImageNet and DVS forms use 1x1 convolutions, which want channels first, (T*B, C, N).
Each helper calls the layers on exactly the tensor layout the reference calls them on, so
the float results are the same bit for bit.
"""

from __future__ import annotations

import torch
from torch import nn


def float32(y: torch.Tensor) -> torch.Tensor:
    """A projection's output for its batch norm: float32 even under autocast (a no-op
    otherwise). The normalised current decides spikes: in bf16 it would be rounded a
    second time after the projection (measured: twice the prediction flips)."""
    return y.float() if y.dtype in (torch.float16, torch.bfloat16) else y


def linear_bn(linear: nn.Linear, bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    """(T, B, N, C_in) -> (T, B, N, C_out): linear on tokens, BatchNorm1d over channels."""
    T, B, N, _ = x.shape
    y = linear(x.flatten(0, 1))  # (T*B, N, C_out)
    y = bn(float32(y).transpose(1, 2)).transpose(1, 2)  # BN sees (T*B, C_out, N): a view
    return y.reshape(T, B, N, -1)


def channels_first(x: torch.Tensor) -> torch.Tensor:
    """(T, B, N, C) tokens -> contiguous (T*B, C, N), the input layout of the 1x1 convs."""
    return x.flatten(0, 1).transpose(1, 2).contiguous()


def conv_bn(conv: nn.Module, bn: nn.Module, x_cn: torch.Tensor, T: int) -> torch.Tensor:
    """(T*B, C_in, N) -> (T, B, C_out, N) through a 1x1 Conv1d/Conv2d and its BatchNorm.

    A Conv2d (ImageNet MLP) runs on a (T*B, C, N, 1) view of the token grid: a 1x1 conv does
    not mix positions, so this equals running it on (T*B, C, H, W).
    """
    if isinstance(conv, nn.Conv2d):
        y = bn(float32(conv(x_cn.unsqueeze(-1)))).squeeze(-1)
    else:
        y = bn(float32(conv(x_cn)))
    return y.reshape(T, -1, y.shape[1], y.shape[2])
