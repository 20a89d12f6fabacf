"""Throughput of our Spikformer against a reference-style implementation of the same network.

"Reference-style" re-states ZK-Zhou/spikformer's cifar10/model.py (its reshapes and
.contiguous() copies) with a per-timestep Python-loop LIF under plain autograd, as
spikingjelly's MultiStepLIFNode runs with backend='torch' (the CPU path; the reference's
'cupy' backend needs a GPU). Both models get the same weights; the script checks that their
logits agree (max abs diff) and prints images/s for inference and for training
(forward + backward), on CPU, as the median over timed calls.

    python benchmarks/model_throughput.py [--preset spikformer_4_384_cifar10] [--batch 16]
                                          [--iters 5] [--warmup 3] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from sparsespikformer.model import create_model


class _Sigmoid(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        s = (x * ctx.alpha).sigmoid_()
        return grad * (1.0 - s) * s * ctx.alpha, None


class StepLoopLIF(nn.Module):
    """spikingjelly MultiStepLIFNode(tau=2, detach_reset=True), torch backend."""

    def __init__(self, v_threshold=1.0):
        super().__init__()
        self.v_threshold = v_threshold

    def forward(self, x_seq):
        v = torch.zeros_like(x_seq[0])
        out = []
        for t in range(x_seq.shape[0]):
            v = v + (x_seq[t] - v) / 2.0
            spike = _Sigmoid.apply(v - self.v_threshold, 4.0)
            spike_d = spike.detach()
            v = (1.0 - spike_d) * v + spike_d * 0.0
            out.append(spike)
        return torch.stack(out)


class RefMLP(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1_linear, self.fc1_bn = nn.Linear(dim, hidden), nn.BatchNorm1d(hidden)
        self.fc1_lif = StepLoopLIF()
        self.fc2_linear, self.fc2_bn = nn.Linear(hidden, dim), nn.BatchNorm1d(dim)
        self.fc2_lif = StepLoopLIF()
        self.hidden = hidden

    def forward(self, x):
        T, B, N, C = x.shape
        x = self.fc1_linear(x.flatten(0, 1))
        x = self.fc1_bn(x.transpose(-1, -2)).transpose(-1, -2)
        x = x.reshape(T, B, N, self.hidden).contiguous()
        x = self.fc1_lif(x)
        x = self.fc2_linear(x.flatten(0, 1))
        x = self.fc2_bn(x.transpose(-1, -2)).transpose(-1, -2).reshape(T, B, N, C).contiguous()
        return self.fc2_lif(x)


class RefSSA(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        for n in ("q", "k", "v"):
            setattr(self, f"{n}_linear", nn.Linear(dim, dim))
            setattr(self, f"{n}_bn", nn.BatchNorm1d(dim))
            setattr(self, f"{n}_lif", StepLoopLIF())
        self.attn_lif = StepLoopLIF(v_threshold=0.5)
        self.proj_linear, self.proj_bn = nn.Linear(dim, dim), nn.BatchNorm1d(dim)
        self.proj_lif = StepLoopLIF()

    def _qkv(self, n, x, T, B, N, C):
        y = getattr(self, f"{n}_linear")(x)
        y = getattr(self, f"{n}_bn")(y.transpose(-1, -2)).transpose(-1, -2)
        y = y.reshape(T, B, N, C).contiguous()
        y = getattr(self, f"{n}_lif")(y)
        return y.reshape(T, B, N, self.heads, C // self.heads).permute(0, 1, 3, 2, 4).contiguous()

    def forward(self, x):
        T, B, N, C = x.shape
        x_for_qkv = x.flatten(0, 1)
        q, k, v = (self._qkv(n, x_for_qkv, T, B, N, C) for n in ("q", "k", "v"))
        x = ((q @ k.transpose(-2, -1)) * 0.125) @ v
        x = self.attn_lif(x.transpose(2, 3).reshape(T, B, N, C).contiguous()).flatten(0, 1)
        x = self.proj_bn(self.proj_linear(x).transpose(-1, -2)).transpose(-1, -2)
        return self.proj_lif(x.reshape(T, B, N, C))


class RefBlock(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.attn, self.mlp = RefSSA(dim, heads), RefMLP(dim, 4 * dim)

    def forward(self, x):
        x = x + self.attn(x)
        return x + self.mlp(x)


class RefSPS(nn.Module):
    def __init__(self, in_channels, dim):
        super().__init__()
        widths = (in_channels, dim // 8, dim // 4, dim // 2, dim)
        for i, sfx in enumerate(("", "1", "2", "3")):
            conv = nn.Conv2d(widths[i], widths[i + 1], 3, 1, 1, bias=False)
            setattr(self, f"proj_conv{sfx}", conv)
            setattr(self, f"proj_bn{sfx}", nn.BatchNorm2d(widths[i + 1]))
            setattr(self, f"proj_lif{sfx}", StepLoopLIF())
        self.maxpool2 = nn.MaxPool2d(3, 2, 1)
        self.maxpool3 = nn.MaxPool2d(3, 2, 1)
        self.rpe_conv = nn.Conv2d(dim, dim, 3, 1, 1, bias=False)
        self.rpe_bn, self.rpe_lif = nn.BatchNorm2d(dim), StepLoopLIF()

    def forward(self, x):
        T, B, C, H, W = x.shape
        x = x.flatten(0, 1)
        for sfx, (h, w) in zip(("", "1", "2", "3"), ((H, W), (H, W), (H, W), (H // 2, W // 2))):
            x = getattr(self, f"proj_bn{sfx}")(getattr(self, f"proj_conv{sfx}")(x))
            x = x.reshape(T, B, -1, h, w).contiguous()
            x = getattr(self, f"proj_lif{sfx}")(x).flatten(0, 1).contiguous()
            if sfx in ("2", "3"):
                x = getattr(self, f"maxpool{sfx}")(x)
        x_feat = x.reshape(T, B, -1, H // 4, W // 4).contiguous()
        x = self.rpe_bn(self.rpe_conv(x)).reshape(T, B, -1, H // 4, W // 4).contiguous()
        x = self.rpe_lif(x) + x_feat
        return x.flatten(-2).transpose(-1, -2)


class ReferenceStyleSpikformer(nn.Module):
    """cifar10/model.py's Spikformer (minus the unused LayerNorms) with a step-loop LIF."""

    def __init__(self, in_channels, dim, heads, depth, classes, timesteps):
        super().__init__()
        self.T = timesteps
        self.patch_embed = RefSPS(in_channels, dim)
        self.block = nn.ModuleList(RefBlock(dim, heads) for _ in range(depth))
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)
        x = self.patch_embed(x)
        for blk in self.block:
            x = blk(x)
        return self.head(x.mean(2).mean(0))


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
    if cfg.form != "cifar" or cfg.sps_pool_after != (2, 3):
        raise SystemExit("the reference-style model covers CIFAR-form presets (pools after 2, 3)")
    ref = ReferenceStyleSpikformer(cfg.in_channels, cfg.embed_dim, cfg.num_heads, cfg.depth,
                                   cfg.num_classes, cfg.timesteps)
    ref.load_state_dict(ours.state_dict(), strict=True)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch, cfg.in_channels, cfg.img_size, cfg.img_size, generator=gen)
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
