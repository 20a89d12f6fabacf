"""Multi-step leaky integrate-and-fire neuron, fused over time.

Numerically identical (spikes and input gradients) to spikingjelly's
``MultiStepLIFNode(tau, v_threshold, v_reset, detach_reset=True, surrogate=Sigmoid(alpha))``
with the ``torch`` backend, which the reference Spikformer uses:

    charge  h[t] = v[t-1] + (x[t] - (v[t-1] - v_reset)) / tau      (decay_input)
    fire    s[t] = heaviside(h[t] - v_threshold)                     (1 when h >= threshold)
    reset   v[t] = (1 - s[t]) * h[t] + s[t] * v_reset                (s detached)
    v[-1] = v_reset;  ds/dh = alpha * sigmoid(alpha * (h - thr)) * (1 - sigmoid(alpha * (h - thr)))

The whole time loop runs inside one autograd node: the forward keeps only the charged
membrane potential h (one tensor the size of the input) and the backward walks the loop in
reverse, so autograd does not record ~6 small ops per timestep.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from .config import SpikformerConfig


def _lif_forward(
    x: torch.Tensor, tau: float, v_threshold: float, v_reset: float, keep_charge: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Runs the T loop; returns spikes and, if asked, the charged potentials h.

    Spikes come back contiguous whatever the layout of x, so callers may hand in a
    transposed view without paying for a copy first.
    """
    spikes = torch.empty(x.shape, dtype=x.dtype, device=x.device)  # (T, ...)
    # h keeps x's memory layout: the backward's sigmoid then visits elements in the same
    # order as the per-step reference, so even its vectorised rounding matches.
    charge = torch.empty_like(x) if keep_charge else None
    v = torch.full(x.shape[1:], v_reset, dtype=x.dtype, device=x.device)
    h = torch.empty_like(v)
    fired = torch.empty(v.shape, dtype=torch.bool, device=x.device)
    reset_value = torch.tensor(v_reset, dtype=x.dtype, device=x.device)
    for t in range(x.shape[0]):
        h_t = charge[t] if keep_charge else h
        # Same op order as spikingjelly so every rounding matches.
        if v_reset == 0.0:
            torch.sub(x[t], v, out=h_t)
        else:
            torch.sub(x[t], v - v_reset, out=h_t)
        h_t.div_(tau).add_(v)
        torch.ge(h_t, v_threshold, out=fired)
        spikes[t].copy_(fired)
        torch.where(fired, reset_value, h_t, out=v)
    return spikes, charge


def _lif_backward(
    grad_spikes: torch.Tensor,
    charge: torch.Tensor,
    tau: float,
    v_threshold: float,
    alpha: float,
) -> torch.Tensor:
    """Exact reverse of `_lif_forward` as autograd would differentiate the unrolled loop."""
    grad_x = torch.empty_like(charge)
    grad_v = None  # gradient reaching v[t] from step t+1
    for t in range(charge.shape[0] - 1, -1, -1):
        h_t = charge[t]
        # Sigmoid surrogate, evaluated per timestep as the reference does (same kernels).
        sg = ((h_t - v_threshold) * alpha).sigmoid_()
        grad_h = grad_spikes[t] * (1.0 - sg) * sg * alpha
        if grad_v is not None:
            # Reset is detached: v[t] = h[t] where no spike, a constant where spiked.
            grad_h = grad_h + grad_v.masked_fill_(h_t >= v_threshold, 0.0)
        torch.div(grad_h, tau, out=grad_x[t])
        # h[t] = v[t-1] + (x[t] - v[t-1]) / tau  ->  dh/dv = 1 - 1/tau, summed as autograd does.
        grad_v = grad_h - grad_x[t]
    return grad_x


class _LIFFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, tau, v_threshold, v_reset, alpha):
        spikes, charge = _lif_forward(x, tau, v_threshold, v_reset, keep_charge=True)
        ctx.save_for_backward(charge)
        ctx.tau, ctx.v_threshold, ctx.alpha = tau, v_threshold, alpha
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):
        (charge,) = ctx.saved_tensors
        grad_x = _lif_backward(grad_spikes, charge, ctx.tau, ctx.v_threshold, ctx.alpha)
        return grad_x, None, None, None, None


def lif_multistep(
    x: torch.Tensor,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    v_reset: float = 0.0,
    surrogate_alpha: float = 4.0,
) -> torch.Tensor:
    """Spikes (same shape as x, contiguous) of a LIF layer driven by x of shape (T, ...)."""
    if x.dim() < 1 or x.shape[0] < 1:
        raise ValueError(f"LIF input needs a leading time dimension, got shape {tuple(x.shape)}")
    if torch.is_grad_enabled() and x.requires_grad:
        return _LIFFunction.apply(x, tau, v_threshold, v_reset, surrogate_alpha)
    spikes, _ = _lif_forward(x, tau, v_threshold, v_reset, keep_charge=False)
    return spikes


class LIF(nn.Module):
    """Multi-step LIF layer: input (T, ...) -> binary spikes (T, ...); no state kept between calls."""

    def __init__(
        self,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        surrogate_alpha: float = 4.0,
    ):
        super().__init__()
        if tau <= 0:
            raise ValueError(f"LIF tau must be positive, got {tau}")
        self.tau = float(tau)
        self.v_threshold = float(v_threshold)
        self.v_reset = float(v_reset)
        self.surrogate_alpha = float(surrogate_alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lif_multistep(x, self.tau, self.v_threshold, self.v_reset, self.surrogate_alpha)

    def extra_repr(self) -> str:
        return (
            f"tau={self.tau}, v_threshold={self.v_threshold}, v_reset={self.v_reset}, "
            f"surrogate_alpha={self.surrogate_alpha}"
        )


def lif_from_config(config: SpikformerConfig, v_threshold: float | None = None) -> LIF:
    """A LIF with the model's tau / threshold / surrogate; `v_threshold` overrides (attention)."""
    return LIF(
        tau=config.lif_tau,
        v_threshold=config.lif_threshold if v_threshold is None else v_threshold,
        surrogate_alpha=config.surrogate_alpha,
    )
