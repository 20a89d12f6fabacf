"""Per-sample row events for the trace's `sample_row_events` array (schema 3).

For every GEMM layer and each of the first `max_samples` samples: the sum of the input
values of each GEMM row, per timestep and per group (attention head), shape
(samples, T, groups, gemm_m). That is what one PE row streams when zero inputs are skipped,
so the simulator can take each fold's busiest row per inference (simulator/imbalance.py):

* token linears (and 1x1 convs over tokens), the head, a learned selector's linears: each
  token's input values summed over its features;
* a convolution: each output position's receptive field (kernel, stride, padding and
  dilation of the module; border padding counts as zeros), summed over input channels: the
  row sum of the im2col matrix;
* the attention products: each head's rows of the first operand.

It hooks the same modules as `TraceRecorder`, with its own forward hooks, so the two stay
independent (the counts recorder is the hot path; this one stops once it has its samples).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sparsespikformer.model.tracing.recorder import _handler_of, _is_pointwise, recorded_modules
from sparsespikformer.model.tracing.tensor_stats import reads_float32

ROW_EVENT_SAMPLES = 64  # samples kept: enough for per-inference statistics, small on disk


class RowEventRecorder:
    """Forward hooks collecting `sample_row_events` of every GEMM layer (see module doc)."""

    def __init__(self, model: nn.Module, timesteps: int, max_samples: int = ROW_EVENT_SAMPLES):
        self.model = model
        self.timesteps = timesteps
        self.max_samples = max_samples
        self.batches: dict[str, list[np.ndarray]] = {}  # name -> [(B, T, G, M)]
        self._kept: dict[str, int] = {}
        self._handles: list = []

    def __enter__(self) -> RowEventRecorder:
        for name, module in recorded_modules(self.model):
            handler = _handler_of(module)
            if handler == "matmul":
                hook = self._matmul_hook(name)
            elif handler == "weighted":
                hook = self._weighted_hook(name, module)
            else:
                continue
            # under autocast the sums (and the receptive-field conv) stay exact float32
            self._handles.append(module.register_forward_hook(reads_float32(hook)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def events(self) -> dict[str, np.ndarray]:
        """name -> (kept samples, T, groups, gemm_m) float32."""
        return {name: np.concatenate(parts)[:self.max_samples].astype(np.float32)
                for name, parts in self.batches.items()}

    def _wanted(self, name: str) -> bool:
        return self._kept.get(name, 0) < self.max_samples

    def _keep(self, name: str, rows: torch.Tensor) -> None:
        """rows: (B, T, G, M)."""
        kept = rows.detach().float().cpu().numpy()
        self.batches.setdefault(name, []).append(kept)
        self._kept[name] = self._kept.get(name, 0) + kept.shape[0]

    def _matmul_hook(self, name: str):
        def hook(module, inputs, out):
            if self._wanted(name):
                a = inputs[0]  # (T, B, heads, M, K)
                self._keep(name, a.abs().sum(-1).permute(1, 0, 2, 3))
        return hook

    def _weighted_hook(self, name: str, module: nn.Module):
        def hook(mod, inputs, out):
            if self._wanted(name):
                self._keep(name, self._weighted_rows(name, mod, inputs[0]))
        return hook

    def _weighted_rows(self, name: str, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        steps = self.timesteps
        if name == "head":  # (B, C) on time- and token-averaged spikes: one row
            return x.abs().sum(-1)[:, None, None, None]
        if name.startswith("token_selectors."):  # (B, N, C), time-averaged
            return x.abs().sum(-1)[:, None, None, :]
        if isinstance(module, nn.Linear):  # (T*B, N, C)
            per_token = x.abs().sum(-1).reshape(steps, -1, x.shape[1])  # (T, B, N)
            return per_token.permute(1, 0, 2)[:, :, None, :]
        if _is_pointwise(module):  # (T*B, C, N[, 1])
            per_token = x.abs().flatten(2).sum(1).reshape(steps, -1, x.flatten(2).shape[-1])
            return per_token.permute(1, 0, 2)[:, :, None, :]
        # a convolution: each output's receptive field, summed over input channels
        channel_sum = x.abs().sum(1, keepdim=True)  # (T*B, 1, H, W)
        ones = torch.ones((1, 1, *module.kernel_size), dtype=channel_sum.dtype,
                          device=channel_sum.device)
        fields = F.conv2d(channel_sum, ones, stride=module.stride, padding=module.padding,
                          dilation=module.dilation)  # (T*B, 1, Ho, Wo)
        fields = fields.reshape(steps, -1, fields.shape[-2] * fields.shape[-1])  # (T, B, M)
        return fields.permute(1, 0, 2)[:, :, None, :]


__all__ = ["RowEventRecorder", "ROW_EVENT_SAMPLES"]
