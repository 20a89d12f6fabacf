"""The fused LIF against a per-timestep second implementation of spikingjelly's equations.

Oracle (`reference_lif`): spikingjelly's MultiStepLIFNode(tau=2., detach_reset=True,
backend='torch') with the Sigmoid(alpha=4) surrogate, written out as its documentation gives
it (charge / fire / reset per step, plain autograd through everything).
"""

import pytest
import torch
from reference_spikformer import reference_lif

from sparsespikformer.model.nn.lif import LIF, lif_multistep


def _run_both(x, **kw):
    ref_kw = {k if k != "surrogate_alpha" else "alpha": v for k, v in kw.items()}
    x_ref = x.clone().requires_grad_(True)
    x_ours = x.clone().requires_grad_(True)
    out_ref = reference_lif(x_ref, **ref_kw)
    out_ours = LIF(**kw)(x_ours)
    # A loss that weights every spike differently, so every gradient path is exercised.
    weights = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    (out_ref * weights).sum().backward()
    (out_ours * weights).sum().backward()
    return out_ref, out_ours, x_ref.grad, x_ours.grad


@pytest.mark.parametrize(
    "shape,kw",
    [
        ((4, 3, 5, 7), {}),
        ((8, 2, 33), {"v_threshold": 0.5}),
        ((1, 16), {}),
        ((4, 70001), {}),  # spans several threads' chunks
        ((6, 4, 9), {"tau": 3.0, "v_threshold": 0.7, "surrogate_alpha": 2.0}),
        ((5, 2, 11), {"v_reset": -0.3}),
    ],
)
def test_spikes_and_gradients_equal_reference_exactly(shape, kw):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen) * 1.5 + 0.6
    out_ref, out_ours, g_ref, g_ours = _run_both(x, **kw)
    assert out_ref.sum() > 0, "test input must make some neurons fire"
    assert torch.equal(out_ref, out_ours)
    assert torch.equal(g_ref, g_ours)


def test_float64_and_transposed_input():
    gen = torch.Generator().manual_seed(3)
    x = (torch.randn(4, 6, 5, dtype=torch.float64, generator=gen) + 0.5).transpose(1, 2)
    out_ref, out_ours, g_ref, g_ours = _run_both(x)
    assert torch.equal(out_ref, out_ours) and torch.equal(g_ref, g_ours)
    assert out_ours.is_contiguous()


def test_hand_computed_trace():
    # tau=2, thr=1: constant input 1.5 -> h = 0.75 (no), 1.125 (spike, reset 0), 0.75, 1.125
    x = torch.full((4, 1), 1.5)
    assert lif_multistep(x).flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
    # Threshold is inclusive: h == thr spikes. x = 2 -> h = 1.0 at the first step.
    assert lif_multistep(torch.full((1, 1), 2.0)).item() == 1.0
    assert lif_multistep(torch.full((1, 1), 1.999)).item() == 0.0


def test_no_grad_path_matches_autograd_path():
    x = torch.randn(4, 3, 8, generator=torch.Generator().manual_seed(5)) + 0.8
    with torch.no_grad():
        fast = LIF(v_threshold=0.5)(x)
    slow = LIF(v_threshold=0.5)(x.clone().requires_grad_(True))
    assert torch.equal(fast, slow.detach())


def test_rejects_scalar_input():
    with pytest.raises(ValueError, match="time dimension"):
        lif_multistep(torch.tensor(1.0))
