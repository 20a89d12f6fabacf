"""A small digits Spikformer that really spikes, for trace and simulator tests.

An untrained network is almost silent, which would make count comparisons vacuous. Random
BatchNorm affine parameters, with running statistics taken from one calibration batch, put
every LIF layer at a moderate firing rate.
"""

import torch
from torch import nn

from sparsespikformer.model import create_model
from sparsespikformer.model.token_selector import build_token_selectors

TIMESTEPS = 2


def small_model(seed=0, **overrides):
    torch.manual_seed(seed)
    model = create_model("spikformer_4_64_digits", depth=2, embed_dim=32, num_heads=2,
                         timesteps=TIMESTEPS, **overrides)
    # Random BN affine parameters so that every layer fires at a moderate rate.
    generator = torch.Generator().manual_seed(seed + 1)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.weight.data = 1.0 + 2.0 * torch.rand(module.weight.shape, generator=generator)
            module.bias.data = 0.6 * torch.rand(module.bias.shape, generator=generator)
            module.momentum = None  # running statistics = this one calibration batch
    with torch.no_grad():
        model.train()(images(count=8, seed=seed + 7))
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


def images(count=6, seed=3):
    return torch.rand(count, 1, 16, 16, generator=torch.Generator().manual_seed(seed))
