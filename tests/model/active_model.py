"""A small digits Spikformer that really spikes, for trace and simulator tests.

An untrained network is almost silent, which would make count comparisons vacuous. Random
BatchNorm affine parameters, with running statistics taken from one calibration batch, put
every LIF layer at a moderate firing rate.
"""

import torch
from torch import nn

from sparsespikformer.model import create_model
from sparsespikformer.model.nn.config import SpikformerConfig
from sparsespikformer.model.nn.spikformer import Spikformer
from sparsespikformer.model.nn.token_selector import build_token_selectors

TIMESTEPS = 2


def small_model(seed=0, **overrides):
    torch.manual_seed(seed)
    model = create_model("spikformer_4_64_digits", depth=2, embed_dim=32, num_heads=2,
                         timesteps=TIMESTEPS, **overrides)
    return _make_active(model, seed)


def small_form_model(form, seed=0, **config):
    """The same small network in another Spikformer form ("imagenet" / "dvs" layouts:
    1x1 convs, tokens last) or attention order, built from a config."""
    torch.manual_seed(seed)
    config = SpikformerConfig(form=form, img_size=16, in_channels=1, num_classes=10,
                              embed_dim=32, num_heads=2, depth=2, timesteps=TIMESTEPS,
                              sps_pool_after=(3,), **config)
    return _make_active(Spikformer(config), seed, frames=form == "dvs")


def _make_active(model, seed, frames=False):
    # Random BN affine parameters so that every layer fires at a moderate rate.
    generator = torch.Generator().manual_seed(seed + 1)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.weight.data = 1.0 + 2.0 * torch.rand(module.weight.shape, generator=generator)
            module.bias.data = 0.6 * torch.rand(module.bias.shape, generator=generator)
            module.momentum = None  # running statistics = this one calibration batch
    with torch.no_grad():
        model.train()(images(count=8, seed=seed + 7, frames=frames))
    return model.eval()


def prune_randomly(model, density=0.3, seed=2):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.mul_(torch.rand(parameter.shape, generator=generator) < density)
    return model


def add_selectors(model, keep_ratio=0.5, scorer="learned"):
    config = model.config
    model.token_selectors = build_token_selectors(config.embed_dim, config.num_tokens,
                                                  blocks=(1,), keep_ratio=keep_ratio,
                                                  scorer=scorer)
    return model.eval()


def images(count=6, seed=3, frames=False):
    """Digit-sized inputs; `frames`: per-timestep event frames (S, T, C, H, W), DVS style."""
    shape = (count, TIMESTEPS, 1, 16, 16) if frames else (count, 1, 16, 16)
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))
