"""Exact per-sample operation counts of one layer, from its real input tensors.

Three counts (see docs/trace-format.md), each per sample and summed over timesteps:

* `sops`          = Σ input value × dense fan-out
* `effective_ops` = Σ input value × non-zero fan-out
* `nonzero_pairs` = Σ [input ≠ 0] × non-zero fan-out

A brute-force count would run the layer again with a 0/1 weight mask. Instead every count
is a weighted sum of the input, Σ_i x_i · fanout_i, where fanout_i is how many (non-zero)
weights input element i meets: for a linear map it depends only on the input feature; for a
convolution also on the position (fewer outputs reach the border), which `_conv_tap_sums`
handles exactly. Reductions accumulate in float64 (`sum(dtype=...)`, no float64 copy of the
input), so counts of spike and integer inputs are exact integers.

`binary` tells a kernel the input is all 0/1 (the recorder checks once per layer), so the
non-zero indicator is the input itself.

Speed: float64 accumulation is several times slower than float32 on CPU. Spike and integer
inputs are summed in float32 first, over at most one axis of a sample (a row of channels,
a row of positions, or a (timestep, token) over the batch): such partial sums stay far below
2**24, where float32 is exact, and only the small results go to float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

F64 = torch.float64


@dataclass(frozen=True)
class LayerCounts:
    """Per-sample counts, each a float64 tensor of shape (B,)."""

    sops: torch.Tensor
    effective_ops: torch.Tensor
    nonzero_pairs: torch.Tensor
    in_events: torch.Tensor  # Σ input values
    events_per_step_token: torch.Tensor  # (T, tokens): Σ input values, summed over the batch


def is_binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def _sum(x: torch.Tensor, dim, exact_f32: bool) -> torch.Tensor:
    """Sum over `dim` into float64; float32 partial sums where they are exact (see above)."""
    return x.sum(dim=dim).to(F64) if exact_f32 else x.sum(dim=dim, dtype=F64)


def _indicator(x: torch.Tensor, binary: bool | None) -> torch.Tensor:
    binary = is_binary(x) if binary is None else binary
    return x if binary else (x != 0).to(x.dtype)


def linear_counts(x: torch.Tensor, weight: torch.Tensor, binary: bool | None = None,
                  integer: bool = False) -> LayerCounts:
    """x: (T, B, N, C_in) input of a linear map with weight (C_out, C_in)."""
    nonzero_fanout = (weight != 0).sum(dim=0).to(F64)  # (C_in,) non-zero weights per input
    per_feature = _sum(x, (0, 2), integer)  # (B, C_in)
    per_feature_nz = _sum(_indicator(x, binary), (0, 2), True)
    return LayerCounts(
        sops=per_feature.sum(dim=1) * float(weight.shape[0]),
        effective_ops=per_feature @ nonzero_fanout,
        nonzero_pairs=per_feature_nz @ nonzero_fanout,
        in_events=per_feature.sum(dim=1),
        events_per_step_token=_sum(x, (1, 3), integer),  # (T, N)
    )


def _tap_positions(size: int, out_size: int, tap: int, stride: int, padding: int,
                   dilation: int) -> torch.Tensor:
    """Input indices that kernel tap `tap` reads over all output positions (inside the map)."""
    positions = tap * dilation - padding + stride * torch.arange(out_size)
    return positions[(positions >= 0) & (positions < size)]


def _conv_tap_sums(x: torch.Tensor, kernel: tuple[int, int], out_hw: tuple[int, int],
                   stride: tuple[int, int], padding: tuple[int, int],
                   dilation: tuple[int, int], exact_f32: bool = False) -> torch.Tensor:
    """S[b, c, i, j] = Σ over output positions of the input value kernel tap (i, j) reads.

    Σ_outputs conv(x, M) = Σ_{c,i,j} (Σ_o M[o,c,i,j]) · S[c,i,j], so every count follows
    from S, borders and padding included. Rows and columns separate, so S costs kw passes
    over the input. x: (B, C, H, W) -> (B, C * kh * kw) float64.
    """
    height, width = x.shape[2:]
    (kh, kw), (h_out, w_out) = kernel, out_hw
    taps = torch.empty(x.shape[0], x.shape[1], kh, kw, dtype=F64)
    for j in range(kw):
        cols = _tap_positions(width, w_out, j, stride[1], padding[1], dilation[1])
        column_sums = _sum(x.index_select(3, cols), 3, exact_f32)  # (B, C, H)
        for i in range(kh):
            rows = _tap_positions(height, h_out, i, stride[0], padding[0], dilation[0])
            taps[:, :, i, j] = column_sums.index_select(2, rows).sum(dim=2)
    return taps.flatten(1)


def conv2d_counts(x: torch.Tensor, weight: torch.Tensor, out_hw: tuple[int, int], stride=(1, 1),
                  padding=(0, 0), dilation=(1, 1), binary: bool | None = None,
                  integer: bool = False) -> LayerCounts:
    """x: (T, B, C_in, H, W) input of a conv with weight (C_out, C_in, kh, kw), groups=1."""
    steps, batch = x.shape[:2]
    kernel = tuple(weight.shape[2:])
    flat = x.flatten(0, 1)  # (T*B, C, H, W)
    args = (kernel, out_hw, stride, padding, dilation)
    taps = _conv_tap_sums(flat, *args, exact_f32=integer)  # (T*B, C*kh*kw)
    indicator = _indicator(flat, binary)
    taps_nz = taps if indicator is flat else _conv_tap_sums(indicator, *args, exact_f32=True)
    nonzero_fanout = (weight != 0).sum(dim=0).to(F64).flatten()  # (C*kh*kw,)

    def per_sample(values: torch.Tensor) -> torch.Tensor:  # (T*B,) -> (B,)
        return values.view(steps, batch).sum(dim=0)

    return LayerCounts(
        sops=per_sample(taps.sum(dim=1)) * float(weight.shape[0]),
        effective_ops=per_sample(taps @ nonzero_fanout),
        nonzero_pairs=per_sample(taps_nz @ nonzero_fanout),
        in_events=per_sample(_sum(flat, (2, 3), integer).sum(dim=1)),
        events_per_step_token=_sum(x, (1, 2), integer).flatten(1),  # (T, H*W)
    )


def matmul_counts(a: torch.Tensor, b: torch.Tensor, binary: bool | None = None,
                  integer: bool = False) -> LayerCounts:
    """a @ b between two activations, per head: a (T, B, heads, M, K), b (T, B, heads, K, N).

    `a` is the input, `b` the "weight" (Kᵀ for Q·Kᵀ, V for (Q·Kᵀ)·V). Input element a[m, j]
    meets the non-zeros of row j of b, so
    Σ_{m,j} a[m,j] · nnz(b[j, :]) = Σ_j (Σ_m a[m,j]) · nnz(b[j, :]).
    """
    b_row_nonzeros = (b != 0).sum(dim=4).to(F64)  # (T, B, heads, K)
    a_columns = _sum(a, 3, integer)  # (T, B, heads, K)
    a_columns_nz = _sum(_indicator(a, binary), 3, True)
    return LayerCounts(
        sops=a_columns.sum(dim=(0, 2, 3)) * b.shape[4],
        effective_ops=(a_columns * b_row_nonzeros).sum(dim=(0, 2, 3)),
        nonzero_pairs=(a_columns_nz * b_row_nonzeros).sum(dim=(0, 2, 3)),
        in_events=a_columns.sum(dim=(0, 2, 3)),
        events_per_step_token=_sum(a, (1, 2, 4), integer),  # (T, M): per row of a
    )
