"""Tokens kept after the k-th token selector, int(N0 · ρ^k), worked by hand in exact
rational arithmetic (SparseSpikformer, Liu et al., ICASSP 2024; docs/references.md).

The oracle of the model's selectors, `kept_token_count`, synthetic traces and recorded traces.
Written out literally: never computed by the code under test. Each comment gives the exact
products N0·ρ, N0·ρ², N0·ρ³; the count is their integer part. Several products are exact
integers (64·0.5^k, 100·0.7² = 49, 100·0.9² = 81, 196·0.5² = 49) that floating point lands
just below (100 · 0.7 ** 2 = 48.99999999999999): a truncation that forgets this keeps one
token too few.
"""

from __future__ import annotations

N0_VALUES = (64, 100, 196)  # CIFAR 8x8, a 10x10 grid, ImageNet 14x14
KEEP_RATIOS = (0.5, 0.7, 0.9)

# (N0, ρ) -> tokens kept after selectors k = 1, 2, 3
KEPT_TOKENS = {
    (64, 0.5): (32, 16, 8),        # 32, 16, 8 (exact)
    (64, 0.7): (44, 31, 21),       # 44.8, 31.36, 21.952
    (64, 0.9): (57, 51, 46),       # 57.6, 51.84, 46.656
    (100, 0.5): (50, 25, 12),      # 50, 25, 12.5
    (100, 0.7): (70, 49, 34),      # 70, 49 (exact), 34.3
    (100, 0.9): (90, 81, 72),      # 90, 81 (exact), 72.9
    (196, 0.5): (98, 49, 24),      # 98, 49, 24.5
    (196, 0.7): (137, 96, 67),     # 137.2, 96.04, 67.228
    (196, 0.9): (176, 158, 142),   # 176.4, 158.76, 142.884
}
