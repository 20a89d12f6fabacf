"""Training throughput (images/s) of a preset on this machine: CPU with 1 and 2 processes,
and each visible GPU configuration when CUDA is present.

Every configuration runs the training loop's own pieces: the sharded batch stream
(`EpochBatches`, CIFAR-shaped uint8 noise through the CIFAR transform), autocast, AdamW and,
for several processes, DistributedDataParallel over gloo (CPU) or nccl (GPU), the processes
spawned as torchrun would start them. The global batch is the same for every process
count. Images/s = global batch x timed steps / wall seconds of those steps (after warm-up,
between barriers), on rank 0. CPU runs give the processes the machine's cores between
them (2 processes on 2 cores: one torch thread each) unless --threads says otherwise; on a
machine shared with other work, OpenMP threads that wait for a descheduled partner make
multi-threaded runs erratic: compare with --threads 1.

    python benchmarks/training_throughput.py [--preset spikformer_4_384_cifar10]
        [--batch 16] [--steps 3] [--warmup 1] [--procs 1 2] [--augment] [--amp off]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist

from sparsespikformer.model import create_model, get_preset_config
from sparsespikformer.model.data.augment import BatchAugment
from sparsespikformer.model.data.base import BatchTransform, DatasetInfo, InMemoryDataset
from sparsespikformer.model.training.batches import EpochBatches, soft_cross_entropy
from sparsespikformer.model.training.devices import autocast, grad_scaler, synchronize
from sparsespikformer.model.training.distributed import Shard
from sparsespikformer.model.training.loop import TrainConfig, build_optimizer
from sparsespikformer.model.training.recipes import get_recipe


def noise_dataset(config, samples: int) -> InMemoryDataset:
    """CIFAR-shaped uint8 noise with CIFAR's transform (scale, normalise, flips)."""
    generator = torch.Generator().manual_seed(0)
    shape = (config.in_channels, config.img_size, config.img_size)
    images = torch.randint(0, 256, (samples, *shape), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, config.num_classes, (samples,), generator=generator)
    info = DatasetInfo(name="noise", split="train", num_classes=config.num_classes,
                       input_shape=shape, class_names=tuple(map(str, range(config.num_classes))),
                       source="noise")
    transform = BatchTransform(scale=1 / 255, mean=(0.5,) * config.in_channels,
                               std=(0.25,) * config.in_channels, random_hflip=True)
    return InMemoryDataset(images, labels, info, transform)


def run(rank: int, world: int, port: int, args: argparse.Namespace, device_type: str,
        result: str) -> None:
    """One process: warm-up and timed steps; rank 0 writes images/s to `result`."""
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                          WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo", rank=rank,
                                world_size=world)
    device = torch.device("cuda", rank) if device_type == "cuda" else torch.device("cpu")
    if device_type == "cpu":
        torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // world))
    config = get_preset_config(args.preset)
    torch.manual_seed(0)
    model = create_model(args.preset).to(device)
    optimizer = build_optimizer(model, TrainConfig())
    scaler = grad_scaler(device, args.amp)
    forward = model if world == 1 else torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[rank] if device_type == "cuda" else None)
    steps = args.warmup + args.steps
    dataset = noise_dataset(config, steps * args.batch)
    augment = (BatchAugment(get_recipe("spikformer_cifar10").train.augment,
                            dataset.info.input_shape) if args.augment else None)
    batches = EpochBatches(dataset, batch_size=args.batch, seed=0, epoch=0,
                           mixup_alpha=0.5 if args.augment else None, label_smoothing=0.1,
                           shard=Shard(rank, world), device=device, augment=augment)
    started = None
    for index, batch in enumerate(batches):
        if index == args.warmup:
            synchronize(device)
            if world > 1:
                dist.barrier()
            started = time.perf_counter()
        with autocast(device, args.amp):
            loss = soft_cross_entropy(forward(batch.images), batch.targets)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    synchronize(device)
    if world > 1:
        dist.barrier()
    seconds = time.perf_counter() - started
    if rank == 0:
        Path(result).write_text(f"{args.batch * args.steps / seconds} {torch.get_num_threads()}")
    if world > 1:
        dist.destroy_process_group()


def measure(world: int, args: argparse.Namespace, device_type: str) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as folder:
        result = str(Path(folder) / "result")
        if world == 1:
            run(0, 1, 0, args, device_type, result)
        else:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            torch.multiprocessing.spawn(run, args=(world, port, args, device_type, result),
                                        nprocs=world, join=True)
        images_per_s, threads = Path(result).read_text().split()
        return float(images_per_s), int(threads)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="spikformer_4_384_cifar10")
    parser.add_argument("--batch", type=int, default=16, help="global batch")
    parser.add_argument("--steps", type=int, default=3, help="timed steps")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2],
                        help="CPU process counts to run")
    parser.add_argument("--amp", choices=("off", "bf16", "fp16"), default="off")
    parser.add_argument("--augment", action="store_true",
                        help="the spikformer_cifar10 recipe's augmentation and mixup")
    parser.add_argument("--threads", type=int,
                        help="torch threads per CPU process (default: cores / processes)")
    parser.add_argument("--no-gpu", action="store_true", help="skip GPU runs")
    args = parser.parse_args()

    print(f"torch {torch.__version__}; CPU: {cpu_name()}, {os.cpu_count()} cores; "
          f"preset {args.preset}, global batch {args.batch}, {args.steps} timed steps after "
          f"{args.warmup} warm-up, amp {args.amp}, augmentation {'on' if args.augment else 'off'}")
    print("| device | processes | threads / process | images/s |")
    print("|---|---|---|---|")
    for world in args.procs:
        images_per_s, threads = measure(world, args, "cpu")
        print(f"| CPU | {world} | {threads} | {images_per_s:.2f} |", flush=True)
    if torch.cuda.is_available() and not args.no_gpu:
        gpus = torch.cuda.device_count()
        for world in sorted({1, min(2, gpus)}):
            images_per_s, _ = measure(world, args, "cuda")
            print(f"| {torch.cuda.get_device_name(0)} | {world} | - | {images_per_s:.2f} |",
                  flush=True)
    else:
        print("(no CUDA GPU visible: GPU rows skipped)")


if __name__ == "__main__":
    main()
