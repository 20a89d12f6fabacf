"""The spiking token selector on its own: counts, scorers, gathering, training masks."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from kept_tokens_table import KEEP_RATIOS, KEPT_TOKENS, N0_VALUES

from sparsespikformer.model.nn.token_selector import (
    TokenSelector,
    build_token_selectors,
    kept_token_count,
    token_selectors_of,
)

# int(64 · ρ^k) worked by hand, k = 1, 2, 3 (SparseSpikformer: 64 CIFAR tokens)
HAND_COUNTS_64 = {
    0.9: (57, 51, 46),     # 57.6, 51.84, 46.656
    0.8: (51, 40, 32),     # 51.2, 40.96, 32.768
    0.7: (44, 31, 21),     # 44.8, 31.36, 21.952
    0.6: (38, 23, 13),     # 38.4, 23.04, 13.824
    0.5: (32, 16, 8),      # exact powers of two: must not round down to 31, 15, 7
}


@pytest.mark.parametrize("ratio", sorted(HAND_COUNTS_64))
def test_kept_token_count_per_selector(ratio):
    assert tuple(kept_token_count(64, ratio, k) for k in (1, 2, 3)) == HAND_COUNTS_64[ratio]


def _spikes(T=2, B=3, N=16, C=8, seed=0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, N, C, generator=generator) < 0.4).float()   # (T, B, N, C)


# int(16 · ρ^k) by hand: 14.4, 12.96, 11.664; 11.2, 7.84, 5.488; 8, 4, 2
HAND_COUNTS_16 = {0.9: (14, 12, 11), 0.7: (11, 7, 5), 0.5: (8, 4, 2)}


@pytest.mark.parametrize("ratio", sorted(HAND_COUNTS_16))
def test_chain_of_selectors_removes_tokens_at_inference(ratio):
    selectors = build_token_selectors(dim=8, n_tokens0=16, blocks=(1, 2, 3), keep_ratio=ratio,
                                      scorer="learned").eval()
    x = _spikes()
    for key, kept in zip(("1", "2", "3"), HAND_COUNTS_16[ratio], strict=True):
        x, mask = selectors[key](x, None)
        assert mask is None
        assert x.shape == (2, 3, kept, 8)


def _three_selector_model(n0: int, ratio: float):
    """Depth 4, selectors before blocks 1, 2, 3; one max-pool: an image of side 2·sqrt(N0)."""
    from sparsespikformer.model import create_model

    torch.manual_seed(0)
    return create_model("sparsespikformer_4_64_digits", img_size=2 * math.isqrt(n0),
                        embed_dim=16, num_heads=2, depth=4, timesteps=1, keep_ratio=ratio,
                        selector_blocks=(1, 2, 3), scorer="firing_rate").eval()


@pytest.mark.parametrize("n0", N0_VALUES)
@pytest.mark.parametrize("ratio", KEEP_RATIOS)
def test_model_selectors_keep_the_hand_table(n0, ratio):
    model = _three_selector_model(n0, ratio)
    assert model.config.num_tokens == n0
    assert [s.n_keep for s in token_selectors_of(model)] == list(KEPT_TOKENS[n0, ratio])


@pytest.mark.parametrize("n0", N0_VALUES)
def test_recorded_trace_of_three_selectors_has_the_hand_counts(n0):
    """A model with three selectors (ρ = 0.7, where 100 · 0.7² = 49 exactly), recorded: the
    tokens every block really saw."""
    from sparsespikformer.model.tracing.record import record_trace

    model = _three_selector_model(n0, 0.7)
    side = 2 * math.isqrt(n0)
    images = torch.rand(2, 1, side, side, generator=torch.Generator().manual_seed(0))
    layers = record_trace(model, images).layers.set_index("layer")
    seen = [int(layers.loc[f"block.{b}.attn.q_linear", "tokens_in"]) for b in range(4)]
    assert seen == [n0, *KEPT_TOKENS[n0, 0.7]]
    qk_rows = [int(layers.loc[f"block.{b}.attn.qk_matmul", "gemm_m"]) for b in range(4)]
    assert qk_rows == seen


def _brute_force_top_rates(x: torch.Tensor, n_keep: int) -> list[list[int]]:
    """Oracle: per sample, rate of every token by explicit sums, best n_keep, in order."""
    T, B, N, C = x.shape
    kept = []
    for b in range(B):
        rates = []
        for n in range(N):
            total = sum(float(x[t, b, n, c]) for t in range(T) for c in range(C))
            rates.append((total / (T * C), n))
        best = sorted(rates, key=lambda r: (-r[0], r[1]))[:n_keep]
        kept.append(sorted(n for _, n in best))
    return kept


def _distinct_rate_input(T=4, B=2, N=10, C=5) -> torch.Tensor:
    """Every token of a sample fires a different number of spikes (no ties)."""
    x = torch.zeros(T, B, N, C)
    for b in range(B):
        counts = torch.randperm(N, generator=torch.Generator().manual_seed(b)) * 2   # 0..18
        for n, count in enumerate(counts.tolist()):
            cells = list(itertools.product(range(T), range(C)))[:count]
            for t, c in cells:
                x[t, b, n, c] = 1.0
    return x


def test_firing_rate_scorer_keeps_the_highest_rate_tokens():
    x = _distinct_rate_input()
    selector = TokenSelector(dim=5, n_tokens0=10, ordinal=1, keep_ratio=0.6,
                             scorer="firing_rate").eval()
    kept, mask = selector(x, None)
    expected = _brute_force_top_rates(x, 6)
    assert selector.last_kept_indices.tolist() == expected
    for b in range(2):
        assert torch.equal(kept[:, b], x[:, b, expected[b]])          # same tokens, same order
    assert mask is None and sum(p.numel() for p in selector.parameters()) == 0


def test_kept_indices_are_in_the_original_numbering_after_two_gathers():
    x = _distinct_rate_input()
    selectors = build_token_selectors(dim=5, n_tokens0=10, blocks=(0, 1), keep_ratio=0.8,
                                      scorer="firing_rate").eval()
    y, _ = selectors["0"](x, None)              # keeps int(8.0) = 8
    z, _ = selectors["1"](y, None)              # keeps int(6.4) = 6 of those 8
    assert selectors["1"].last_kept_indices.tolist() == _brute_force_top_rates(x, 6)
    for b in range(2):
        assert torch.equal(z[:, b], x[:, b, selectors["1"].last_kept_indices[b]])


def test_random_scorer_is_deterministic_at_inference_and_differs_by_seed():
    x = _spikes(N=20)
    make = lambda seed: TokenSelector(8, 20, 1, 0.5, scorer="random", seed=seed).eval()  # noqa: E731
    a, b, c = make(0), make(0), make(1)
    assert torch.equal(a(x)[0], a(x)[0]) and torch.equal(a(x)[0], b(x)[0])
    a(x)
    c(x)
    assert not torch.equal(a.last_kept_indices, c.last_kept_indices)


def test_training_masks_are_cumulative_and_keep_the_tensor_whole():
    torch.manual_seed(0)
    selectors = build_token_selectors(dim=8, n_tokens0=16, blocks=(1, 2), keep_ratio=0.5,
                                      scorer="learned").train()
    x = _spikes()
    y, first = selectors["1"](x, None)
    z, second = selectors["2"](y, first)
    assert y is x and z is x                                      # nothing removed in training
    assert set(first.unique().tolist()) <= {0.0, 1.0}
    assert bool((second <= first).all())                          # dropped stays dropped
    assert torch.equal(selectors["2"].last_kept_fraction, second.sum(1) / 16)


def test_learned_scorer_gets_gradients_through_the_hard_decisions():
    torch.manual_seed(0)
    selector = TokenSelector(8, 16, 1, 0.7, scorer="learned").train()
    _, mask = selector(_spikes(), None)
    (selector.last_kept_fraction.mean() + mask.sum()).backward()
    assert selector.mlp[0].weight.grad is not None
    assert float(selector.mlp[0].weight.grad.abs().sum()) > 0


@pytest.mark.parametrize("scorer", ["firing_rate", "random"])
def test_parameter_free_scorers_keep_exactly_n_in_training(scorer):
    selector = TokenSelector(8, 16, 2, 0.7, scorer=scorer).train()   # int(16 · 0.49) = 7
    _, mask = selector(_spikes(), None)
    assert mask.sum(1).tolist() == [7.0, 7.0, 7.0]


def test_bad_selector_arguments_are_value_errors():
    with pytest.raises(ValueError, match="scorer"):
        TokenSelector(8, 16, 1, 0.7, scorer="attention")
    with pytest.raises(ValueError, match="keep_ratio"):
        TokenSelector(8, 16, 1, 1.5)
    with pytest.raises(ValueError, match="blocks"):
        build_token_selectors(8, 16, blocks=(2, 1), keep_ratio=0.7)


def _small_sparse_model(scorer: str):
    from sparsespikformer.model import create_model
    # 8x8 single-channel input, one max-pool: 4x4 = 16 tokens; D = 16, 2 heads, 2 blocks, T = 2
    return create_model("sparsespikformer_4_64_digits", img_size=8, embed_dim=16, num_heads=2,
                        depth=2, timesteps=2, keep_ratio=0.5, selector_blocks=(1,),
                        scorer=scorer)


def _hand_count_macs(selector_mlp: bool) -> int:
    T, D, hidden = 2, 16, 64
    # SPS convs 1->2->4->8->16 (3x3) on 8x8, max-pool, then the 3x3 16->16 RPE conv on 4x4
    sps = 64 * 9 * (2 * 1 + 4 * 2 + 8 * 4 + 16 * 8) + 16 * 9 * 16 * 16        # 134,784
    def block(n):                                   # q, k, v, proj; Q·Kᵀ and ·V; MLP
        return 4 * n * D * D + 2 * n * n * D + 2 * n * D * hidden
    blocks = block(16) + block(8)                   # the selector halves 16 tokens to 8
    selector = 16 * (D * (D // 2) + (D // 2) * 2) if selector_mlp else 0   # once, on rates
    head = D * 10                                   # once per image
    return T * (sps + blocks) + selector + head     # 439,968 with the learned scorer


@pytest.mark.parametrize("scorer", ["learned", "firing_rate", "random"])
def test_gflops_of_a_selected_model_matches_a_hand_count(scorer):
    from sparsespikformer.model import gflops
    model = _small_sparse_model(scorer)
    expected = _hand_count_macs(selector_mlp=scorer == "learned")
    assert gflops(model, (1, 8, 8)) * 1e9 == pytest.approx(expected, abs=0.5)
    assert gflops(model, (1, 8, 8), device="cpu") * 1e9 == pytest.approx(expected, abs=0.5)
