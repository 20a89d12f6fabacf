"""Record a trace: run real samples through a real model and count what every layer does.

Forward hooks on the modules that compute (convolutions, linears, the attention products,
LIF neurons, max-pools, token selectors) observe their real inputs and outputs; nothing the
model computes is changed. Each hook turns one batch into per-sample counts
(`trace_counts`) and statistics, accumulated per layer; `record_trace` then assembles the
schema-checked `Trace` (docs/trace-format.md).

Tensor layouts (see spikformer.py, sps.py, token_ops.py): convolutions and pools see
(T*B, C, H, W) or (T*B, C, N[, 1]) time-major; per-token linears see (T*B, N, C); LIFs see
(T, B, ...) with tokens on axis 2 (CIFAR form) or last (conv forms); the head sees (B, D);
a learned selector's MLP sees time-averaged tokens (B, N, C).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import nn

from .attention import SpikeMatmul
from .lif import LIF
from .token_selector import TokenSelector
from .trace_counts import F64, LayerCounts, conv2d_counts, linear_counts, matmul_counts

_BLOCK = re.compile(r"(?:^|\.)(?:block|token_selectors)\.(\d+)(?:\.|$)")
_MATMUL_KIND = {"attn_qk": "attn_qk", "attn_v": "attn_v", "attn_kv": "attn_qk", "attn_q": "attn_v"}


@dataclass
class LayerRecord:
    """Everything one layer's hook has seen, summed over batches."""

    name: str
    kind: str
    timesteps: int
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()
    tokens_in: int = 0
    tokens_out: int = 0
    gemm: tuple[int, int, int, int] = (0, 0, 0, 0)  # m, n, k, groups
    weight: torch.Tensor | None = None
    value_kind: str = "real"
    values_binary: bool = True
    values_integer: bool = True
    value_min: float = float("inf")
    value_max: float = float("-inf")
    value_sum: float = 0.0
    value_count: int = 0
    value_nonzero: int = 0
    out_nonzero: int = 0
    out_count: int = 0
    operand_nonzero: int = 0
    operand_count: int = 0
    events_tn: torch.Tensor | None = None
    per_sample: dict[str, list[torch.Tensor]] = field(default_factory=dict)

    def observe_input(self, x: torch.Tensor, classify: bool = True) -> tuple[bool, bool]:
        """Accumulate value statistics; returns whether this batch is all 0/1, all integer."""
        low, high = (float(v) for v in torch.aminmax(x))
        # float32 row sums (exact for the small integers of spike layers), then float64
        total = float(x.reshape(-1, x.shape[-1]).sum(dim=1).sum(dtype=torch.float64))
        nonzero = int(torch.count_nonzero(x))
        # In [0, 1] with Σx equal to the non-zero count means every non-zero value is 1.
        binary = classify and low >= 0 and high <= 1 and total == nonzero
        integer = binary or (classify and bool((x == x.round()).all()))
        self.values_binary &= binary
        self.values_integer &= integer
        self.value_min = min(self.value_min, low)
        self.value_max = max(self.value_max, high)
        self.value_sum += total
        self.value_count += x.numel()
        self.value_nonzero += nonzero
        return binary, integer

    def observe_output(self, y: torch.Tensor) -> None:
        self.out_nonzero += int(torch.count_nonzero(y))
        self.out_count += y.numel()

    def observe_counts(self, counts: LayerCounts) -> None:
        for key in ("sops", "effective_ops", "nonzero_pairs", "in_events"):
            self.per_sample.setdefault(key, []).append(getattr(counts, key))
        self._add_events(counts.events_per_step_token)

    def observe_events(self, events_tn: torch.Tensor, per_sample_events: torch.Tensor) -> None:
        """For rows without MACs (LIF: output spikes; pool: input spikes)."""
        zeros = torch.zeros_like(per_sample_events)
        for key in ("sops", "effective_ops", "nonzero_pairs"):
            self.per_sample.setdefault(key, []).append(zeros)
        self.per_sample.setdefault("in_events", []).append(per_sample_events)
        self._add_events(events_tn)

    def _add_events(self, events_tn: torch.Tensor) -> None:
        self.events_tn = events_tn if self.events_tn is None else self.events_tn + events_tn


def _block_of(name: str) -> int:
    match = _BLOCK.search(name)
    return int(match.group(1)) if match else -1


class TraceRecorder:
    """Hooks a model; each forward pass in its context adds a batch to the records."""

    def __init__(self, model: nn.Module, timesteps: int, tokens_last: bool,
                 shapes_only: bool = False):
        self.model = model
        self.shapes_only = shapes_only  # meta-device forward: record shapes, count nothing
        self.timesteps = timesteps
        self.tokens_last = tokens_last  # conv forms keep block LIF inputs as (T, B, C, N)
        self.records: dict[str, LayerRecord] = {}
        self._handles: list = []

    def __enter__(self) -> TraceRecorder:
        for name, module in self.model.named_modules():
            hook = self._hook_for(name, module)
            if hook is not None:
                self._handles.append(module.register_forward_hook(hook))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook_for(self, name: str, module: nn.Module):
        if isinstance(module, SpikeMatmul):
            return lambda mod, inputs, out: self._on_matmul(name, mod, inputs, out)
        if isinstance(module, LIF):
            return lambda mod, inputs, out: self._on_lif(name, inputs[0], out)
        if isinstance(module, nn.MaxPool2d):
            return lambda mod, inputs, out: self._on_pool(name, inputs[0], out)
        if isinstance(module, TokenSelector) and module.mlp is None:
            return lambda mod, inputs, out: self._on_parameterless_selector(name, inputs[0],
                                                                            out[0])
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            return lambda mod, inputs, out: self._on_weighted(name, mod, inputs[0], out)
        return None

    def _record(self, name: str, kind: str, timesteps: int) -> LayerRecord:
        if name not in self.records:
            self.records[name] = LayerRecord(name=name, kind=kind, timesteps=timesteps)
        return self.records[name]

    # --------------------------------------------------------------------- weighted layers

    def _on_weighted(self, name: str, module: nn.Module, x: torch.Tensor, y: torch.Tensor):
        if name == "head":
            self._on_token_linear(name, "head", module.weight, x[None, :, None, :], y, 1)
        elif name.startswith("token_selectors."):
            self._on_token_linear(name, "selector", module.weight, x.unsqueeze(0), y, 1)
        elif isinstance(module, nn.Linear):
            tokens = x.reshape(self.timesteps, -1, *x.shape[1:])  # (T, B, N, C)
            self._on_token_linear(name, "linear", module.weight, tokens, y, self.timesteps)
        elif _is_pointwise(module):
            # 1x1 conv over (T*B, C, N[, 1]): a per-token linear in channels-first layout
            tokens = x.flatten(2).transpose(1, 2)  # (T*B, N, C)
            tokens = tokens.reshape(self.timesteps, -1, *tokens.shape[1:])
            weight = module.weight.flatten(1)  # (C_out, C_in)
            self._on_token_linear(name, "linear", weight, tokens, y, self.timesteps)
        else:
            self._on_conv(name, module, x, y)

    def _on_token_linear(self, name: str, kind: str, weight: torch.Tensor, x: torch.Tensor,
                         y: torch.Tensor, timesteps: int) -> None:
        # x: (steps, B, N, C_in)
        record = self._record(name, kind, timesteps)
        _, batch, tokens, c_in = x.shape
        c_out = weight.shape[0]
        record.in_shape = (timesteps, tokens, c_in)
        record.out_shape = (timesteps, tokens, c_out)
        record.tokens_in = record.tokens_out = tokens
        record.gemm = (tokens, c_out, c_in, 1)
        record.weight = weight.detach()
        if self.shapes_only:
            return
        binary, integer = record.observe_input(x)
        record.observe_output(y)
        record.observe_counts(linear_counts(_magnitudes(x, record), record.weight, binary,
                                            integer))

    def _on_conv(self, name: str, module: nn.Conv2d, x: torch.Tensor, y: torch.Tensor) -> None:
        if module.groups != 1:
            raise ValueError(f"trace: {name}: grouped convolutions are not supported")
        record = self._record(name, "conv", self.timesteps)
        frames = x.reshape(self.timesteps, -1, *x.shape[1:])  # (T, B, C, H, W)
        c_in, height, width = x.shape[1:]
        c_out, h_out, w_out = y.shape[1:]
        kh, kw = module.kernel_size
        record.in_shape = (self.timesteps, c_in, height, width)
        record.out_shape = (self.timesteps, c_out, h_out, w_out)
        record.tokens_in, record.tokens_out = height * width, h_out * w_out
        record.gemm = (h_out * w_out, c_out, c_in * kh * kw, 1)
        record.weight = module.weight.detach()
        if self.shapes_only:
            return
        binary, integer = record.observe_input(x)
        record.observe_output(y)
        counts = conv2d_counts(_magnitudes(frames, record), record.weight, (h_out, w_out),
                               stride=module.stride, padding=module.padding,
                               dilation=module.dilation, binary=binary, integer=integer)
        record.observe_counts(counts)

    # --------------------------------------------------------------------- attention

    def _on_matmul(self, name: str, module: SpikeMatmul, inputs, out: torch.Tensor) -> None:
        a, b = inputs  # (T, B, heads, M, K), (T, B, heads, K, N)
        record = self._record(name, _MATMUL_KIND[module.role], self.timesteps)
        steps, _, heads, rows, inner = a.shape
        cols = b.shape[-1]
        record.in_shape = (steps, heads, rows, inner)
        record.out_shape = (steps, heads, rows, cols)
        record.tokens_in = record.tokens_out = rows
        record.gemm = (rows, cols, inner, heads)
        if self.shapes_only:
            return
        record.operand_nonzero += int(torch.count_nonzero(b))
        record.operand_count += b.numel()
        binary, integer = record.observe_input(a)
        record.observe_output(out)
        record.observe_counts(matmul_counts(_magnitudes(a, record), b, binary, integer))

    # --------------------------------------------------------------------- no-MAC rows

    def _on_lif(self, name: str, current: torch.Tensor, spikes: torch.Tensor) -> None:
        record = self._record(name, "lif", self.timesteps)
        per_step = _tokens_view(name, spikes, self.tokens_last)  # (T, B, N, C)
        steps, _, tokens, channels = per_step.shape
        record.in_shape = record.out_shape = (steps, *spikes.shape[2:])
        record.tokens_in = record.tokens_out = tokens
        if self.shapes_only:
            return
        record.observe_input(current, classify=False)  # a membrane current, real-valued
        record.observe_output(spikes)
        record.observe_events(per_step.sum(dim=(1, 3), dtype=F64),
                              per_step.sum(dim=(0, 2, 3), dtype=F64))

    def _on_pool(self, name: str, x: torch.Tensor, y: torch.Tensor) -> None:
        record = self._record(name, "pool", self.timesteps)
        frames = x.reshape(self.timesteps, -1, *x.shape[1:])  # (T, B, C, H, W)
        record.in_shape = (self.timesteps, *x.shape[1:])
        record.out_shape = (self.timesteps, *y.shape[1:])
        record.tokens_in = x.shape[2] * x.shape[3]
        record.tokens_out = y.shape[2] * y.shape[3]
        if self.shapes_only:
            return
        record.observe_input(x)
        record.observe_output(y)
        record.observe_events(frames.sum(dim=(1, 2), dtype=F64).flatten(1),
                              frames.sum(dim=(0, 2, 3, 4), dtype=F64))

    def _on_parameterless_selector(self, name: str, x: torch.Tensor, kept: torch.Tensor) -> None:
        # firing-rate / random scorers: no MACs, the rates are adds on the selector unit
        record = self._record(name, "selector", self.timesteps)
        steps, _, tokens, channels = x.shape  # (T, B, N, C)
        record.in_shape = (steps, tokens, channels)
        record.out_shape = (steps, kept.shape[2], channels)
        record.tokens_in, record.tokens_out = tokens, kept.shape[2]
        if self.shapes_only:
            return
        record.observe_input(x)
        record.observe_output(kept)
        record.observe_events(x.sum(dim=(1, 3), dtype=F64), x.sum(dim=(0, 2, 3), dtype=F64))


def _magnitudes(x: torch.Tensor, record: LayerRecord) -> torch.Tensor:
    """Signed real inputs (a selector MLP's GELU output) count events by magnitude."""
    return x.abs() if record.value_min < 0 else x  # value_min includes this batch


def _is_pointwise(module: nn.Module) -> bool:
    kernel = module.kernel_size if isinstance(module.kernel_size, tuple) else (module.kernel_size,)
    stride = module.stride if isinstance(module.stride, tuple) else (module.stride,)
    padding = module.padding if isinstance(module.padding, tuple) else (module.padding,)
    return all(k == 1 for k in kernel) and all(s == 1 for s in stride) and \
        all(p == 0 for p in padding)


def _tokens_view(name: str, spikes: torch.Tensor, tokens_last: bool) -> torch.Tensor:
    """A LIF's (T, B, ...) spikes as (T, B, N, C) for per-token counts."""
    steps, batch = spikes.shape[:2]
    if name.startswith("patch_embed."):  # (T, B, C, H, W)
        return spikes.flatten(3).transpose(2, 3)
    if tokens_last:  # (T, B, C, N) or (T, B, heads, d, N)
        return spikes.reshape(steps, batch, -1, spikes.shape[-1]).transpose(2, 3)
    return spikes.reshape(steps, batch, spikes.shape[2], -1)  # (T, B, N, ...)
