"""Dense GFLOPs by the spiking-transformer papers' convention, counted from the module graph.

GFLOPs of one image = MACs of every convolution, linear layer and attention product
(Q·Kᵀ and ·V), at every timestep, / 1e9. The count comes from forward hooks on one real
forward pass of one sample in eval mode, so whatever the model really computes is counted:
fewer tokens after a token selector, a selector's own linear layers, the head once per image.
By default the pass runs on the ``meta`` device (shapes only, no arithmetic).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call

from sparsespikformer.model.nn.attention import SpikeMatmul
from sparsespikformer.simulator.errors import InputError

log = logging.getLogger(__name__)

_COUNTED = (nn.Linear, nn.modules.conv._ConvNd, SpikeMatmul)


def _macs_of_call(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    if isinstance(module, nn.modules.conv._ConvNd):
        fan_in = (module.in_channels // module.groups) * math.prod(module.kernel_size)
        return output.numel() * fan_in
    return output.numel() * inputs[0].shape[-1]  # a @ b: each output sums over a's last dim


def count_macs(
    model: nn.Module, input_shape: Sequence[int], device: str = "meta"
) -> dict[str, int]:
    """MACs per sample of each conv / linear / attention-product module, by dotted name.

    `input_shape` is one sample without batch: (C, H, W) for images (the model repeats them
    T times) or (T, C, H, W) for event frames. The model is run in eval mode (restored after).
    """
    counts: dict[str, int] = {}

    def hook_for(name: str):
        def hook(module, inputs, output):
            counts[name] = counts.get(name, 0) + _macs_of_call(module, inputs, output)

        return hook

    handles = [
        m.register_forward_hook(hook_for(name))
        for name, m in model.named_modules()
        if isinstance(m, _COUNTED)
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            _forward_one_sample(model, tuple(input_shape), device)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return counts


def gflops(model: nn.Module, input_shape: Sequence[int], device: str = "meta") -> float:
    """Dense GFLOPs (10^9 MACs) of one sample; see `count_macs`."""
    return sum(count_macs(model, input_shape, device).values()) / 1e9


def _forward_one_sample(model: nn.Module, input_shape: tuple[int, ...], device: str) -> None:
    if len(input_shape) not in (3, 4):
        raise InputError(
            f"input_shape must be (C, H, W) or (T, C, H, W) for one sample, got {input_shape}"
        )
    if device != "meta":
        model(torch.rand((1, *input_shape), generator=torch.Generator().manual_seed(0)).to(device))
        return
    state = {
        name: torch.empty_like(t, device="meta")
        for name, t in [*model.named_parameters(), *model.named_buffers()]
    }
    try:
        functional_call(model, state, (torch.empty((1, *input_shape), device="meta"),))
    except (NotImplementedError, RuntimeError) as err:
        # Some op without a meta kernel (e.g. in a selector): count on a real CPU pass.
        log.info("meta-device pass failed (%s); counting MACs on a CPU pass", err)
        _forward_one_sample(model, input_shape, "cpu")
