"""Kept-token counts: `kept_token_count` and synthetic traces against the hand-worked table
and against exact rational arithmetic (`fractions.Fraction`)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from kept_tokens_table import KEEP_RATIOS, KEPT_TOKENS, N0_VALUES
from spikformer_shapes import spikformer_shapes

from sparsespikformer.simulator import synthetic_trace
from sparsespikformer.simulator.tokens import kept_token_count


@pytest.mark.parametrize("n0, ratio", sorted(KEPT_TOKENS))
def test_kept_token_count_is_the_hand_table(n0, ratio):
    assert tuple(kept_token_count(n0, ratio, k) for k in (1, 2, 3)) == KEPT_TOKENS[n0, ratio]
    assert kept_token_count(n0, ratio, 0) == n0  # before the first selector: every token
    # the array form gives the same counts
    assert kept_token_count(np.full(3, n0), ratio, np.array([1, 2, 3])).tolist() == \
        list(KEPT_TOKENS[n0, ratio])


@pytest.mark.parametrize("ratio_text", ["0.9", "0.8", "0.7", "0.6", "0.5"])
def test_kept_token_count_is_the_exact_rational_truncation(ratio_text):
    """N = 1..1024, k = 1..3: max(1, floor(N · ρ^k)) with ρ as an exact decimal fraction."""
    ratio = Fraction(ratio_text)
    n = np.arange(1, 1025)
    for k in (1, 2, 3):
        expected = np.array([max(1, math.floor(int(n0) * ratio ** k)) for n0 in n])
        got = kept_token_count(n, float(ratio_text), k)
        wrong = np.flatnonzero(got != expected)[:5]
        assert wrong.size == 0, (f"k={k}: N0={n[wrong].tolist()} gives {got[wrong].tolist()}, "
                                 f"exact {expected[wrong].tolist()}")


def block_tokens(trace, block):
    """(tokens a block's Q projection sees, Q·Kᵀ rows, Q·Kᵀ columns)."""
    layers = trace.layers.set_index("layer")
    q = layers.loc[f"block.{block}.attn.q_linear"]
    qk = layers.loc[f"block.{block}.attn.qk_matmul"]
    return int(q.tokens_in), int(qk.gemm_m), int(qk.gemm_n)


@pytest.mark.parametrize("n0", N0_VALUES)
@pytest.mark.parametrize("ratio", KEEP_RATIOS)
def test_synthetic_keep_ratio_is_cumulative_on_depth_4_shapes(n0, ratio):
    """Selectors before blocks 1, 2, 3 of 4 leave N0·ρ, N0·ρ², N0·ρ³ tokens (cumulative)."""
    side = math.isqrt(n0)
    shapes = spikformer_shapes(depth=4, image=4 * side)  # two max-pools: side x side tokens
    trace = synthetic_trace(shapes, keep_ratio=ratio, timesteps=2, num_samples=2)
    assert block_tokens(trace, 0) == (n0, n0, n0)
    for block, kept in enumerate(KEPT_TOKENS[n0, ratio], start=1):
        assert block_tokens(trace, block) == (kept, kept, kept), block
    assert trace.manifest["keep_ratios"] == pytest.approx([ratio, ratio ** 2, ratio ** 3])


def test_kept_token_count_types_and_bounds():
    """A scalar call gives a Python int, an array call an int64 array; ρ = 1 keeps every
    token; the smallest valid values work and the first invalid ones are errors naming them."""
    assert type(kept_token_count(100, 0.7, 2)) is int
    counts = kept_token_count(np.array([64, 100]), 0.5, 1)
    assert counts.dtype == np.int64 and counts.tolist() == [32, 50]
    assert kept_token_count(196, 1.0, 3) == 196
    assert kept_token_count(1, 0.5, 3) == 1  # never fewer than one token
    assert kept_token_count(3, 1e-9, 1) == 1
    for ratio in (0.0, -0.5, 1.0000001, 2.0):
        with pytest.raises(ValueError, match=rf"keep_ratio must be in \(0, 1\], got {ratio!r}"):
            kept_token_count(64, ratio, 1)
    with pytest.raises(ValueError, match="N0 >= 1 and k >= 0, got 0, 1"):
        kept_token_count(0, 0.5, 1)
    with pytest.raises(ValueError, match="N0 >= 1 and k >= 0, got 64, -1"):
        kept_token_count(64, 0.5, -1)


def test_synthetic_keep_ratio_shrinks_every_token_axis_worked_by_hand():
    """N0 = 100 (a 40x40 image, two max-pools), D = 32, 4 heads of 8, MLP 128, ρ = 0.7: block 2
    keeps 49 tokens (table). Every token-indexed size of its rows, by hand:
      Q/K/V, projection: 49 x 32 = 1568 in and out, GEMM 49 x 32 x 32;
      Q.K^T: input 4 x 49 x 8 = 1568, output 4 x 49 x 49 = 9604, GEMM 49 x 49 x 8;
      (Q.K^T).V: input 9604, output 1568, GEMM 49 x 8 x 49;
      MLP: 1568 -> 49 x 128 = 6272 -> 1568; every LIF the size of its GEMM's output.
    Rows outside the blocks (patch embedding, head) and block 0 keep their sizes."""
    shapes = spikformer_shapes(depth=4, image=40)
    plain = synthetic_trace(shapes, timesteps=2, num_samples=2).layers.set_index("layer")
    layers = synthetic_trace(shapes, keep_ratio=0.7, timesteps=2,
                             num_samples=2).layers.set_index("layer")
    columns = ["tokens_in", "tokens_out", "in_numel", "out_numel", "gemm_m", "gemm_n",
               "gemm_k", "gemm_groups"]
    expected = {
        "q_linear": (49, 49, 1568, 1568, 49, 32, 32, 1),
        "k_lif": (49, 49, 1568, 1568, 0, 0, 0, 0),
        "qk_matmul": (49, 49, 1568, 9604, 49, 49, 8, 4),
        "av_matmul": (49, 49, 9604, 1568, 49, 8, 49, 4),
        "attn_lif": (49, 49, 1568, 1568, 0, 0, 0, 0),
        "proj_linear": (49, 49, 1568, 1568, 49, 32, 32, 1),
    }
    expected.update({"mlp.fc1_linear": (49, 49, 1568, 6272, 49, 128, 32, 1),
                     "mlp.fc1_lif": (49, 49, 6272, 6272, 0, 0, 0, 0),
                     "mlp.fc2_linear": (49, 49, 6272, 1568, 49, 32, 128, 1)})
    for suffix, values in expected.items():
        name = f"block.2.{suffix}" if suffix.startswith("mlp") else f"block.2.attn.{suffix}"
        assert tuple(layers.loc[name, columns]) == values, name
    untouched = [n for n in plain.index if not n.startswith(("block.1", "block.2", "block.3"))]
    assert len(untouched) > 10
    pd.testing.assert_frame_equal(layers.loc[untouched, columns], plain.loc[untouched, columns])
    assert layers.loc["block.3.attn.qk_matmul", "out_numel"] == 4 * 34 * 34  # ρ³: 34 tokens
