"""Exact per-sample operation counts of one layer, from its real input tensors.

Three counts (see docs/trace-format.md), each per sample and summed over timesteps:

* `sops`          = Σ input value × dense fan-out
* `effective_ops` = Σ input value × non-zero fan-out
* `nonzero_pairs` = Σ [input ≠ 0] × non-zero fan-out

A brute-force count would run the layer again with a 0/1 weight mask. Instead every count
is a weighted sum of the input, Σ_i x_i · fanout_i, where fanout_i is how many (non-zero)
weights input element i meets: for a linear map it depends only on the input feature; for a
convolution also on the position (fewer outputs reach the border), which `conv_tap_sums`
handles exactly. A signed input counts by magnitude.

Two stages, so that recording stays cheap: `reduce_*` shrinks a batch's input to a few small
sums (the only passes over the activation); `*_counts_from` turns them into the batch's
per-sample counts in numpy, where small-array operations cost a few µs, several times less
than in torch. `LayerCounts.concat` joins the batches. Reductions go through
`tensor_stats.exact_sum` (float32 where the partial sums of integer inputs provably stay
exact), and numpy sums them in float64, so counts of spike and integer inputs are exact
integers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from sparsespikformer.model.tracing.tensor_stats import (
    F32_EXACT_LIMIT,
    F64,
    INDICATOR,
    Scratch,
    TensorStats,
    classify,
    exact_sum,
    float64_capable,
    indicator,
    magnitudes,
)

F64_NP = np.float64


@dataclass(frozen=True)
class LayerCounts:
    """Per-sample counts, each a float64 array of shape (B,)."""

    sops: np.ndarray
    effective_ops: np.ndarray
    nonzero_pairs: np.ndarray
    in_events: np.ndarray  # Σ input values
    events_per_step_token: np.ndarray  # (T, tokens): Σ input values, summed over the batch

    @staticmethod
    def concat(batches: list[LayerCounts]) -> LayerCounts:
        def joined(name: str) -> np.ndarray:
            return np.concatenate([getattr(b, name) for b in batches])

        return LayerCounts(joined("sops"), joined("effective_ops"), joined("nonzero_pairs"),
                           joined("in_events"),
                           np.sum([b.events_per_step_token for b in batches], axis=0))

    @staticmethod
    def events_only(events: np.ndarray, per_sample: np.ndarray) -> LayerCounts:
        """A row without MACs (LIF: output spikes; pool, selector: input values)."""
        zeros = np.zeros_like(per_sample)
        return LayerCounts(zeros, zeros, zeros, per_sample, events)


def host(x: torch.Tensor) -> np.ndarray:
    """A (small) reduction result as a numpy array: copied from the GPU if it is there
    (free for a CPU tensor)."""
    return x.detach().cpu().numpy()


def sum_f64(x: torch.Tensor, axis=None) -> np.ndarray:
    """Σ of a (small) reduction result over `axis` (None: all) in float64 numpy: exact for
    its integers, and a few µs where a torch call costs ten."""
    return host(x).sum(axis=axis, dtype=F64_NP)


def _per_sample(x: np.ndarray) -> np.ndarray:
    """(T, B, ...) -> (B,)."""
    return x.sum(axis=tuple(a for a in range(x.ndim) if a != 1))


def nonzero_fanout(weight: torch.Tensor) -> np.ndarray:
    """Non-zero weights each input feature (and kernel tap) meets: (C_in[*kh*kw],) float64."""
    return host((weight.detach().flatten(1) != 0).sum(dim=0)).astype(F64_NP)


# ------------------------------------------------------------------------- token inputs

@dataclass(frozen=True)
class TokenReductions:
    """Of one batch's (T, B, N, C) token input: what a linear map's counts and events need."""

    per_token: torch.Tensor  # (T, B, N): Σ over channels
    per_step_feature: torch.Tensor | None  # (T, B, C): Σ over tokens
    per_step_feature_nz: torch.Tensor | None  # the same for [x != 0]; None when x is 0/1


def reduce_tokens(x: torch.Tensor, stats: TensorStats, features: bool = True,
                  per_token: torch.Tensor | None = None, scratch: Scratch | None = None
                  ) -> TokenReductions:
    """x: (T, B, N, C) in any memory layout. `features=False`: events only (no MACs);
    `per_token`: that part already computed; `scratch` for the temporary indicator."""
    x = magnitudes(x, stats)
    per_token = exact_sum(x, 3, stats) if per_token is None else per_token
    if not features:
        return TokenReductions(per_token, None, None)
    nonzero = None if stats.binary else exact_sum(indicator(x, stats, scratch), 2, INDICATOR)
    return TokenReductions(per_token, exact_sum(x, 2, stats), nonzero)


def token_events(r: TokenReductions | ConvReductions) -> tuple[np.ndarray, np.ndarray]:
    """(T, N) events summed over the batch, and (B,) per sample."""
    per_token = host(r.per_token)
    return per_token.sum(axis=1, dtype=F64_NP), per_token.sum(axis=(0, 2), dtype=F64_NP)


def token_events_counts(r: TokenReductions) -> LayerCounts:
    return LayerCounts.events_only(*token_events(r))


def linear_counts_from(r: TokenReductions, out_features: int,
                       fanout: np.ndarray) -> LayerCounts:
    """Counts of a linear map (out_features, C_in) with the given non-zero fan-out."""
    events, per_sample = token_events(r)
    features = sum_f64(r.per_step_feature, 0)  # (B, C)
    nonzero = features if r.per_step_feature_nz is None else sum_f64(r.per_step_feature_nz, 0)
    return LayerCounts(
        sops=per_sample * float(out_features),
        effective_ops=features @ fanout,
        nonzero_pairs=nonzero @ fanout,
        in_events=per_sample,
        events_per_step_token=events,
    )


def linear_counts(x: torch.Tensor, weight: torch.Tensor) -> LayerCounts:
    """x: (T, B, N, C_in) input of a linear map with weight (C_out, C_in)."""
    return linear_counts_from(reduce_tokens(x, classify(x)), weight.shape[0],
                              nonzero_fanout(weight))


# ------------------------------------------------------------------------- convolutions

@dataclass(frozen=True)
class ConvGeometry:
    kernel: tuple[int, int]
    out_hw: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]


@dataclass(frozen=True)
class ConvReductions:
    """Of one batch's (T, B, C, H, W) conv input."""

    per_token: torch.Tensor  # (T, B, H*W): Σ over channels
    taps: torch.Tensor  # (T, B, C*kh*kw): see conv_tap_sums
    taps_nz: torch.Tensor | None  # the same for [x != 0]; None when x is 0/1


@functools.lru_cache(maxsize=64)
def _tap_selector(size: int, out_size: int, taps: int, stride: int, padding: int,
                  dilation: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(taps, size) 0/1: which input rows (or columns) kernel tap i reads over all outputs.

    Cached (one per layer geometry and device): callers must not modify it.
    """
    selector = torch.zeros(taps, size, dtype=dtype)
    for tap in range(taps):
        positions = tap * dilation - padding + stride * torch.arange(out_size)
        selector[tap, positions[(positions >= 0) & (positions < size)]] = 1
    return selector.to(device)


def taps_inside(geometry: ConvGeometry, height: int, width: int) -> int:
    """(output position, kernel tap) pairs whose tap reads inside the (H, W) input, i.e.
    not a padding zero: Σ_i rows(i) · Σ_j cols(j), rows(i) the output rows whose tap row i
    lands inside. Times C_in · C_out it is NeuroBench's dense count of a conv, which runs
    the layer with all-ones weights on an all-ones input (padding stays zero)."""
    (kh, kw), (h_out, w_out) = geometry.kernel, geometry.out_hw
    cpu = torch.device("cpu")  # a count of the geometry alone: no tensor to follow
    rows = _tap_selector(height, h_out, kh, geometry.stride[0], geometry.padding[0],
                         geometry.dilation[0], torch.float64, cpu)
    cols = _tap_selector(width, w_out, kw, geometry.stride[1], geometry.padding[1],
                         geometry.dilation[1], torch.float64, cpu)
    return int(rows.sum()) * int(cols.sum())


def conv_tap_sums(x: torch.Tensor, geometry: ConvGeometry, stats: TensorStats) -> torch.Tensor:
    """S[b, c, i, j] = Σ over output positions of the input value kernel tap (i, j) reads.

    Σ_outputs conv(x, M) = Σ_{c,i,j} (Σ_o M[o,c,i,j]) · S[c,i,j], so every count follows
    from S, borders and padding included. Rows and columns separate:
    S = R · x · Cᵀ with 0/1 tap selectors R (kh, H) and C (kw, W), two small matmuls.
    x: (B, C, H, W) non-negative -> (B, C * kh * kw), float32 when exact, else float64.
    """
    height, width = x.shape[2:]
    (kh, kw), (h_out, w_out) = geometry.kernel, geometry.out_hw
    # One output of R·x·Cᵀ sums at most H·W inputs: float32 is exact for integers if small.
    exact_f32 = stats.integer and height * width * stats.bound < 2.0 ** 24
    values = x if exact_f32 else float64_capable(x).to(F64)
    rows = _tap_selector(height, h_out, kh, geometry.stride[0], geometry.padding[0],
                         geometry.dilation[0], values.dtype, values.device)
    cols = _tap_selector(width, w_out, kw, geometry.stride[1], geometry.padding[1],
                         geometry.dilation[1], values.dtype, values.device)
    column_taps = values @ cols.T  # (B, C, H, kw)
    # (B, C, kw, H) @ (H, kh): one GEMM rather than a batch of tiny ones
    taps = column_taps.transpose(2, 3) @ rows.T  # (B, C, kw, kh)
    return taps.transpose(2, 3).flatten(1)


def reduce_conv(x: torch.Tensor, geometry: ConvGeometry, stats: TensorStats,
                scratch: Scratch | None = None) -> ConvReductions:
    """x: (T, B, C, H, W)."""
    steps, batch = x.shape[:2]
    x = magnitudes(x, stats)
    flat = x.flatten(0, 1)  # (T*B, C, H, W)
    taps = conv_tap_sums(flat, geometry, stats).view(steps, batch, -1)
    taps_nz = None if stats.binary else \
        conv_tap_sums(indicator(flat, stats, scratch), geometry, INDICATOR).view(steps, batch, -1)
    return ConvReductions(per_token=exact_sum(x, 2, stats).flatten(2), taps=taps,
                          taps_nz=taps_nz)


def conv_counts_from(r: ConvReductions, out_channels: int,
                     fanout: np.ndarray) -> LayerCounts:
    taps = sum_f64(r.taps, 0)  # (B, C*kh*kw)
    taps_nz = taps if r.taps_nz is None else sum_f64(r.taps_nz, 0)
    events, per_sample = token_events(r)
    return LayerCounts(
        sops=taps.sum(axis=1) * float(out_channels),
        effective_ops=taps @ fanout,
        nonzero_pairs=taps_nz @ fanout,
        in_events=per_sample,
        events_per_step_token=events,
    )


def conv2d_counts(x: torch.Tensor, weight: torch.Tensor, out_hw: tuple[int, int], stride=(1, 1),
                  padding=(0, 0), dilation=(1, 1)) -> LayerCounts:
    """x: (T, B, C_in, H, W) input of a conv with weight (C_out, C_in, kh, kw), groups=1."""
    geometry = ConvGeometry(tuple(weight.shape[2:]), tuple(out_hw), tuple(stride),
                            tuple(padding), tuple(dilation))
    return conv_counts_from(reduce_conv(x, geometry, classify(x)), weight.shape[0],
                            nonzero_fanout(weight))


# ------------------------------------------------------------------------- attention products

@dataclass(frozen=True)
class MatmulReductions:
    """Of one batch's a @ b, a (T, B, heads, M, K) the input, b (T, B, heads, K, N)."""

    a_rows: torch.Tensor  # (T, B, heads, M): Σ over K
    a_columns: torch.Tensor  # (T, B, heads, K): Σ over M
    a_columns_nz: torch.Tensor | None  # the same for [a != 0]; None when a is 0/1
    b_row_nonzeros: torch.Tensor  # (T, B, heads, K): non-zeros per row of b


@dataclass(frozen=True)
class ProductInputSums:
    """The input side of a @ b: it depends on a alone, so a product's output can be reduced
    once for both its own output statistics and the next product that reads it."""

    rows: torch.Tensor  # (T, B, heads, M): Σ over K
    columns: torch.Tensor  # (T, B, heads, K): Σ over M
    columns_nz: torch.Tensor | None  # the same for [a != 0]; None when a is 0/1

    def nonzero(self) -> float:
        return float(sum_f64(self.columns if self.columns_nz is None else self.columns_nz))


def reduce_product_input(a: torch.Tensor, stats: TensorStats, scratch: Scratch | None = None
                         ) -> ProductInputSums:
    """a: (T, B, heads, M, K)."""
    a = magnitudes(a, stats)
    nonzero = None if stats.binary else exact_sum(indicator(a, stats, scratch), 3, INDICATOR)
    return ProductInputSums(rows=exact_sum(a, 4, stats), columns=exact_sum(a, 3, stats),
                            columns_nz=nonzero)


def reduce_product_output(product: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                          stats_a: TensorStats, stats_b: TensorStats, reduced: MatmulReductions,
                          scratch: Scratch | None = None
                          ) -> tuple[TensorStats, ProductInputSums]:
    """Stats of product = a @ b and its input-side sums, for the product that reads it next.

    Non-negative integer operands (spikes) give a non-negative integer product, computed
    exactly in float32 while no partial sum reaches 2**24, whose row and column sums follow
    from the operands': rows = a · (b 1), columns = (1ᵀ a) · b, two small matmuls instead of
    two passes over the product (the attention map, the largest activation). Only its
    maximum and non-zero pattern need the product itself. Other operands: read it all.
    """
    rows, inner = a.shape[-2], a.shape[-1]
    largest = max(rows, b.shape[-1]) * inner * stats_a.bound * stats_b.bound
    if not (stats_a.integer and stats_b.integer and stats_a.nonnegative
            and stats_b.nonnegative and largest < F32_EXACT_LIMIT):
        stats = classify(product, scratch)
        return stats, reduce_product_input(product, stats, scratch)
    high = float(product.amax())
    kind = TensorStats(low=0.0, high=high, binary=high <= 1.0, integer=True)
    b_row_sums = reduced.b_row_nonzeros if stats_b.binary else exact_sum(b, 4, stats_b)
    sums = ProductInputSums(
        rows=torch.matmul(a, b_row_sums.to(a.dtype).unsqueeze(-1)).squeeze(-1),
        columns=torch.matmul(reduced.a_columns.to(b.dtype).unsqueeze(-2), b).squeeze(-2),
        columns_nz=None if kind.binary else
        exact_sum(indicator(product, kind, scratch), 3, INDICATOR))
    # Non-negative: the minimum is 0 unless every entry is non-zero.
    if sums.nonzero() == product.numel():
        kind = TensorStats(float(product.amin()), high, kind.binary, integer=True)
    return kind, sums


def reduce_matmul(a: torch.Tensor, b: torch.Tensor, stats_a: TensorStats,
                  stats_b: TensorStats, scratch: Scratch | None = None,
                  a_sums: ProductInputSums | None = None) -> MatmulReductions:
    """`a_sums`: the input side, if already reduced."""
    a_sums = reduce_product_input(a, stats_a, scratch) if a_sums is None else a_sums
    b_row_nonzeros = exact_sum(indicator(b, stats_b, scratch), 4, INDICATOR)
    return MatmulReductions(a_rows=a_sums.rows, a_columns=a_sums.columns,
                            a_columns_nz=a_sums.columns_nz, b_row_nonzeros=b_row_nonzeros)


def matmul_counts_from(r: MatmulReductions, b_columns: int) -> LayerCounts:
    """Input element a[m, j] meets the non-zeros of row j of b, so
    Σ_{m,j} a[m,j] · nnz(b[j, :]) = Σ_j (Σ_m a[m,j]) · nnz(b[j, :]).
    """
    columns = host(r.a_columns).astype(F64_NP)
    columns_nz = columns if r.a_columns_nz is None else host(r.a_columns_nz).astype(F64_NP)
    b_nonzeros = host(r.b_row_nonzeros).astype(F64_NP)
    per_sample = _per_sample(columns)
    return LayerCounts(
        sops=per_sample * float(b_columns),
        effective_ops=_per_sample(columns * b_nonzeros),
        nonzero_pairs=_per_sample(columns_nz * b_nonzeros),
        in_events=per_sample,
        events_per_step_token=sum_f64(r.a_rows, (1, 2)),  # (T, M): per row of a
    )


def matmul_counts(a: torch.Tensor, b: torch.Tensor) -> LayerCounts:
    """a @ b between two activations, per head: a (T, B, heads, M, K), b (T, B, heads, K, N).

    `a` is the input, `b` the "weight" (Kᵀ for Q·Kᵀ, V for (Q·Kᵀ)·V).
    """
    return matmul_counts_from(reduce_matmul(a, b, classify(a), classify(b)), b.shape[4])
