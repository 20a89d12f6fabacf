"""Several processes, one training run: `torch.distributed` as `torchrun` launches it.

`torchrun --nproc_per_node N ...` starts N copies of a command with RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT set. `process_group(device)` joins them (gloo on
the CPU, nccl on CUDA); the model is wrapped in `DistributedDataParallel`, which averages
the gradients. Everything else stays one run:

* every rank draws the randomness of the whole global batch from the same seeded
  generators and keeps its own slice (`Shard`), so the global batches, augmentations and
  mixup partners depend on (seed, epoch, step) alone, not on how many processes share them;
* rank 0 writes checkpoints, logs and progress bars (`is_main`), and the others wait at a
  `barrier` before reading what it wrote;
* metrics are summed over ranks (`all_reduce_sum`); decisions taken from them (pruning
  masks) are made on rank 0 and broadcast (`broadcast_tensors`).

Outside torchrun (no process group) every helper here is the single-process no-op.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist

from sparsespikformer.simulator.errors import InputError

# A rank that dies leaves the others waiting in a collective: give up after this long.
_TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class Shard:
    """This process's place in the run: rank r of world_size processes."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def bounds(self, global_batch: int, what: str = "batch size") -> tuple[int, int]:
        """[lo, hi): this rank's rows of a global batch; InputError unless it divides."""
        if global_batch % self.world_size:
            raise InputError(f"global {what} {global_batch} does not divide over "
                             f"{self.world_size} processes; use a multiple of "
                             f"{self.world_size}")
        share = global_batch // self.world_size
        return self.rank * share, (self.rank + 1) * share


def current_shard() -> Shard:
    """The shard of this process (rank 0 of 1 without a process group)."""
    if dist.is_available() and dist.is_initialized():
        return Shard(dist.get_rank(), dist.get_world_size())
    return Shard()


def launched_world_size() -> int:
    """WORLD_SIZE as torchrun sets it (1 outside torchrun)."""
    value = os.environ.get("WORLD_SIZE", "1")
    return int(value) if value.isdigit() else 1


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


@contextlib.contextmanager
def process_group(device: torch.device) -> Iterator[Shard]:
    """Join the torchrun process group for the block (no-op outside torchrun or if joined)."""
    if launched_world_size() <= 1 or dist.is_initialized():
        yield current_shard()
        return
    if not dist.is_available():
        raise InputError("torchrun started several processes but this torch build has no "
                         "torch.distributed")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend_for(device), timeout=_TIMEOUT)
    try:
        yield current_shard()
    finally:
        dist.destroy_process_group()


def _collective_device() -> torch.device:
    """Where tensors for collectives must live: the GPU for nccl, the CPU for gloo."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    """Every rank waits here (rank 0 has finished writing what the others read next)."""
    if distributed():
        dist.barrier()


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Σ over ranks of `values` (a new tensor on values' device)."""
    if not distributed():
        return values.clone()
    summed = values.detach().to(_collective_device(), copy=True)
    dist.all_reduce(summed, op=dist.ReduceOp.SUM)
    return summed.to(values.device)


def broadcast_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rank 0's tensors on every rank (same names, shapes and dtypes on every rank)."""
    if not distributed():
        return tensors
    result = {}
    for name, tensor in tensors.items():
        # bool travels as uint8 (nccl has no bool type)
        carrier = tensor.to(_collective_device(), dtype=torch.uint8 if tensor.dtype
                            == torch.bool else tensor.dtype, copy=True)
        dist.broadcast(carrier, src=0)
        result[name] = carrier.to(device=tensor.device, dtype=tensor.dtype)
    return result


def run_on_main(work, *args, **kwargs):
    """`work(*args, **kwargs)` on rank 0 only (e.g. writing a file), then a barrier.

    Returns its result on rank 0, None elsewhere."""
    try:
        return work(*args, **kwargs) if current_shard().is_main else None
    finally:
        # also after an error, so the other ranks fail at their next collective, not hang
        barrier()
