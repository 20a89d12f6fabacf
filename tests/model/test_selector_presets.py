"""SparseSpikformer presets: a dense preset plus token selectors, and what they cost."""

from __future__ import annotations

import pytest
from kept_tokens_table import KEPT_TOKENS

from sparsespikformer.model import create_model, get_preset_config, gflops, list_models
from sparsespikformer.model.nn.token_selector import token_selectors_of
from sparsespikformer.model.sparse_presets import SPARSE_PRESETS, SparseSpikformerConfig


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _selector_mlp_params(dim: int) -> int:
    # Linear D -> D/2 with bias, Linear D/2 -> 2 with bias
    return dim * (dim // 2) + dim // 2 + (dim // 2) * 2 + 2


@pytest.mark.parametrize("name", SPARSE_PRESETS)
def test_every_sparse_preset_is_its_dense_preset_plus_selectors(name):
    assert name in list_models()
    dense_name = "spikformer_" + name[len("sparsespikformer_"):]
    sparse, dense = create_model(name), create_model(dense_name)
    depth = sparse.config.depth
    assert sorted(sparse.token_selectors) == [str(b) for b in range(1, depth)]
    assert [s.ordinal for s in token_selectors_of(sparse)] == list(range(1, depth))
    dim = sparse.config.embed_dim
    assert _params(sparse) == _params(dense) + (depth - 1) * _selector_mlp_params(dim)
    assert not create_model(dense_name).token_selectors


def _block_macs(n: int, dim: int) -> int:
    # q, k, v, proj (4 N D²), MLP with ratio 4 (8 N D²), Q·Kᵀ and ·V (2 N² D)
    return 12 * n * dim * dim + 2 * n * n * dim


@pytest.fixture(scope="module")
def cifar_dense_gflops() -> float:
    return gflops(create_model("spikformer_4_384_cifar10"), (3, 32, 32))


@pytest.mark.parametrize("keep_ratio", [0.9, 0.7, 0.5])
def test_cifar_gflops_drop_by_the_hand_counted_block_savings(keep_ratio, cifar_dense_gflops):
    dense = cifar_dense_gflops * 1e9
    sparse = gflops(create_model("sparsespikformer_4_384_cifar10", keep_ratio=keep_ratio),
                    (3, 32, 32)) * 1e9
    T, D, n0 = 4, 384, 64
    counts = [n0, *KEPT_TOKENS[n0, keep_ratio]]   # tokens per block, worked by hand
    saved = T * sum(_block_macs(n0, D) - _block_macs(n, D) for n in counts[1:])
    selector_cost = sum(n * (D * D // 2 + D // 2 * 2) for n in counts[:-1])  # once per image
    assert sparse == pytest.approx(dense - saved + selector_cost, abs=0.5)


def test_cifar_keep_ratio_07_saves_about_the_papers_20_percent(cifar_dense_gflops):
    # SparseSpikformer (docs/references.md): ~20% fewer GFLOPs at ρ = 0.7 on Spikformer-4-384
    dense = cifar_dense_gflops
    sparse = gflops(create_model("sparsespikformer_4_384_cifar10", keep_ratio=0.7), (3, 32, 32))
    assert dense == pytest.approx(3.74, abs=0.005)
    assert 0.15 <= 1 - sparse / dense <= 0.25


def test_overrides_and_config_round_trip():
    config = get_preset_config("sparsespikformer_4_64_digits", keep_ratio=0.5,
                               scorer="firing_rate", selector_blocks=[2, 3])
    assert isinstance(config, SparseSpikformerConfig)
    assert config.selector_blocks == (2, 3)
    assert SparseSpikformerConfig.from_dict(config.to_dict()) == config
    model = create_model("sparsespikformer_4_64_digits", keep_ratio=0.5, scorer="random")
    assert {s.scorer for s in token_selectors_of(model)} == {"random"}
    assert [s.n_keep for s in token_selectors_of(model)] == [32, 16, 8]


@pytest.mark.parametrize("overrides, message", [
    ({"scorer": "attention"}, "scorer"),
    ({"keep_ratio": 0.0}, "keep_ratio"),
    ({"selector_blocks": (4,)}, "selector_blocks"),
    ({"selector_blocks": (3, 1)}, "selector_blocks"),
])
def test_bad_selector_overrides_are_value_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        create_model("sparsespikformer_4_64_digits", **overrides)
