"""Spiking self-attention (SSA) of Spikformer.

Q, K, V = LIF(BN(W x)); out = LIF_0.5(Q Kᵀ V * scale) (no softmax: every operand is a spike,
so the products are small integers); then proj-BN-LIF. The CIFAR form projects with
``nn.Linear`` (with bias), the ImageNet / DVS forms with bias-free 1x1 ``Conv1d`` for Q/K/V
and a 1x1 ``Conv1d`` with bias for the output projection, as in the reference files.

Token dropping: with ``keep_mask`` (B, N) in {0, 1}, K and V of dropped tokens are zeroed,
so a dropped token contributes nothing to any other token's attention output.
"""

from __future__ import annotations

import torch
from torch import nn

from sparsespikformer.model.nn.config import SpikformerConfig
from sparsespikformer.model.nn.lif import lif_from_config
from sparsespikformer.model.nn.token_ops import channels_first, conv_bn, linear_bn


class SpikeMatmul(nn.Module):
    """``a @ b`` as a module, so that hooks (GFLOPs, traces) see the attention products.

    ``role`` is ``"attn_qk"`` for Q·Kᵀ, ``"attn_v"`` for (Q·Kᵀ)·V, ``"attn_kv"`` for Kᵀ·V and
    ``"attn_q"`` for Q·(Kᵀ·V).
    """

    def __init__(self, role: str):
        super().__init__()
        self.role = role

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if _under_half_precision(a, b):
            # Spike products are small integers: float32 keeps them exact (bf16 holds
            # integers only up to 256), so autocast must not lower this matmul.
            with torch.autocast(a.device.type, enabled=False):
                return a.float() @ b.float()
        return a @ b

    def extra_repr(self) -> str:
        return f"role={self.role!r}"


def _under_half_precision(a: torch.Tensor, b: torch.Tensor) -> bool:
    half = (torch.float16, torch.bfloat16)
    if a.dtype in half or b.dtype in half:
        return True
    return a.device.type in _AUTOCAST_DEVICES and torch.is_autocast_enabled(a.device.type)


_AUTOCAST_DEVICES = ("cpu", "cuda", "mps")


class SpikingSelfAttention(nn.Module):
    """(T, B, N, C) tokens (+ optional keep_mask (B, N)) -> (T, B, N, C) spikes."""

    def __init__(self, config: SpikformerConfig):
        super().__init__()
        dim = config.embed_dim
        self.num_heads = config.num_heads
        self.scale = config.attn_scale
        self.uses_linear = config.form == "cifar"
        for name in ("q", "k", "v"):
            if self.uses_linear:
                setattr(self, f"{name}_linear", nn.Linear(dim, dim))
            else:
                setattr(self, f"{name}_conv", nn.Conv1d(dim, dim, kernel_size=1, bias=False))
            setattr(self, f"{name}_bn", nn.BatchNorm1d(dim))
            setattr(self, f"{name}_lif", lif_from_config(config))
        self.attn_lif = lif_from_config(config, v_threshold=config.attn_lif_threshold)
        if self.uses_linear:
            self.proj_linear = nn.Linear(dim, dim)
        else:
            self.proj_conv = nn.Conv1d(dim, dim, kernel_size=1)
        self.proj_bn = nn.BatchNorm1d(dim)
        self.proj_lif = lif_from_config(config)
        self.kv_first = config.attn_order == "kv_first"
        if self.kv_first:
            self.kv_matmul = SpikeMatmul("attn_kv")
            self.q_kv_matmul = SpikeMatmul("attn_q")
        else:
            self.qk_matmul = SpikeMatmul("attn_qk")
            self.av_matmul = SpikeMatmul("attn_v")

    def forward(self, x: torch.Tensor, keep_mask: torch.Tensor | None = None) -> torch.Tensor:
        T, B, N, C = x.shape
        heads, head_dim = self.num_heads, C // self.num_heads
        if self.uses_linear:
            q, k, v = (self._qkv_linear(name, x) for name in ("q", "k", "v"))
            # (T, B, N, C) -> (T, B, heads, N, head_dim), views only
            q, k, v = (s.view(T, B, N, heads, head_dim).transpose(2, 3) for s in (q, k, v))
        else:
            x_cn = channels_first(x)  # (T*B, C, N), shared by Q, K and V
            q, k, v = (self._qkv_conv(name, x_cn, T) for name in ("q", "k", "v"))
            # (T, B, C, N) -> (T, B, heads, N, head_dim), views only
            q, k, v = (s.view(T, B, heads, head_dim, N).transpose(3, 4) for s in (q, k, v))
        if keep_mask is not None:
            mask = keep_mask.to(k.dtype).view(1, B, 1, N, 1)
            k, v = k * mask, v * mask
        out = self._attend(q, k, v)  # (T, B, heads, N, head_dim)
        if self.uses_linear:
            s = self.attn_lif(out.transpose(2, 3)).view(T, B, N, C)
            return self.proj_lif(linear_bn(self.proj_linear, self.proj_bn, s))
        s = self.attn_lif(out.permute(0, 1, 2, 4, 3)).view(T * B, C, N)
        s = self.proj_lif(conv_bn(self.proj_conv, self.proj_bn, s, T))  # (T, B, C, N)
        return s.transpose(2, 3)

    def _qkv_linear(self, name: str, x: torch.Tensor) -> torch.Tensor:
        y = linear_bn(getattr(self, f"{name}_linear"), getattr(self, f"{name}_bn"), x)
        return getattr(self, f"{name}_lif")(y)  # (T, B, N, C)

    def _qkv_conv(self, name: str, x_cn: torch.Tensor, T: int) -> torch.Tensor:
        y = conv_bn(getattr(self, f"{name}_conv"), getattr(self, f"{name}_bn"), x_cn, T)
        return getattr(self, f"{name}_lif")(y)  # (T, B, C, N)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        # The scale is applied last: with spike operands and a power-of-two scale this is
        # bit-identical to scaling Q·Kᵀ first (cifar10/model.py), and keeps the input of the
        # second product an integer matrix, as the trace records it.
        if self.kv_first:
            out = self.q_kv_matmul(q, self.kv_matmul(k.transpose(-2, -1), v))
        else:
            out = self.av_matmul(self.qk_matmul(q, k.transpose(-2, -1)), v)
        return out * self.scale
