"""The trace's `neurobench` block against NeuroBench's definitions, counted by brute force.

The oracle follows NeuroBench's source (neurobench/metrics/: workload/synaptic_operations.py,
utils/layers/macs.py, input.py, binary_copy.py, workload/activation_sparsity.py,
static/connection_sparsity.py, static/footprint.py), not the recorder: for every call of an
nn.Linear / nn.Conv* it runs the layer's operation again with binarised weights (bias 0) on
the binarised input (effective operations: ACs if the call's input is all in {-1, 0, 1},
else MACs), and with all-ones weights on an all-ones input (Dense); activation sparsity over
the LIF outputs; zero weights over Linear / Conv weights; bytes of parameters and buffers.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from active_model import add_selectors, images, prune_randomly, small_form_model, small_model
from torch import nn

from sparsespikformer.model.nn.config import SpikformerConfig
from sparsespikformer.model.nn.lif import LIF
from sparsespikformer.model.nn.spikformer import Spikformer
from sparsespikformer.model.tracing.record import record_trace


def _run(module: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The layer's own operation with `weight` and no bias."""
    if isinstance(module, nn.Linear):
        return F.linear(x, weight)
    options = dict(stride=module.stride, padding=module.padding, dilation=module.dilation)
    conv = F.conv1d if isinstance(module, nn.Conv1d) else F.conv2d
    return conv(x, weight, **options)


def neurobench_by_brute_force(model, inputs, batch_size):
    totals = {"MACs": 0.0, "ACs": 0.0, "Dense": 0.0, "spikes": 0, "outputs": 0}

    def connection_hook(module, args, out):
        x = args[0].detach().double()
        w = module.weight.detach().double()
        ternary = bool(((x == 0) | (x == 1) | (x == -1)).all())
        effective = float(_run(module, (x != 0).double(), (w != 0).double()).sum())
        totals["ACs" if ternary else "MACs"] += effective
        totals["Dense"] += float(_run(module, torch.ones_like(x), torch.ones_like(w)).sum())

    def activation_hook(module, args, out):
        totals["spikes"] += int(torch.count_nonzero(out))
        totals["outputs"] += out.numel()

    handles = [m.register_forward_hook(connection_hook) for m in model.modules()
               if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    handles += [m.register_forward_hook(activation_hook) for m in model.modules()
                if isinstance(m, LIF)]
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            model(inputs[start:start + batch_size])
    for handle in handles:
        handle.remove()
    samples = len(inputs)
    weights = [m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d,
                                                                   nn.Conv2d))]
    return {
        "activation_sparsity": 1 - totals["spikes"] / totals["outputs"],
        "connection_sparsity": sum(int((w == 0).sum()) for w in weights)
        / sum(w.numel() for w in weights),
        "synaptic_operations": {"Effective_MACs": totals["MACs"] / samples,
                                "Effective_ACs": totals["ACs"] / samples,
                                "Dense": totals["Dense"] / samples},
        "footprint": sum(t.numel() * t.element_size()
                         for t in [*model.parameters(), *model.buffers()]),
    }


def _assert_block_is_neurobench(model, inputs, batch_size=4):
    block = record_trace(model, inputs, batch_size=batch_size).manifest["neurobench"]
    oracle = neurobench_by_brute_force(model, inputs, batch_size)
    assert set(block) == set(oracle)
    assert set(block["synaptic_operations"]) == set(oracle["synaptic_operations"])
    for key, value in oracle["synaptic_operations"].items():
        assert block["synaptic_operations"][key] == pytest.approx(value, rel=1e-12), key
    for key in ("activation_sparsity", "connection_sparsity", "footprint"):
        assert block[key] == pytest.approx(oracle[key], rel=1e-12), key
    return block


@pytest.mark.parametrize("variant", ["dense", "pruned", "learned", "firing_rate", "random"])
def test_every_field_follows_neurobench(variant):
    model = small_model()
    if variant == "pruned":
        prune_randomly(model)
    if variant in ("learned", "firing_rate", "random"):
        add_selectors(model, scorer=variant)
    block = _assert_block_is_neurobench(model, images(count=8))
    ops = block["synaptic_operations"]
    assert ops["Effective_ACs"] > 0 and ops["Effective_MACs"] > 0   # both kinds present


@pytest.mark.parametrize("form", ["imagenet", "dvs"])
def test_conv_forms_follow_neurobench(form):
    """1x1 Conv1d / Conv2d projections (tokens last)."""
    _assert_block_is_neurobench(small_form_model(form), images(frames=form == "dvs"))


def test_acs_and_macs_are_decided_per_batch():
    """NeuroBench classifies each call: a batch of 0/1 images makes the first conv's
    operations ACs, a batch of grey-level images MACs."""
    binary = (images(count=4, seed=1) > 0.5).float()
    grey = images(count=4, seed=2)
    _assert_block_is_neurobench(small_model(), torch.cat([binary, grey]), batch_size=4)


def test_dense_of_the_issue_model_is_neurobench_2_3s():
    """The 2-block CIFAR-form Spikformer with 64 channels, T = 4, 32x32 (issue 13, section 7):
    NeuroBench 2.3 gives Dense = 73,899,008; the trace's dense_macs (every tap) sum to
    77,955,712 over the same layers. The difference is the taps on the zero padding of the
    five 3x3 convs (padding 1): an HxH input has 9H² taps per (C_in, C_out) pair, of which
    (3H - 2)² read inside, so 12H - 4 fall on the padding; times T · C_in · C_out:
        conv0 3->8 at 32:   4 · 3 · 8 · 380   =    36,480
        conv1 8->16 at 32:  4 · 8 · 16 · 380  =   194,560
        conv2 16->32 at 32: 4 · 16 · 32 · 380 =   778,240
        conv3 32->64 at 16: 4 · 32 · 64 · 188 = 1,540,096
        rpe 64->64 at 8:    4 · 64 · 64 · 92  = 1,507,328
                                        total = 4,056,704 = 77,955,712 - 73,899,008
    """
    model = Spikformer(SpikformerConfig(embed_dim=64, num_heads=8, depth=2, timesteps=4))
    trace = record_trace(model, torch.rand(1, 3, 32, 32, generator=torch.Generator()
                                           .manual_seed(0)))
    synaptic = trace.layers[trace.layers.kind.isin(["conv", "linear", "head"])]
    assert synaptic.dense_macs.sum() == 77_955_712
    assert trace.manifest["neurobench"]["synaptic_operations"]["Dense"] == 73_899_008
