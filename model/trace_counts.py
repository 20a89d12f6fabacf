"""Exact per-sample operation counts of one layer, from its real input tensors.

Three counts (see docs/trace-format.md), each per sample and summed over timesteps:

* `sops`          = Σ input value × dense fan-out
* `effective_ops` = Σ input value × non-zero fan-out
* `nonzero_pairs` = Σ [input ≠ 0] × non-zero fan-out

A brute-force count would run the layer again with a 0/1 weight mask. Instead every count
is a weighted sum of the input: Σ_i x_i · fanout_i, where fanout_i is how many (non-zero)
weights input element i meets. For linear layers fanout_i depends only on the input feature;
for convolutions it also depends on the position (fewer outputs reach the border), which
`_conv_window_sums` handles exactly. Counting is done in float64: the sums are integers far
below 2**53 for spike inputs, so they are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LayerCounts:
    """Per-sample counts, each a float64 tensor of shape (B,)."""

    sops: torch.Tensor
    effective_ops: torch.Tensor
    nonzero_pairs: torch.Tensor
    in_events: torch.Tensor  # Σ input values
    events_per_step_token: torch.Tensor  # (T, tokens): Σ input values, summed over the batch


def _is_binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def linear_counts(x: torch.Tensor, weight: torch.Tensor) -> LayerCounts:
    """x: (T, B, N, C_in) input of a linear map with weight (C_out, C_in)."""
    x = x.double()
    nonzero_fanout = (weight != 0).sum(dim=0).double()  # (C_in,) non-zero weights per input
    dense_fanout = float(weight.shape[0])
    nonzero_x = x if _is_binary(x) else (x != 0).double()
    return LayerCounts(
        sops=x.sum(dim=(0, 2, 3)) * dense_fanout,
        effective_ops=(x @ nonzero_fanout).sum(dim=(0, 2)),
        nonzero_pairs=(nonzero_x @ nonzero_fanout).sum(dim=(0, 2)),
        in_events=x.sum(dim=(0, 2, 3)),
        events_per_step_token=x.sum(dim=(1, 3)),  # (T, N)
    )


def _conv_window_sums(x: torch.Tensor, kernel_size: tuple[int, int], stride, padding,
                      dilation) -> torch.Tensor:
    """S[b, c, i, j] = Σ over output positions of the input the kernel tap (i, j) reads.

    Σ_outputs conv(x, M) = Σ_{c,i,j} (Σ_o M[o,c,i,j]) · S[c,i,j], which gives every count
    exactly, borders and padding included, without a second convolution.
    x: (B, C, H, W) -> (B, C * kh * kw).
    """
    columns = F.unfold(x, kernel_size, dilation=dilation, padding=padding, stride=stride)
    return columns.sum(dim=2)  # (B, C*kh*kw)


def conv2d_counts(x: torch.Tensor, weight: torch.Tensor, stride=1, padding=0,
                  dilation=1) -> LayerCounts:
    """x: (T, B, C_in, H, W) input of a conv with weight (C_out, C_in, kh, kw), groups=1."""
    steps, batch = x.shape[:2]
    x = x.double()
    kernel = tuple(weight.shape[2:])
    flat = x.flatten(0, 1)  # (T*B, C, H, W)
    taps = _conv_window_sums(flat, kernel, stride, padding, dilation)  # (T*B, C*kh*kw)
    nonzero_x = flat if _is_binary(flat) else (flat != 0).double()
    taps_nz = taps if nonzero_x is flat else _conv_window_sums(nonzero_x, kernel, stride,
                                                               padding, dilation)
    nonzero_fanout = (weight != 0).sum(dim=0).double().flatten()  # (C*kh*kw,)
    per_sample = lambda values: values.view(steps, batch).sum(dim=0)  # noqa: E731
    return LayerCounts(
        sops=per_sample(taps.sum(dim=1)) * float(weight.shape[0]),
        effective_ops=per_sample(taps @ nonzero_fanout),
        nonzero_pairs=per_sample(taps_nz @ nonzero_fanout),
        in_events=x.sum(dim=(0, 2, 3, 4)),
        events_per_step_token=x.sum(dim=(1, 2)).flatten(1),  # (T, H*W)
    )


def attention_qk_counts(q: torch.Tensor, k: torch.Tensor) -> LayerCounts:
    """Q·Kᵀ per head. q, k: (T, B, heads, N, d); the "weight" is K.

    Σ_{n,m,c} q[n,c]·[k[m,c] ≠ 0] = Σ_c (Σ_n q[n,c]) · (Σ_m [k[m,c] ≠ 0]).
    """
    q, k = q.double(), k.double()
    tokens = q.shape[3]
    q_per_channel = q.sum(dim=3)  # (T, B, heads, d)
    q_nonzero = (q != 0).double().sum(dim=3)
    k_nonzero = (k != 0).double().sum(dim=3)
    return LayerCounts(
        sops=q.sum(dim=(0, 2, 3, 4)) * tokens,
        effective_ops=(q_per_channel * k_nonzero).sum(dim=(0, 2, 3)),
        nonzero_pairs=(q_nonzero * k_nonzero).sum(dim=(0, 2, 3)),
        in_events=q.sum(dim=(0, 2, 3, 4)),
        events_per_step_token=q.sum(dim=(1, 2, 4)),  # (T, N)
    )


def attention_v_counts(scores: torch.Tensor, v: torch.Tensor) -> LayerCounts:
    """(Q·Kᵀ)·V per head. scores: (T, B, heads, N, N) integers; v: (T, B, heads, N, d)."""
    scores, v = scores.double(), v.double()
    head_dim = v.shape[-1]
    v_nonzero = (v != 0).double().sum(dim=4)  # (T, B, heads, N): non-zeros in each row of V
    received = scores.sum(dim=3)  # (T, B, heads, N): Σ_n scores[n, m], per key token m
    received_nz = (scores != 0).double().sum(dim=3)
    return LayerCounts(
        sops=scores.sum(dim=(0, 2, 3, 4)) * head_dim,
        effective_ops=(received * v_nonzero).sum(dim=(0, 2, 3)),
        nonzero_pairs=(received_nz * v_nonzero).sum(dim=(0, 2, 3)),
        in_events=scores.sum(dim=(0, 2, 3, 4)),
        events_per_step_token=scores.sum(dim=(1, 2, 4)),  # (T, N): per query token
    )
