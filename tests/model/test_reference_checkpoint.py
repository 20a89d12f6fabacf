"""Reference checkpoints load strictly after conversion.

The reference key set is written out here from the reference model files' __init__ methods
(ZK-Zhou/spikformer cifar10/imagenet/cifar10dvs model.py), not taken from our model.
"""

import argparse

import pytest
import torch

from sparsespikformer.model import (
    Spikformer,
    SpikformerConfig,
    convert_reference_state_dict,
    load_reference_checkpoint,
)


def _bn(prefix, channels):
    return {
        f"{prefix}.weight": (channels,), f"{prefix}.bias": (channels,),
        f"{prefix}.running_mean": (channels,), f"{prefix}.running_var": (channels,),
        f"{prefix}.num_batches_tracked": (),
    }


def reference_keys(form, depth, dim, classes, in_channels, num_patches=64):
    """Key -> shape of a state dict saved by the reference code for that form."""
    keys = {}
    widths = [in_channels, dim // 8, dim // 4, dim // 2, dim]
    for i, sfx in enumerate(["", "1", "2", "3"]):
        keys[f"patch_embed.proj_conv{sfx}.weight"] = (widths[i + 1], widths[i], 3, 3)
        keys.update(_bn(f"patch_embed.proj_bn{sfx}", widths[i + 1]))
    keys["patch_embed.rpe_conv.weight"] = (dim, dim, 3, 3)
    keys.update(_bn("patch_embed.rpe_bn", dim))
    hidden = 4 * dim
    for b in range(depth):
        p = f"block.{b}"
        keys[f"{p}.norm1.weight"] = keys[f"{p}.norm1.bias"] = (dim,)
        keys[f"{p}.norm2.weight"] = keys[f"{p}.norm2.bias"] = (dim,)
        for name in ("q", "k", "v"):
            if form == "cifar":
                keys[f"{p}.attn.{name}_linear.weight"] = (dim, dim)
                keys[f"{p}.attn.{name}_linear.bias"] = (dim,)
            else:
                keys[f"{p}.attn.{name}_conv.weight"] = (dim, dim, 1)
            keys.update(_bn(f"{p}.attn.{name}_bn", dim))
        if form == "cifar":
            keys[f"{p}.attn.proj_linear.weight"] = (dim, dim)
            keys[f"{p}.attn.proj_linear.bias"] = (dim,)
        else:
            keys[f"{p}.attn.proj_conv.weight"] = (dim, dim, 1)
            keys[f"{p}.attn.proj_conv.bias"] = (dim,)
        keys.update(_bn(f"{p}.attn.proj_bn", dim))
        for fc, cin, cout in (("fc1", dim, hidden), ("fc2", hidden, dim)):
            if form == "cifar":
                keys[f"{p}.mlp.{fc}_linear.weight"] = (cout, cin)
                keys[f"{p}.mlp.{fc}_linear.bias"] = (cout,)
            elif form == "imagenet":
                keys[f"{p}.mlp.{fc}_conv.weight"] = (cout, cin, 1, 1)
                keys[f"{p}.mlp.{fc}_conv.bias"] = (cout,)
            else:
                keys[f"{p}.mlp.{fc}_conv.weight"] = (cout, cin, 1)
                keys[f"{p}.mlp.{fc}_conv.bias"] = (cout,)
            keys.update(_bn(f"{p}.mlp.{fc}_bn", cout))
    if form == "dvs":
        keys["pos_embed"] = (1, num_patches, dim)
        keys["norm.weight"] = keys["norm.bias"] = (dim,)
    keys["head.weight"] = (classes, dim)
    keys["head.bias"] = (classes,)
    return keys


def _random_state(keys, seed=0):
    gen = torch.Generator().manual_seed(seed)
    state = {k: torch.randn(shape, generator=gen) for k, shape in keys.items()}
    state.update({k: torch.tensor(7) for k in keys if k.endswith("num_batches_tracked")})
    return state


@pytest.mark.parametrize(
    "cfg",
    [
        SpikformerConfig(embed_dim=32, num_heads=4, depth=2),
        SpikformerConfig(form="imagenet", embed_dim=32, num_heads=4, depth=2, num_classes=7),
        SpikformerConfig(form="dvs", in_channels=2, embed_dim=32, num_heads=4, depth=2,
                         num_classes=11, img_size=128),
    ],
    ids=lambda c: c.form,
)
@pytest.mark.parametrize("wrapper", ["plain", "state_dict", "model"])
def test_reference_state_dict_loads_strictly(cfg, wrapper):
    keys = reference_keys(cfg.form, cfg.depth, cfg.embed_dim, cfg.num_classes, cfg.in_channels)
    state = {f"module.{k}": v for k, v in _random_state(keys).items()}  # DataParallel save
    checkpoint = state if wrapper == "plain" else {wrapper: state, "epoch": 3}
    model = Spikformer(cfg)
    model.load_state_dict(convert_reference_state_dict(checkpoint), strict=True)
    loaded = model.state_dict()
    for key, value in state.items():
        name = key[len("module."):]
        if ".norm" in name or name in ("pos_embed", "norm.weight", "norm.bias"):
            assert name not in loaded
        else:
            assert torch.equal(loaded[name], value)


def test_load_timm_style_checkpoint_file(tmp_path):
    cfg = SpikformerConfig(embed_dim=32, num_heads=4, depth=1)
    keys = reference_keys("cifar", 1, 32, 10, 3)
    path = tmp_path / "model_best.pth.tar"
    state = _random_state(keys)
    torch.save(
        {"epoch": 299, "arch": "spikformer", "state_dict": state,
         "args": argparse.Namespace(lr=5e-4, model="spikformer"), "metric": 95.1},
        path,
    )
    model = Spikformer(cfg)
    model.load_state_dict(load_reference_checkpoint(path), strict=True)
    assert torch.equal(model.head.weight, state["head.weight"])


def test_bad_checkpoints_raise():
    with pytest.raises(ValueError, match="mapping"):
        convert_reference_state_dict([1, 2])
    with pytest.raises(ValueError, match="'head.weight'"):
        convert_reference_state_dict({"head.weight": "not a tensor"})
    with pytest.raises(ValueError, match="no model weights"):
        convert_reference_state_dict({"block.0.norm1.weight": torch.ones(2)})
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_reference_checkpoint("/nonexistent/missing.pth")
