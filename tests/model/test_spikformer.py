"""Spikformer against a literal re-statement of the reference forward code (all three forms),
plus module naming and the token-selector plumbing."""

import pytest
import torch
from reference_spikformer import reference_forward
from torch import nn

from sparsespikformer.model import Spikformer, SpikformerConfig
from sparsespikformer.model.nn.block import Block

TINY = {"embed_dim": 64, "num_heads": 4, "depth": 2, "timesteps": 2}


def _tiny(form, **kw):
    base = dict(TINY)
    if form == "dvs":
        base.update(in_channels=2, num_classes=11, img_size=32, timesteps=3)
    elif form == "imagenet":
        base.update(img_size=32)
    base.update(kw)
    return SpikformerConfig(form=form, **base)


def _input(cfg, batch=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    size = cfg.img_size
    if cfg.form == "dvs":  # event frames: spike counts per pixel
        shape = (batch, cfg.timesteps, cfg.in_channels, size, size)
        return (torch.rand(shape, generator=gen) < 0.3) * 2.0
    return torch.rand(batch, cfg.in_channels, size, size, generator=gen) * 2 - 0.5


def _firing_model(cfg, x, seed=0):
    """A model whose BatchNorms carry the statistics of `x`, so eval mode fires too."""
    torch.manual_seed(seed)
    model = Spikformer(cfg)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(0.0, 0.8)
            m.momentum = 1.0
    with torch.no_grad():
        model.train()(x)
    return model


FORMS = [
    _tiny("cifar"),
    _tiny("imagenet"),
    _tiny("imagenet", attn_order="kv_first"),
    _tiny("dvs"),
    _tiny("cifar", sps_pool_after=(3,), img_size=16, in_channels=1),
]


@pytest.mark.parametrize("cfg", FORMS, ids=lambda c: f"{c.form}-{c.attn_order}-{c.sps_pool_after}")
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_forward_bit_identical_to_reference_and_gradients_close(cfg, training):
    x = _input(cfg)
    model = _firing_model(cfg, x).train(training)
    weights = torch.randn(x.shape[0], cfg.num_classes, generator=torch.Generator().manual_seed(9))
    ours = model(x)
    ref = reference_forward(model, x)
    assert model.features(x).mean() > 0.05, "test needs a network that fires"
    assert torch.equal(ours, ref)
    params = [p for p in model.parameters()]
    g_ours = torch.autograd.grad((ours * weights).sum(), params)
    g_ref = torch.autograd.grad((ref * weights).sum(), params)
    assert max(g.abs().max() for g in g_ours) > 0
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_module_names_and_shapes_follow_reference():
    cifar = dict(Spikformer(_tiny("cifar")).state_dict())
    assert cifar["block.0.attn.q_linear.bias"].shape == (64,)
    assert cifar["block.1.mlp.fc1_linear.weight"].shape == (256, 64)
    assert "block.0.attn.proj_linear.bias" in cifar
    assert "patch_embed.maxpool2" not in cifar  # pools hold no state
    imnet = dict(Spikformer(_tiny("imagenet")).state_dict())
    assert "block.0.attn.q_conv.bias" not in imnet  # Q/K/V convs are bias-free
    assert imnet["block.0.attn.k_conv.weight"].shape == (64, 64, 1)
    assert imnet["block.0.attn.proj_conv.bias"].shape == (64,)
    assert imnet["block.0.mlp.fc1_conv.weight"].shape == (256, 64, 1, 1)  # Conv2d
    assert "block.0.mlp.fc2_bn.running_var" in imnet
    dvs = dict(Spikformer(_tiny("dvs")).state_dict())
    assert dvs["block.0.mlp.fc1_conv.weight"].shape == (256, 64, 1)  # Conv1d
    for sd in (cifar, imnet, dvs):
        assert not any(".norm" in k for k in sd)
        assert sd["patch_embed.proj_conv3.weight"].shape == (64, 32, 3, 3)
        assert "patch_embed.rpe_bn.weight" in sd and "head.weight" in sd
    model = Spikformer(_tiny("imagenet"))
    names = dict(model.named_modules())
    for name in ("patch_embed.maxpool", "patch_embed.maxpool3", "block.0.attn.attn_lif",
                 "block.0.attn.qk_matmul", "block.0.attn.av_matmul", "patch_embed.proj_lif2"):
        assert name in names
    assert names["block.0.attn.attn_lif"].v_threshold == 0.5
    assert names["block.0.attn.q_lif"].v_threshold == 1.0
    assert not any(isinstance(m, nn.LayerNorm) for m in model.modules())


def test_token_grid_and_readout_shapes():
    cfg = SpikformerConfig()  # Spikformer-4-384, CIFAR
    assert cfg.num_tokens == 64
    model = Spikformer(SpikformerConfig(embed_dim=32, num_heads=4, depth=1, timesteps=3))
    x = _input(model.config, batch=2)
    assert model.features(x).shape == (3, 2, 64, 32)
    assert model(x).shape == (2, 10)


def test_same_seed_same_outputs():
    cfg = _tiny("cifar")
    x = _input(cfg)
    a = _firing_model(cfg, x, seed=4)(x)
    b = _firing_model(cfg, x, seed=4)(x)
    assert torch.equal(a, b)


def test_bad_inputs_raise_value_error():
    model = Spikformer(_tiny("cifar"))
    with pytest.raises(ValueError, match="3 input channels"):
        model(torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match="divisible"):
        model(torch.rand(1, 3, 30, 30))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        model(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match="num_heads"):
        SpikformerConfig(embed_dim=64, num_heads=5)
    with pytest.raises(ValueError, match="form"):
        SpikformerConfig(form="resnet")


def test_config_round_trips_through_dict():
    cfg = _tiny("cifar", sps_pool_after=(3,))
    assert SpikformerConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="bogus"):
        SpikformerConfig.from_dict({"bogus": 1})


# --- token-selector plumbing, exercised with a trivial selector -------------------------


class FixedTokenSelector(nn.Module):
    """Keeps a fixed set of token positions. Gathers them in eval mode (unless `as_mask`),
    otherwise returns x unchanged with a (B, N) keep mask."""

    def __init__(self, keep_index, as_mask=False):
        super().__init__()
        self.register_buffer("keep_index", torch.as_tensor(keep_index))
        self.as_mask = as_mask

    def forward(self, x, keep_mask):
        T, B, N, C = x.shape
        if self.training or self.as_mask:
            mask = torch.zeros(B, N, dtype=x.dtype)
            mask[:, self.keep_index] = 1.0
            return x, mask if keep_mask is None else mask * keep_mask
        return x[:, :, self.keep_index], None


def test_selector_keeping_every_token_is_a_no_op():
    cfg = _tiny("cifar")
    x = _input(cfg)
    model = _firing_model(cfg, x)
    dense = model.train()(x)
    model.token_selectors["1"] = FixedTokenSelector(torch.arange(64))
    assert torch.equal(model.train()(x), dense)


@pytest.mark.parametrize("form", ["cifar", "imagenet", "dvs"])
def test_masking_tokens_equals_removing_them(form):
    # In eval mode each token's BN/LIF/linear is independent of the others, so a keep mask
    # (zeroed K and V, masked readout) must give what gathering the kept tokens gives.
    cfg = _tiny(form, depth=3)
    x = _input(cfg)
    model = _firing_model(cfg, x).eval()
    n = model.config.num_tokens
    first = torch.arange(0, n, 2)  # before block 1: every other token
    second = torch.arange(len(first))[1::3]  # before block 2: a third of those
    dense = model(x)
    model.token_selectors["1"] = FixedTokenSelector(first)
    model.token_selectors["2"] = FixedTokenSelector(second)
    gathered = model.eval()(x)
    tokens, mask = model.forward_tokens(x)
    assert tokens.shape[2] == len(second) and mask is None
    for key, idx in (("1", first), ("2", second)):
        full_idx = idx if key == "1" else first[idx]
        model.token_selectors[key] = FixedTokenSelector(full_idx, as_mask=True)
    masked = model.eval()(x)
    torch.testing.assert_close(masked, gathered, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(masked, dense)


def test_dropped_tokens_do_not_reach_kept_tokens():
    cfg = _tiny("cifar", depth=1)
    torch.manual_seed(0)
    block = Block(cfg).eval()
    for m in block.modules():  # make every layer fire
        if isinstance(m, nn.BatchNorm1d):
            m.bias.data.fill_(0.7)
    gen = torch.Generator().manual_seed(2)
    x = torch.randint(0, 3, (2, 2, 64, 64), generator=gen).float()  # (T, B, N, C)
    keep = torch.zeros(2, 64)
    keep[:, :40] = 1
    perturbed = x.clone()
    perturbed[:, :, 40:] = torch.randint(0, 3, (2, 2, 24, 64), generator=gen).float()
    out_a = block(x, keep)[:, :, :40]
    out_b = block(perturbed, keep)[:, :, :40]
    assert torch.equal(out_a, out_b)
    assert not torch.equal(block(x)[:, :, :40], block(perturbed)[:, :, :40])


def test_masked_readout_is_mean_over_kept_tokens():
    model = Spikformer(_tiny("cifar"))
    tokens = torch.rand(2, 3, 64, 64)
    mask = (torch.rand(3, 64) < 0.5).float()
    mask[:, 0] = 1
    expected = torch.stack(
        [tokens[:, b][:, mask[b].bool()].mean(1) for b in range(3)], dim=1
    ).mean(0)
    torch.testing.assert_close(model.readout(tokens, mask), model.head(expected))
