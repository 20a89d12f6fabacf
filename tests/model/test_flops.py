"""GFLOPs from the module graph against the published 3.74 G and a closed-form count."""

import dataclasses

import pytest
from torch import nn

from sparsespikformer.model import Spikformer, SpikformerConfig, count_macs, create_model, gflops


def closed_form_macs(cfg, tokens_per_block=None, selector_macs=0):
    """MACs per image: convs, linears, Q·Kᵀ and ·V at every timestep; head once."""
    dim = cfg.embed_dim
    widths = [cfg.in_channels, dim // 8, dim // 4, dim // 2, dim]
    side = cfg.img_size
    sps = 0
    for i in range(4):
        sps += widths[i] * widths[i + 1] * 9 * side * side
        if i in cfg.sps_pool_after:
            side //= 2
    sps += dim * dim * 9 * side * side  # RPE conv
    n0 = side * side
    hidden = int(cfg.mlp_ratio * dim)
    blocks = 0
    for n in tokens_per_block or [n0] * cfg.depth:
        projections = 4 * n * dim * dim + 2 * n * dim * hidden
        if cfg.attn_order == "qk_first":
            attention = 2 * n * n * dim  # heads · (n·n·d + n·n·d)
        else:
            attention = 2 * n * dim * cfg.head_dim  # heads · (d·n·d + n·d·d)
        blocks += projections + attention
    return cfg.timesteps * (sps + blocks) + dim * cfg.num_classes + selector_macs


def test_spikformer_4_384_cifar10_is_3_74_gflops():
    # docs/references.md (GFLOPs counting convention): dense Spikformer-4-384 on 32x32 = 3.74 G.
    model = create_model("spikformer_4_384_cifar10")
    assert round(gflops(model, (3, 32, 32)), 2) == 3.74
    assert sum(count_macs(model, (3, 32, 32)).values()) == closed_form_macs(model.config)


@pytest.mark.parametrize(
    "cfg",
    [
        SpikformerConfig(embed_dim=32, num_heads=4, depth=2, timesteps=3, img_size=16),
        SpikformerConfig(form="imagenet", embed_dim=32, num_heads=2, depth=1, img_size=64),
        SpikformerConfig(form="imagenet", embed_dim=32, num_heads=2, depth=1, img_size=64,
                         attn_order="kv_first"),
        SpikformerConfig(embed_dim=16, num_heads=2, depth=1, img_size=16, in_channels=1,
                         sps_pool_after=(3,), mlp_ratio=2.0),
    ],
    ids=["cifar", "imagenet", "imagenet-kv", "digits-like"],
)
def test_tiny_configs_match_closed_form(cfg):
    model = Spikformer(cfg)
    assert sum(count_macs(model, (cfg.in_channels, cfg.img_size, cfg.img_size)).values()) == (
        closed_form_macs(cfg)
    )


def test_event_input_uses_its_own_timesteps():
    cfg = SpikformerConfig(form="dvs", in_channels=2, embed_dim=32, num_heads=4, depth=1,
                           img_size=32, timesteps=16)
    model = Spikformer(cfg)
    macs = sum(count_macs(model, (5, 2, 32, 32)).values())
    assert macs == closed_form_macs(dataclasses.replace(cfg, timesteps=5))


def test_head_counted_once_and_meta_equals_cpu():
    model = Spikformer(SpikformerConfig(embed_dim=32, num_heads=4, depth=1, timesteps=4))
    on_meta = count_macs(model, (3, 32, 32))
    on_cpu = count_macs(model, (3, 32, 32), device="cpu")
    assert on_meta == on_cpu
    assert on_meta["head"] == 32 * 10
    assert on_meta["block.0.attn.qk_matmul"] == 4 * 64 * 64 * 32
    assert model.training  # mode restored


class ScoreTopKSelector(nn.Module):
    """Scores tokens with a linear layer on their time average; keeps the top `keep`."""

    def __init__(self, dim, keep):
        super().__init__()
        self.score = nn.Linear(dim, 1)
        self.keep = keep

    def forward(self, x, keep_mask):
        scores = self.score(x.mean(0)).squeeze(-1)  # (B, N)
        index = scores.topk(self.keep, dim=1).indices  # (B, keep)
        gather = index[None, :, :, None].expand(x.shape[0], -1, -1, x.shape[3])
        return x.gather(2, gather), None


def test_dropped_tokens_and_selector_layers_are_counted():
    cfg = SpikformerConfig(embed_dim=32, num_heads=4, depth=3, timesteps=2)
    model = Spikformer(cfg)
    model.token_selectors["1"] = ScoreTopKSelector(32, keep=48)
    model.token_selectors["2"] = ScoreTopKSelector(32, keep=36)
    selector_macs = 64 * 32 + 48 * 32  # one score per token, once per image
    expected = closed_form_macs(cfg, tokens_per_block=[64, 48, 36], selector_macs=selector_macs)
    for device in ("meta", "cpu"):
        assert sum(count_macs(model, (3, 32, 32), device=device).values()) == expected
    assert gflops(model, (3, 32, 32)) < gflops(Spikformer(cfg), (3, 32, 32))


def test_bad_input_shape():
    with pytest.raises(ValueError, match="input_shape"):
        gflops(Spikformer(SpikformerConfig(embed_dim=32, num_heads=4, depth=1)), (32, 32))
