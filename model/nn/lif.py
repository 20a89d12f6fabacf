"""Multi-step leaky integrate-and-fire neuron, fused over time.

Numerically identical (spikes and input gradients) to spikingjelly's
``MultiStepLIFNode(tau, v_threshold, v_reset, detach_reset=True, surrogate=Sigmoid(alpha))``
with the ``torch`` backend, which the reference Spikformer uses (docs/references.md, LIF):

    charge  h[t] = v[t-1] + (x[t] - (v[t-1] - v_reset)) / tau      (decay_input)
    fire    s[t] = heaviside(h[t] - v_threshold)                     (1 when h >= threshold)
    reset   v[t] = (1 - s[t]) * h[t] + s[t] * v_reset                (s detached)
    v[-1] = v_reset;  ds/dh = alpha * sigmoid(alpha * (h - thr)) * (1 - sigmoid(alpha * (h - thr)))

The whole time loop runs inside one autograd node: the forward keeps only the charged
membrane potential h (one tensor the size of the input) and the backward walks the loop in
reverse, so autograd does not record ~6 small ops per timestep.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from sparsespikformer.simulator.errors import InputError

if TYPE_CHECKING:
    from sparsespikformer.model.nn.config import SpikformerConfig

_HALF_DTYPES = (torch.float16, torch.bfloat16)


def _exact_reciprocal(tau: float) -> bool:
    """True when x / tau == x * (1 / tau) for every float x: tau a power of two."""
    mantissa, _ = math.frexp(tau)
    return mantissa == 0.5


def _charge(x_t, v, first, tau, v_reset, out):
    """h = v + (x - (v - v_reset)) / tau into `out`, rounded exactly as spikingjelly does."""
    if v_reset == 0.0 and _exact_reciprocal(tau):
        # Two passes instead of three; the product by 1/tau is exact, so is the result.
        if first:  # v = 0: h = x / tau
            return torch.mul(x_t, 1.0 / tau, out=out)
        torch.sub(x_t, v, out=out)
        return torch.add(v, out, alpha=1.0 / tau, out=out)
    if v_reset == 0.0:
        torch.sub(x_t, v, out=out)
    else:
        torch.sub(x_t, v - v_reset, out=out)
    return out.div_(tau).add_(v)


def _lif_forward(
    x: torch.Tensor, tau: float, v_threshold: float, v_reset: float, keep_charge: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Runs the T loop; returns spikes and, if asked, the charged potentials h.

    Spikes come back contiguous whatever the layout of x, so callers may hand in a
    transposed view without paying for a copy first. All work happens in preallocated
    buffers: 4 passes over the data per timestep.
    """
    spikes = torch.empty(x.shape, dtype=x.dtype, device=x.device)  # (T, ...)
    # h keeps x's memory layout: the backward's sigmoid then visits elements in the same
    # order as the per-step reference, so even its vectorised rounding matches.
    charge = torch.empty_like(x) if keep_charge else None
    v = torch.full(x.shape[1:], v_reset, dtype=x.dtype, device=x.device)
    h = None if keep_charge else torch.empty_like(v)
    if v_reset != 0.0:
        fired = torch.empty(v.shape, dtype=torch.bool, device=x.device)
        reset_value = torch.tensor(v_reset, dtype=x.dtype, device=x.device)
    for t in range(x.shape[0]):
        h_t = _charge(x[t], v, t == 0, tau, v_reset, charge[t] if keep_charge else h)
        if v_reset == 0.0:
            torch.ge(h_t, v_threshold, out=spikes[t])
            # v = h * (1 - s): h where silent, exactly 0 where it fired.
            torch.addcmul(h_t, h_t, spikes[t], value=-1.0, out=v)
        else:
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
    grad_h = torch.empty_like(charge[0])  # layout of h, for the sigmoid (see _lif_forward)
    sg = torch.empty_like(grad_h)
    silent = torch.empty_like(grad_h)
    grad_v = torch.empty_like(grad_h)  # gradient reaching v[t] from step t+1
    for t in range(charge.shape[0] - 1, -1, -1):
        h_t = charge[t]
        # Sigmoid surrogate in the reference's op order: g * (1 - sg) * sg * alpha.
        torch.sub(h_t, v_threshold, out=sg).mul_(alpha).sigmoid_()
        torch.sub(1.0, sg, out=grad_h)
        grad_h.mul_(grad_spikes[t]).mul_(sg).mul_(alpha)
        if t < charge.shape[0] - 1:
            # Reset is detached: v[t] = h[t] where silent, a constant where it fired.
            torch.lt(h_t, v_threshold, out=silent)
            torch.addcmul(grad_h, grad_v, silent, out=grad_h)
        torch.div(grad_h, tau, out=grad_x[t])
        # h[t] = v[t-1] + (x[t] - v[t-1]) / tau: autograd sums g and -(g / tau) into v[t-1].
        torch.sub(grad_h, grad_x[t], out=grad_v)
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
    """Spikes (same shape and dtype as x, contiguous) of a LIF layer driven by x (T, ...).

    The membrane potential is float32 whatever x's dtype (see the half-precision branch)."""
    if x.dim() < 1 or x.shape[0] < 1:
        raise InputError(f"LIF input needs a leading time dimension, got shape {tuple(x.shape)}")
    if x.dtype in _HALF_DTYPES:
        # Under autocast the current arrives in half precision: the membrane update and the
        # threshold comparison run in float32 (a half-precision membrane would round h near
        # the threshold and flip spikes); the 0/1 spikes go back in the current's dtype
        # exactly, and the casts pass the gradient through.
        spikes = lif_multistep(x.float(), tau, v_threshold, v_reset, surrogate_alpha)
        return spikes.to(x.dtype)
    if torch.is_grad_enabled() and x.requires_grad:
        return _LIFFunction.apply(x, tau, v_threshold, v_reset, surrogate_alpha)
    spikes, _ = _lif_forward(x, tau, v_threshold, v_reset, keep_charge=False)
    return spikes


class LIF(nn.Module):
    """Multi-step LIF layer: (T, ...) input -> (T, ...) binary spikes; stateless between calls."""

    def __init__(
        self,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        surrogate_alpha: float = 4.0,
    ):
        super().__init__()
        if tau <= 0:
            raise InputError(f"LIF tau must be positive, got {tau}")
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
