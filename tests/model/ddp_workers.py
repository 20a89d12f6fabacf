"""Training scenarios run by several gloo processes, started the way torchrun starts them
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), and by the test process alone as
the single-process reference. Each returns plain tensors and numbers; a spawned rank saves
its result to OUT/<scenario>_rank<r>.pt for the test to compare."""

from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist

from sparsespikformer.model import create_model
from sparsespikformer.model.data import load_dataset
from sparsespikformer.model.data.base import InMemoryDataset
from sparsespikformer.model.pruning.lottery import LotteryConfig, LotteryTask, run_lottery
from sparsespikformer.model.training.devices import Runtime
from sparsespikformer.model.training.distributed import current_shard
from sparsespikformer.model.training.loop import TrainConfig, default_loss, train

TRAIN_SAMPLES, TEST_SAMPLES = 64, 32
# 4 steps of a global batch of 16 per epoch; lr high enough that the weights move visibly
CONFIG = TrainConfig(epochs=1, batch_size=16, lr=1e-2, warmup_epochs=0, min_lr=1e-3,
                     eval_batch_size=16, seed=3)
STEPS_PER_EPOCH = TRAIN_SAMPLES // CONFIG.batch_size


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn(scenario: str, world_size: int, out: Path) -> list[dict]:
    """Run `scenario` on `world_size` gloo processes; their results, by rank."""
    torch.multiprocessing.spawn(_entry, args=(world_size, free_port(), scenario, str(out)),
                                nprocs=world_size, join=True)
    return [torch.load(out / f"{scenario}_rank{rank}.pt", weights_only=True)
            for rank in range(world_size)]


def _entry(rank: int, world_size: int, port: int, scenario: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        result = SCENARIOS[scenario](Path(out))
    finally:
        dist.destroy_process_group()
    torch.save(result, Path(out) / f"{scenario}_rank{rank}.pt")


# ---------------------------------------------------------------- pieces


def digits_subsets() -> tuple[InMemoryDataset, InMemoryDataset]:
    def subset(split: str, count: int) -> InMemoryDataset:
        dataset = load_dataset("digits", split)
        images, labels = dataset.get_batch(torch.arange(count))
        return InMemoryDataset(images, labels, dataset.info)
    return subset("train", TRAIN_SAMPLES), subset("test", TEST_SAMPLES)


def tiny_spikformer(seed: int) -> torch.nn.Module:
    """The digits preset cut to one block of width 32, T=2 (29k parameters, BN and LIF)."""
    torch.manual_seed(seed)
    return create_model("spikformer_4_64_digits", depth=1, embed_dim=32, num_heads=4,
                        timesteps=2)


def flat_parameters(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()]).clone()


class StepRecorder:
    """Hooks that keep the first step's loss and gradients and the parameters after every
    step."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.first_grads: torch.Tensor | None = None
        self.params: list[torch.Tensor] = []

    def loss(self, model, images, targets, logits):
        loss = default_loss(model, images, targets, logits)
        self.losses.append(float(loss.detach()))
        return loss

    def after_backward(self, model) -> None:
        if self.first_grads is None:
            self.first_grads = torch.cat([p.grad.flatten() for p in model.parameters()]).clone()

    def after_step(self, model) -> None:
        self.params.append(flat_parameters(model))


# ---------------------------------------------------------------- scenarios


def steps(out: Path, sync_bn: bool = True) -> dict:
    """One epoch with --sync-bn: per-step parameters, first loss and gradients."""
    train_set, test_set = digits_subsets()
    model = tiny_spikformer(seed=0)
    recorder = StepRecorder()
    history = train(model, train_set, test_set, CONFIG,
                    out / f"steps_w{current_shard().world_size}", progress=False,
                    loss_fn=recorder.loss, after_backward=recorder.after_backward,
                    after_optimizer_step=recorder.after_step,
                    runtime=Runtime(device="cpu", sync_bn=sync_bn))
    return {"losses": torch.tensor(recorder.losses), "first_grads": recorder.first_grads,
            "params": torch.stack(recorder.params),
            "test_accuracy": float(history["test_accuracy"].iloc[-1]),
            "world_size": int(history["world_size"].iloc[-1])}


class _Interrupt(Exception):
    pass


def resume(out: Path) -> dict:
    """Two epochs straight, and two epochs killed in the second and started again."""
    train_set, test_set = digits_subsets()
    config = dataclasses.replace(CONFIG, epochs=2, mixup_alpha=0.4)
    straight = tiny_spikformer(seed=1)
    train(straight, train_set, test_set, config, out / "straight", progress=False,
          runtime=Runtime(device="cpu"))
    steps_taken = {"n": 0}

    def crash_in_epoch_two(model) -> None:
        steps_taken["n"] += 1
        if steps_taken["n"] == STEPS_PER_EPOCH + 2:
            raise _Interrupt

    try:
        train(tiny_spikformer(seed=1), train_set, test_set, config, out / "resumed",
              progress=False, after_optimizer_step=crash_in_epoch_two,
              runtime=Runtime(device="cpu"))
    except _Interrupt:
        pass
    resumed = tiny_spikformer(seed=99)       # everything must come from the checkpoint
    torch.manual_seed(1234)
    train(resumed, train_set, test_set, config, out / "resumed", progress=False,
          runtime=Runtime(device="cpu"))
    return {"straight": flat_parameters(straight), "resumed": flat_parameters(resumed)}


def lottery(out: Path) -> dict:
    """IMP: the dense round and one pruning round, with --sync-bn."""
    train_set, test_set = digits_subsets()
    built: list[torch.nn.Module] = []

    def build_model(seed: int) -> torch.nn.Module:
        built.append(tiny_spikformer(seed))
        return built[-1]

    task = LotteryTask(build_model=build_model, train_set=train_set, test_set=test_set,
                       train_config=CONFIG, progress=False,
                       runtime=Runtime(device="cpu", sync_bn=True))
    folder = out / f"lottery_w{current_shard().world_size}"
    run_lottery(LotteryConfig(rounds=1, rate=0.25, rewind_epoch=1, seed=0), task, folder)
    return {"round1_model": flat_parameters(built[-1])}


def every_scenario(out: Path) -> dict:
    """All of them in one process group (a spawn costs seconds of imports)."""
    return {"steps": steps(out), "resume": resume(out), "lottery": lottery(out)}


SCENARIOS = {"steps": steps, "resume": resume, "lottery": lottery, "all": every_scenario}
