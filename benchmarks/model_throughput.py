"""Throughput of our Spikformer against a reference-style implementation of the same network.

"Reference-style" is the test oracle tests/model/reference_spikformer.py: ZK-Zhou/spikformer's
forward code for the preset's form restated op by op (its reshapes and .contiguous()
copies) with a per-timestep Python-loop LIF under plain autograd, as spikingjelly's
MultiStepLIFNode runs with backend='torch' (the CPU path; the reference's 'cupy' backend
needs a GPU). Both run the same weights; the script checks that their
logits agree (max abs diff) and prints images/s for inference and for training
(forward + backward), on CPU, as the median over timed calls.

    python benchmarks/model_throughput.py [--preset spikformer_4_384_cifar10] [--batch 16]
                                          [--iters 5] [--warmup 3] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from sparsespikformer.model import create_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "model"))
from reference_spikformer import reference_forward  # noqa: E402  (the test oracle)


class ReferencePath(nn.Module):
    """A copy of our model's weights run through the reference forward code, restated op by
    op with spikingjelly's step-loop LIF (the test oracle tests/model/reference_spikformer.py)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = copy.deepcopy(model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return reference_forward(self.model, x)


def _median_images_per_s(steps: dict, batch: int, warmup: int, iters: int) -> dict:
    """Images/s of each step function (median over `iters` timed calls).

    The implementations take turns call by call, so a burst of load from other processes
    on a shared machine hits both alike; the median drops the outliers.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    seconds = {name: [] for name in steps}
    for _ in range(iters):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            seconds[name].append(time.perf_counter() - start)
    return {name: batch / statistics.median(times) for name, times in seconds.items()}


def _inference_step(model, x):
    def step():
        with torch.no_grad():
            model(x)

    return step


def _training_step(model, x, y):
    loss_fn = nn.CrossEntropyLoss()

    def step():
        model.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()

    return step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="spikformer_4_384_cifar10")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ours = create_model(args.preset)
    cfg = ours.config
    ref = ReferencePath(ours)
    gen = torch.Generator().manual_seed(1)
    frames = (cfg.timesteps,) if cfg.form == "dvs" else ()  # DVS inputs are per-step frames
    x = torch.randn(args.batch, *frames, cfg.in_channels, cfg.img_size, cfg.img_size,
                    generator=gen)
    y = torch.randint(0, cfg.num_classes, (args.batch,), generator=gen)

    # Same outputs, in both BN modes (train mode first: it also updates the running stats
    # identically in both models, giving eval mode realistic statistics).
    diffs = {}
    for mode in ("train", "eval"):
        ours.train(mode == "train")
        ref.train(mode == "train")
        with torch.no_grad():
            diffs[mode] = (ours(x) - ref(x)).abs().max().item()

    models = {"ours (fused LIF)": ours, "reference-style (step-loop LIF)": ref}
    for model in models.values():
        model.eval()
    infer = _median_images_per_s(
        {k: _inference_step(m, x) for k, m in models.items()}, args.batch, args.warmup, args.iters
    )
    for model in models.values():
        model.train()
    train = _median_images_per_s(
        {k: _training_step(m, x, y) for k, m in models.items()}, args.batch, args.warmup,
        args.iters,
    )
    rows = [(label, infer[label], train[label]) for label in models]

    print(f"preset {args.preset}, batch {args.batch}, T={cfg.timesteps}, CPU threads "
          f"{torch.get_num_threads()}, {args.warmup} warm-up + median of {args.iters} timed calls")
    print(f"max |logit diff| ours vs reference-style: train mode {diffs['train']:.3g}, "
          f"eval mode {diffs['eval']:.3g}")
    print(f"{'implementation':34s} {'inference img/s':>16s} {'training img/s':>15s}")
    for label, infer, train in rows:
        print(f"{label:34s} {infer:16.1f} {train:15.1f}")
    print(f"{'speed-up':34s} {rows[0][1] / rows[1][1]:15.2f}x {rows[0][2] / rows[1][2]:14.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
