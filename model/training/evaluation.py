"""Accuracy and loss of a model on a data split, on the model's device, on any number of
processes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sparsespikformer.model.data import Dataset
from sparsespikformer.model.training.devices import autocast
from sparsespikformer.model.training.distributed import Shard, all_reduce_sum, current_shard
from sparsespikformer.simulator.errors import InputError


def _model_device(model: nn.Module) -> torch.device:
    first = next(iter(model.parameters()), None)
    return torch.device("cpu") if first is None else first.device


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, batch_size: int = 256, *, amp: str = "off",
             shard: Shard | None = None) -> dict[str, float]:
    """Top-1 accuracy (0..1) and mean cross-entropy loss (no smoothing) on `dataset`, on the
    model's device. Under torchrun (`shard`), rank r evaluates batches r, r + W, ... of the
    same batches a single process would, and the per-batch sums are added in batch order:
    the result does not depend on the number of processes."""
    num_samples = len(dataset)
    if num_samples == 0:
        raise InputError(f"{dataset.info.source}: the {dataset.info.split} split is empty")
    shard = shard or current_shard()  # all_reduce_sum below adds over the process group
    device = _model_device(model)
    was_training = model.training
    model.eval()
    batches = torch.arange(num_samples).split(batch_size)
    per_batch = torch.zeros(len(batches), 2, dtype=torch.float64)   # loss sum, correct
    try:
        for index in range(shard.rank, len(batches), shard.world_size):
            images, labels = dataset.get_batch(batches[index], device=device)
            with autocast(device, amp):
                logits = model(images)                                  # (B, K)
            per_batch[index, 0] = float(F.cross_entropy(logits.float(), labels,
                                                        reduction="sum"))
            per_batch[index, 1] = int((logits.argmax(dim=-1) == labels).sum())
    finally:
        model.train(was_training)
    loss_sum, correct = (sum(column) for column in all_reduce_sum(per_batch).T.tolist())
    return {"accuracy": correct / num_samples, "loss": loss_sum / num_samples,
            "samples": float(num_samples)}
