"""Token counts after spiking token selectors: the one rule both the model and the simulator's
synthetic traces use.

SparseSpikformer (Liu et al., ICASSP 2024; docs/references.md) keeps ``int(N0 · ρ^k)`` tokens
after the k-th selector (cumulative keep ratios ρ, ρ², ρ³). ρ^k is computed in floating point,
where e.g. 100 · 0.7² is 48.99999999999999, so a small epsilon is added before truncation: the
count is the truncation of the exact product. The epsilon cannot round a true non-integer up:
for ρ with at most two decimals and k <= 3, N0 · ρ^k is a multiple of 10^-6, so a non-integer
lies at least 10^-6 below the next integer, far more than the epsilon; and for N0 <= 10^6 the
float product is within ~1e-10 of the exact one, so an exact integer is never missed.
(tests/simulator/test_tokens.py checks N0 = 1..1024 against exact rational arithmetic.)
"""

from __future__ import annotations

import numpy as np

from sparsespikformer.simulator.errors import InputError

RATIO_EPS = 1e-9  # int(64 · 0.5²) must be 16 and int(100 · 0.7²) 49, whatever float rounding


def kept_token_count(n_tokens0, keep_ratio: float, ordinal):
    """Tokens kept after the `ordinal`-th selector: ``max(1, int(N0 · ρ^k))``.

    Args:
        n_tokens0: tokens before the first selector, N0 >= 1 (an int or an integer array).
        keep_ratio: ρ in (0, 1].
        ordinal: k >= 0, how many selectors came before (0: no selection yet; an int or an
            integer array broadcast against `n_tokens0`).

    Returns:
        An int when both `n_tokens0` and `ordinal` are scalars, else an int64 array.

    Raises:
        InputError: ρ outside (0, 1], N0 < 1 or k < 0.
    """
    if not 0.0 < keep_ratio <= 1.0:
        raise InputError(f"keep_ratio must be in (0, 1], got {keep_ratio!r}")
    n = np.asarray(n_tokens0, dtype=np.int64)
    k = np.asarray(ordinal, dtype=np.int64)
    if (n < 1).any() or (k < 0).any():
        raise InputError(f"kept_token_count needs N0 >= 1 and k >= 0, got {n_tokens0}, {ordinal}")
    kept = np.maximum(1, np.floor(n * float(keep_ratio) ** k + RATIO_EPS)).astype(np.int64)
    return int(kept) if kept.ndim == 0 else kept
