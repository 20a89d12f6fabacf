"""`--sync-bn`: batch-norm statistics over the whole global batch, not one rank's share.

On CUDA this is PyTorch's `nn.SyncBatchNorm`. PyTorch's refuses CPU tensors, so on the
CPU (gloo) `CpuSyncBatchNorm` does the same computation with two differentiable
all-reduces (torch's functional collectives, whose all-reduce backward all-reduces the
gradient): the global mean first, then the global biased variance about it, so the
variance is the two-pass sum of squared deviations a single process computes
(E[x²] - E[x]² would lose digits to cancellation). Training normalises with the biased
variance and updates the running variance with the unbiased one, as `F.batch_norm` does.
Evaluation and a single process fall back to plain batch norm.

`to_sync_batchnorm` converts every BatchNorm of a model in place; `to_plain_batchnorm`
converts back (same parameter and buffer names, so checkpoints do not change).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as funcol
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from sparsespikformer.model.training.distributed import distributed


class CpuSyncBatchNorm(_BatchNorm):
    """BatchNorm over (N, C, ...) inputs whose training statistics span every rank."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input (N, C, ...), got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and distributed()):
            return super().forward(x)
        self._check_input_dim(x)
        values = x.float()
        dims = [0, *range(2, x.dim())]
        shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
        count = torch.tensor([values.numel() // x.shape[1]], dtype=values.dtype)
        totals = _summed(torch.cat([values.sum(dims), count]))              # (C + 1,)
        elements = totals[-1]
        mean = totals[:-1] / elements                                       # (C,)
        centred = values - mean.view(shape)
        variance = _summed(centred.square().sum(dims)) / elements
        out = centred * torch.rsqrt(variance + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), variance.detach(), elements.item())
        return out.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, variance: torch.Tensor,
                              elements: float) -> None:
        self.num_batches_tracked.add_(1)
        factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                  else self.momentum)
        unbiased = variance * (elements / max(elements - 1.0, 1.0))
        self.running_mean.mul_(1.0 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1.0 - factor).add_(unbiased, alpha=factor)


def _summed(values: torch.Tensor) -> torch.Tensor:
    """Σ over ranks, differentiable (the backward sums the gradients over ranks)."""
    return funcol.all_reduce(values, "sum", dist.group.WORLD)


def _convert(module: nn.Module, make) -> nn.Module:
    converted = make(module) if isinstance(module, _BatchNorm) else module
    for name, child in module.named_children():
        converted.add_module(name, _convert(child, make))
    return converted


def _rebuild(module: _BatchNorm, cls: type[_BatchNorm], plain: type[_BatchNorm]
             ) -> _BatchNorm:
    """A `cls` layer with `module`'s settings, parameters, buffers and mode."""
    fresh = cls(module.num_features, module.eps, module.momentum, module.affine,
                module.track_running_stats)
    tensors = list(module.parameters()) + list(module.buffers())
    if tensors:
        fresh.to(tensors[0].device)
    fresh.load_state_dict(module.state_dict())
    fresh.train(module.training)
    fresh._plain_class = plain
    return fresh


def sync_class(device: torch.device) -> type[_BatchNorm]:
    return nn.SyncBatchNorm if device.type == "cuda" else CpuSyncBatchNorm


def to_sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm of `model` synchronised across ranks (children replaced in place)."""
    cls = sync_class(device)
    return _convert(model, lambda bn: bn if isinstance(bn, cls)
                    else _rebuild(bn, cls, plain=type(bn)))


def to_plain_batchnorm(model: nn.Module) -> nn.Module:
    """The inverse of `to_sync_batchnorm`: each layer back to the class it replaced."""
    def plain(bn: _BatchNorm) -> _BatchNorm:
        original = getattr(bn, "_plain_class", None)
        return bn if original is None else _rebuild(bn, original, plain=original)

    converted = _convert(model, plain)
    for module in converted.modules():
        module.__dict__.pop("_plain_class", None)
    return converted
