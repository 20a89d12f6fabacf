"""Record a trace: run real samples through a real model and count what every layer does.

Forward hooks on the modules that compute (convolutions, linears, the attention products,
LIF neurons, max-pools, token selectors) observe their real inputs and outputs; nothing the
model computes is changed. Each hook reduces one batch to per-sample counts
(`trace_counts`) and value statistics (`tensor_stats`), accumulated per layer; a
`StatsCache` lets the layers that read one activation (Q, K and V the residual stream, a
linear its LIF's spikes, the second attention product the first's output) share a single
reduction. `record_trace` then assembles the schema-checked `Trace` (docs/trace-format.md).

Tensor layouts (see spikformer.py, sps.py, token_ops.py): convolutions and pools see
(T*B, C, H, W) or (T*B, C, N[, 1]) time-major; per-token linears see (T*B, N, C); LIFs see
(T, B, ...) with tokens on axis 2 (CIFAR form) or last (conv forms); the head sees (B, D);
a learned selector's MLP sees time-averaged tokens (B, N, C).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from sparsespikformer.model.nn.attention import SpikeMatmul
from sparsespikformer.model.nn.lif import LIF
from sparsespikformer.model.nn.token_selector import TokenSelector
from sparsespikformer.model.tracing.counts import (
    ConvGeometry,
    LayerCounts,
    ProductInputSums,
    TokenReductions,
    conv_counts_from,
    linear_counts_from,
    matmul_counts_from,
    nonzero_fanout,
    reduce_conv,
    reduce_matmul,
    reduce_product_input,
    reduce_product_output,
    reduce_tokens,
    sum_f64,
    taps_inside,
    token_events_counts,
)
from sparsespikformer.model.tracing.tensor_stats import (
    INDICATOR,
    StatsCache,
    TensorStats,
    nonzero_count,
    reads_float32,
    signed_total,
    spike_stats,
    summarize_real,
)
from sparsespikformer.simulator.errors import InputError

_BLOCK = re.compile(r"(?:^|\.)(?:block|token_selectors)\.(\d+)(?:\.|$)")
# Products whose output is the other product's input.
_FIRST_PRODUCTS = ("attn_qk", "attn_kv")
_MATMUL_KIND = {"attn_qk": "attn_qk", "attn_v": "attn_v", "attn_kv": "attn_qk", "attn_q": "attn_v"}


@dataclass
class LayerRecord:
    """Everything one layer's hook has seen, summed (or listed) over batches."""

    name: str
    kind: str
    timesteps: int
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()
    tokens_in: int = 0
    tokens_out: int = 0
    gemm: tuple[int, int, int, int] = (0, 0, 0, 0)  # m, n, k, groups
    weight: torch.Tensor | None = None
    fanout: np.ndarray | None = None  # non-zero weights per input feature, once per layer
    values_binary: bool = True
    values_integer: bool = True
    value_min: float = float("inf")
    value_max: float = float("-inf")
    value_sum: float = 0.0
    value_count: int = 0
    value_nonzero: float = 0.0
    out_nonzero: float = 0.0
    out_count: int = 0
    operand_nonzero: float = 0.0
    operand_count: int = 0
    taps_inside: int | None = None  # convs: (output, tap) pairs off the padding (counts.py)
    batch_counts: list[LayerCounts] = field(default_factory=list)
    batch_ternary: list[bool] = field(default_factory=list)  # each batch's input in {-1, 0, 1}

    def set_weight(self, weight: torch.Tensor) -> None:
        if self.weight is None:  # weights do not change while recording
            self.weight = weight.detach()
            self.fanout = None if weight.is_meta else nonzero_fanout(self.weight)

    def observe_input(self, stats: TensorStats, total: float, nonzero: float,
                      numel: int) -> None:
        self.values_binary &= stats.binary
        self.values_integer &= stats.integer
        self.value_min = min(self.value_min, stats.low)
        self.value_max = max(self.value_max, stats.high)
        self.value_sum += total
        self.value_count += numel
        self.value_nonzero += nonzero

    def observe_output(self, nonzero: float, numel: int) -> None:
        self.out_nonzero += nonzero
        self.out_count += numel

    def counts(self) -> LayerCounts:
        """Per-sample counts over every batch seen."""
        return LayerCounts.concat(self.batch_counts)


def _sum(sums: torch.Tensor) -> float:
    return float(sum_f64(sums))


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
        # Whether this batch also measures the real values no count depends on (membrane
        # currents, the outputs of weighted layers); `record_trace(real_stats_samples=N)`
        # turns it off after the first batches, for speed.
        self.describe_real_values = True
        self._cache = StatsCache()  # one forward pass's activation statistics
        self._handles: list = []

    def __enter__(self) -> TraceRecorder:
        for name, module in recorded_modules(self.model):
            self._handles.append(module.register_forward_hook(self._hook_for(name, module)))
        # The root's hook runs after every layer's: the batch's activations can go.
        self._handles.append(self.model.register_forward_hook(lambda *_: self._cache.clear()))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._cache.clear()
        self._cache.scratch.release()

    def _hook_for(self, name: str, module: nn.Module):
        return reads_float32(self._observer_for(name, module))

    def _observer_for(self, name: str, module: nn.Module):
        handler = _handler_of(module)
        if handler == "matmul":
            return lambda mod, inputs, out: self._on_matmul(name, mod, inputs, out)
        if handler == "lif":
            return lambda mod, inputs, out: self._on_lif(name, inputs[0], out)
        if handler == "pool":
            return lambda mod, inputs, out: self._on_pool(name, inputs[0], out)
        if handler == "selector":
            return lambda mod, inputs, out: self._on_parameterless_selector(name, inputs[0],
                                                                            out[0])
        return lambda mod, inputs, out: self._on_weighted(name, mod, inputs[0], out)

    def _record(self, name: str, kind: str, timesteps: int) -> LayerRecord:
        if name not in self.records:
            self.records[name] = LayerRecord(name=name, kind=kind, timesteps=timesteps)
        return self.records[name]

    def _observe_batch_input(self, record: LayerRecord, x: torch.Tensor, stats: TensorStats,
                             counts: LayerCounts, nonzero: float | None = None) -> None:
        """Keep the batch's counts; input statistics from them (events count magnitudes, so
        they give the input's total unless it has negative values) and `nonzero` (None:
        count it here)."""
        record.batch_counts.append(counts)
        record.batch_ternary.append(stats.integer and stats.low >= -1 and stats.high <= 1)
        events = float(counts.in_events.sum())
        if stats.binary:
            nonzero = events
        elif nonzero is None:
            nonzero = nonzero_count(x, self._cache.scratch)
        total = events if stats.nonnegative else signed_total(x, stats)
        record.observe_input(stats, total, nonzero, x.numel())

    def _reduce_tokens(self, x: torch.Tensor, stats: TensorStats, features: bool = True
                       ) -> TokenReductions:
        """Token reductions, shared by every layer reading x in this layout (a LIF's events
        and the next linear's counts; Q, K and V reading the residual stream)."""
        events = self._cache.memo(x, "token_events",
                                  lambda: reduce_tokens(x, stats, features=False))
        if not features:
            return events
        return self._cache.memo(x, "token_features",
                                lambda: reduce_tokens(x, stats, per_token=events.per_token,
                                                      scratch=self._cache.scratch))

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
        record.set_weight(weight)
        if self.shapes_only:
            return
        stats = self._cache.stats(x)
        reduced = self._reduce_tokens(x, stats)
        counts = linear_counts_from(reduced, c_out, record.fanout)
        nonzero = None if stats.binary else _sum(reduced.per_step_feature_nz)
        self._observe_batch_input(record, x, stats, counts, nonzero)
        if self.describe_real_values:
            record.observe_output(nonzero_count(y, self._cache.scratch), y.numel())

    def _on_conv(self, name: str, module: nn.Conv2d, x: torch.Tensor, y: torch.Tensor) -> None:
        if module.groups != 1:
            raise InputError(f"trace: {name}: grouped convolutions are not supported")
        record = self._record(name, "conv", self.timesteps)
        frames = x.reshape(self.timesteps, -1, *x.shape[1:])  # (T, B, C, H, W)
        c_in, height, width = x.shape[1:]
        c_out, h_out, w_out = y.shape[1:]
        kh, kw = module.kernel_size
        record.in_shape = (self.timesteps, c_in, height, width)
        record.out_shape = (self.timesteps, c_out, h_out, w_out)
        record.tokens_in, record.tokens_out = height * width, h_out * w_out
        record.gemm = (h_out * w_out, c_out, c_in * kh * kw, 1)
        record.set_weight(module.weight)
        geometry = ConvGeometry((kh, kw), (h_out, w_out), module.stride, module.padding,
                                module.dilation)
        record.taps_inside = taps_inside(geometry, height, width)
        if self.shapes_only:
            return
        stats = self._cache.stats(x)
        reduced = reduce_conv(frames, geometry, stats, self._cache.scratch)
        self._observe_batch_input(record, x, stats,
                                  conv_counts_from(reduced, c_out, record.fanout))
        if self.describe_real_values:
            record.observe_output(nonzero_count(y, self._cache.scratch), y.numel())

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
        scratch = self._cache.scratch
        stats_a, stats_b = self._cache.stats(a), self._cache.stats(b)
        a_sums = self._product_input(a, stats_a)
        reduced = reduce_matmul(a, b, stats_a, stats_b, scratch, a_sums)
        nonzero = None if stats_a.binary else a_sums.nonzero()
        self._observe_batch_input(record, a, stats_a, matmul_counts_from(reduced, cols), nonzero)
        record.operand_nonzero += _sum(reduced.b_row_nonzeros)
        record.operand_count += b.numel()
        if module.role in _FIRST_PRODUCTS:
            # Its output is the next product's input: describe and reduce it once, for both.
            out_stats, out_sums = reduce_product_output(out, a, b, stats_a, stats_b, reduced,
                                                        scratch)
            self._cache.set_stats(out, out_stats)
            self._cache.memo(out, "product_input", lambda: out_sums)
            record.observe_output(out_sums.nonzero(), out.numel())
        elif self.describe_real_values:
            record.observe_output(nonzero_count(out, scratch), out.numel())

    def _product_input(self, a: torch.Tensor, stats: TensorStats) -> ProductInputSums:
        return self._cache.memo(a, "product_input",
                                lambda: reduce_product_input(a, stats, self._cache.scratch))

    # --------------------------------------------------------------------- no-MAC rows

    def _on_lif(self, name: str, current: torch.Tensor, spikes: torch.Tensor) -> None:
        record = self._record(name, "lif", self.timesteps)
        per_step = _tokens_view(name, spikes, self.tokens_last)  # (T, B, N, C)
        steps, _, tokens, channels = per_step.shape
        record.in_shape = record.out_shape = (steps, *spikes.shape[2:])
        record.tokens_in = record.tokens_out = tokens
        if self.shapes_only:
            return
        if self.describe_real_values:
            # A membrane current: real values, no spike / integer classification.
            current_summary = summarize_real(current, self._cache.scratch)
            real = TensorStats(current_summary.low, current_summary.high, binary=False,
                               integer=False)
            record.observe_input(real, current_summary.total, current_summary.nonzero,
                                 current.numel())
        # The output is 0/1 by construction (a comparison written as 0.0 / 1.0): its sum
        # gives its statistics, which the layers reading these spikes then reuse.
        counts = token_events_counts(self._reduce_tokens(per_step, INDICATOR, features=False))
        record.batch_counts.append(counts)
        spikes_total = float(counts.in_events.sum())
        self._cache.set_stats(spikes, spike_stats(spikes_total, spikes.numel()))
        record.observe_output(spikes_total, spikes.numel())

    def _on_pool(self, name: str, x: torch.Tensor, y: torch.Tensor) -> None:
        record = self._record(name, "pool", self.timesteps)
        record.in_shape = (self.timesteps, *x.shape[1:])
        record.out_shape = (self.timesteps, *y.shape[1:])
        record.tokens_in = x.shape[2] * x.shape[3]
        record.tokens_out = y.shape[2] * y.shape[3]
        if self.shapes_only:
            return
        stats = self._cache.stats(x)
        frames = x.reshape(self.timesteps, -1, *x.shape[1:])  # (T, B, C, H, W)
        tokens = frames.flatten(3).transpose(2, 3)  # (T, B, H*W, C)
        reduced = self._reduce_tokens(tokens, stats, features=False)
        self._observe_batch_input(record, x, stats, token_events_counts(reduced))
        record.observe_output(nonzero_count(y, self._cache.scratch), y.numel())

    def _on_parameterless_selector(self, name: str, x: torch.Tensor, kept: torch.Tensor) -> None:
        # firing-rate / random scorers: no MACs, the rates are adds on the selector unit
        record = self._record(name, "selector", self.timesteps)
        steps, _, tokens, channels = x.shape  # (T, B, N, C)
        record.in_shape = (steps, tokens, channels)
        record.out_shape = (steps, kept.shape[2], channels)
        record.tokens_in, record.tokens_out = tokens, kept.shape[2]
        if self.shapes_only:
            return
        stats = self._cache.stats(x)
        reduced = self._reduce_tokens(x, stats, features=False)
        self._observe_batch_input(record, x, stats, token_events_counts(reduced))
        record.observe_output(nonzero_count(kept, self._cache.scratch), kept.numel())


def _handler_of(module: nn.Module) -> str | None:
    """Which recorder hook observes `module` (None: not recorded). The one list of types."""
    if isinstance(module, SpikeMatmul):
        return "matmul"
    if isinstance(module, LIF):
        return "lif"
    if isinstance(module, nn.MaxPool2d):
        return "pool"
    if isinstance(module, TokenSelector) and module.mlp is None:
        return "selector"  # a learned selector's MLP linears are recorded as weighted
    if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
        return "weighted"
    return None


def recorded_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The (name, module) pairs a `TraceRecorder` hooks, in `named_modules` order."""
    return [(name, module) for name, module in model.named_modules()
            if _handler_of(module) is not None]


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
