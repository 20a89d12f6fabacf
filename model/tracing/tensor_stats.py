"""Statistics of activation tensors, computed with the cheap CPU kernels, once per tensor.

Trace recording must stay cheap next to inference (issue: at most +25 %), and on CPU the
obvious kernels differ wildly in cost. Measured on a 2-core machine for 0.5 M float32
values: `sum` 12 µs, `amax` 20 µs, `sign` 36 µs, `dot` 11 µs, but `count_nonzero` 380 µs,
a comparison to a bool tensor about 300 µs, float64 accumulation 190 µs, and any reduction
over a transposed view several times its contiguous cost. So here:

* non-zero counts are Σ sign(x)², a sign pass and a dot product;
* the range is one `aminmax` pass (2 M values: 200 µs, against 300 µs for `amin` and `amax`);
* "every value is 0 or 1" is tested arithmetically: for x in [0, 1], x - x·x is 0 exactly
  at 0 and 1 and, rounded to float, still positive anywhere in between;
* layout-free statistics read a dense tensor in memory order, whatever its view;
* sums of integers run in float32 whenever every partial sum provably stays below 2**24
  (`exact_sum`), where float32 is exact, and only the small results go to float64.

`StatsCache` keys statistics by the memory a tensor covers, so the views different layers
take of one activation (the residual stream read by Q, K and V; a LIF's spikes read by the
next linear) share one computation. It lives for one forward pass.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import prod
from typing import Any

import torch

F64 = torch.float64
F32_EXACT_LIMIT = 2.0 ** 24  # float32 represents every integer below this exactly


@dataclass(frozen=True)
class TensorStats:
    """What kind of values a tensor holds, and their range."""

    low: float
    high: float
    binary: bool  # every value 0 or 1
    integer: bool  # every value an integer

    @property
    def bound(self) -> float:
        """The largest magnitude: with an element count it bounds every partial sum."""
        return max(abs(self.low), abs(self.high))

    @property
    def nonnegative(self) -> bool:
        return self.low >= 0


# What `exact_sum` needs to know about an indicator tensor [x != 0].
INDICATOR = TensorStats(low=0.0, high=1.0, binary=True, integer=True)


def spike_stats(total: float, numel: int) -> TensorStats:
    """Stats of a tensor known to hold only 0 and 1, from its sum."""
    return TensorStats(low=float(total >= numel), high=float(total > 0), binary=True,
                       integer=True)


@dataclass(frozen=True)
class RealSummary:
    """Range, sum and non-zero count of a real-valued tensor (a membrane current)."""

    low: float
    high: float
    total: float
    nonzero: float


class Scratch:
    """One reusable buffer for elementwise temporaries that are reduced right away.

    A freshly allocated multi-megabyte tensor page-faults on first touch (in a VM, a few
    ms per 8 MB, more than the arithmetic); a buffer reused across layers and batches is
    faulted once. A tensor from `like` is valid until the next call.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}

    def like(self, x: torch.Tensor) -> torch.Tensor:
        """Uninitialised, contiguous, with x's shape, dtype and device."""
        key = (x.dtype, x.device)
        buffer = self._buffers.get(key)
        if buffer is None or buffer.numel() < x.numel():
            buffer = self._buffers[key] = torch.empty(x.numel(), dtype=x.dtype,
                                                      device=x.device)
        return buffer[:x.numel()].view(x.shape)

    def release(self) -> None:
        self._buffers.clear()


def _temporary(x: torch.Tensor, scratch: Scratch | None) -> torch.Tensor | None:
    """An `out=` tensor for an elementwise op on x (None: let torch allocate one)."""
    return None if scratch is None else scratch.like(x)


def exact_sum(x: torch.Tensor, dim: int | Sequence[int] | None, stats: TensorStats
              ) -> torch.Tensor:
    """Σ over `dim` (None: everything), every value of the result exact.

    Float32 accumulation when the values are integers and (elements reduced) x (largest
    magnitude) < 2**24: every partial sum is then an integer float32 holds exactly, in any
    summation order, and the result stays float32 (callers sum it further in float64).
    Otherwise float64 accumulation and a float64 result.
    """
    dims = range(x.dim()) if dim is None else ((dim,) if isinstance(dim, int) else dim)
    reduced = prod(x.shape[d] for d in dims)
    if stats.integer and reduced * stats.bound < F32_EXACT_LIMIT:
        return x.sum() if dim is None else x.sum(dim=dim)
    x = float64_capable(x)
    return x.sum(dtype=F64) if dim is None else x.sum(dim=dim, dtype=F64)


def float64_capable(x: torch.Tensor) -> torch.Tensor:
    """x where float64 arithmetic runs: Apple GPUs (MPS) have none, so the CPU there."""
    return x.cpu() if x.device.type == "mps" else x


def indicator(x: torch.Tensor, stats: TensorStats, scratch: Scratch | None = None
              ) -> torch.Tensor:
    """[x != 0] in x's dtype (x itself when it is already 0/1)."""
    if stats.binary:
        return x
    signs = torch.sign(x, out=_temporary(x, scratch))
    return signs if stats.nonnegative else signs.abs_()


def magnitudes(x: torch.Tensor, stats: TensorStats) -> torch.Tensor:
    """|x| (x itself when non-negative): counts treat a signed value v as |v| events."""
    return x if stats.nonnegative else x.abs()


def classify(x: torch.Tensor, scratch: Scratch | None = None) -> TensorStats:
    """Range of `x`, and whether every value is 0/1, or an integer."""
    flat = _in_memory_order(x)
    low, high = _range(flat)
    binary = 0.0 <= low and high <= 1.0 and _all_binary(flat, scratch)
    integer = binary or _all_integer(flat, low >= 0, scratch)
    return TensorStats(low, high, binary, integer)


def summarize_real(x: torch.Tensor, scratch: Scratch | None = None) -> RealSummary:
    """Range, sum and non-zero count of real values (no classification)."""
    flat = _in_memory_order(x)
    return RealSummary(*_range(flat), _total(flat, exact=False, bound=0.0),
                       _nonzero(flat, scratch))


def signed_total(x: torch.Tensor, stats: TensorStats) -> float:
    """Σ x with signs (counts sum magnitudes; a signed input's mean needs this too)."""
    return _total(_in_memory_order(x), exact=stats.integer, bound=stats.bound)


def nonzero_count(x: torch.Tensor, scratch: Scratch | None = None) -> float:
    """How many elements of `x` are not 0 (as a float, exact)."""
    return _nonzero(_in_memory_order(x), scratch)


def _in_memory_order(x: torch.Tensor) -> torch.Tensor:
    """x's elements as a 1-D tensor, a view in memory order when x is dense.

    Reductions over a transposed view (a BatchNorm output, a head split) run several
    times slower than over the same memory read in order; the statistics here do not
    depend on the order.
    """
    if x.is_contiguous():
        return x.view(-1)
    by_stride = sorted(range(x.dim()), key=x.stride, reverse=True)
    return x.permute(by_stride).reshape(-1)  # a view if dense, otherwise a copy


def _range(flat: torch.Tensor) -> tuple[float, float]:
    """(min, max) in one pass (a third less than amin and amax apart)."""
    low, high = torch.aminmax(flat)
    return float(low), float(high)


def _total(flat: torch.Tensor, exact: bool, bound: float) -> float:
    """Σ of a 1-D tensor: float32 partial sums over rows, float64 over the row sums.

    `exact` (integer values): rows short enough that every partial sum stays below 2**24,
    so the total is exact. Otherwise rows of 4096 values: deterministic, float32-accurate.
    """
    if exact:  # every row sum at most half the limit
        row = flat.numel() if bound == 0 else max(1, int(F32_EXACT_LIMIT // (2 * bound)))
    else:
        row = 4096
    flat = float64_capable(flat)
    if row >= flat.numel():
        return float(flat.sum(dtype=F64) if flat.dtype == F64 else flat.sum())
    full = flat.numel() - flat.numel() % row
    partial = flat[:full].view(-1, row).sum(dim=1).sum(dtype=F64)
    return float(partial + flat[full:].sum(dtype=F64))


def _nonzero(flat: torch.Tensor, scratch: Scratch | None) -> float:
    """Σ sign(x)²: one elementwise pass and a dot product, both fast kernels."""
    signs = torch.sign(flat, out=_temporary(flat, scratch))
    if flat.numel() < F32_EXACT_LIMIT:  # the dot's partial sums are integers below 2**24
        return float(torch.dot(signs, signs))
    return _total(signs.abs_(), exact=True, bound=1.0)


def _all_binary(flat: torch.Tensor, scratch: Scratch | None) -> bool:
    """For x within [0, 1]: True when every value is exactly 0 or 1.

    x - x·x is >= 0 there (also after rounding) and 0 only at 0 and 1; a sum of
    non-negative floats is 0 only if every term is.
    """
    residues = torch.addcmul(flat, flat, flat, value=-1.0, out=_temporary(flat, scratch))
    return float(residues.sum()) == 0.0


def _all_integer(flat: torch.Tensor, nonnegative: bool, scratch: Scratch | None) -> bool:
    """True when every value is an integer: Σ |frac(x)| == 0 (no term can round away)."""
    fractions = torch.frac(flat, out=_temporary(flat, scratch))
    if not nonnegative:  # frac keeps the sign of x
        fractions.abs_()
    return float(fractions.sum()) == 0.0


def _covers_dense_block(x: torch.Tensor) -> bool:
    """True when x's elements fill one contiguous stretch of memory, in any axis order."""
    expected = 1
    for stride, size in sorted((s, n) for s, n in zip(x.stride(), x.shape, strict=True)
                               if n > 1):
        if stride != expected:
            return False
        expected *= size
    return True


class StatsCache:
    """Statistics and derived reductions of activations, shared by the layers that read them.

    A dense view of a tensor (any axis order) covers the same elements as the tensor, so its
    layout-free statistics are keyed by the memory it covers and its version counter (an
    in-place write invalidates). Layout-specific reductions (`memo`) add the shape and
    strides to the key. An entry keeps only a weak reference to the tensor's storage: memory
    is freed as soon as the model lets go of it (holding activations longer makes the
    forward pass's later allocations fresh, page-faulting memory), and an entry whose
    storage has died never answers for a new tensor that reuses the address.
    """

    def __init__(self) -> None:
        self.scratch = Scratch()
        self._entries: dict[tuple, tuple[weakref.ref, Any]] = {}

    def stats(self, x: torch.Tensor) -> TensorStats:
        return self.memo(x, "stats", lambda: classify(x, self.scratch), layout=False)

    def set_stats(self, x: torch.Tensor, stats: TensorStats) -> None:
        """Stats known without reading x (a LIF's output is 0/1 by construction)."""
        self.memo(x, "stats", lambda: stats, layout=False)

    def memo(self, x: torch.Tensor, label: Any, compute: Callable[[], Any],
             layout: bool = True) -> Any:
        """`compute()`, or its cached result for the same elements of x in the same layout."""
        key = (_memory_key(x, layout or not _covers_dense_block(x)), label)
        storage = x.untyped_storage()
        entry = self._entries.get(key)
        if entry is None or entry[0]() is not storage:
            entry = self._entries[key] = (weakref.ref(storage), compute())
        return entry[1]

    def clear(self) -> None:
        """Forget every entry (after each forward pass); the scratch buffer stays."""
        self._entries.clear()


def _memory_key(x: torch.Tensor, with_layout: bool) -> tuple:
    start = x.untyped_storage().data_ptr() + x.storage_offset() * x.element_size()
    # Inference-mode tensors have no version counter (and cannot be written in place later).
    version = None if x.is_inference() else x._version
    key = (start, x.numel(), x.dtype, version)
    return key + (tuple(x.shape), x.stride()) if with_layout else key


def reads_float32(hook):
    """A forward hook that works in float32 under autocast: it sees half-precision tensors
    converted to float32 (exact: every bf16 / fp16 value is a float32) and its own
    reductions (sums, tap matmuls) are not lowered, since the exact float32 sums here
    assume float32."""
    def float32_hook(module, inputs, out):
        outs = out if isinstance(out, tuple) else (out,)
        tensors = [t for t in (*inputs, *outs) if torch.is_tensor(t)]
        if not any(_is_half(t) for t in tensors) and not _autocasting(tensors):
            return hook(module, inputs, out)
        inputs = tuple(_float32(t) for t in inputs)
        out = tuple(_float32(t) for t in outs) if isinstance(out, tuple) else _float32(out)
        with torch.autocast(tensors[0].device.type, enabled=False):
            return hook(module, inputs, out)
    return float32_hook


def _autocasting(tensors: list[torch.Tensor]) -> bool:
    device = tensors[0].device.type if tensors else "cpu"
    return device in ("cpu", "cuda", "mps") and torch.is_autocast_enabled(device)


def _is_half(t) -> bool:
    return torch.is_tensor(t) and t.dtype in (torch.float16, torch.bfloat16)


def _float32(t):
    return t.float() if _is_half(t) else t
