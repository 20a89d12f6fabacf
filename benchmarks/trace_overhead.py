"""Cost of recording a trace against plain inference, and of a full-size synthetic trace.

Prints a table: plain inference seconds, trace-recording seconds and the overhead for
`--samples` digits test images on the digits preset (weights from `--checkpoint` if given,
so the spike statistics are a trained model's), both with the default (everything measured
on every sample) and with `real_stats_samples=64` (membrane currents and pre-activation
outputs described on the first batch only); then a floor: hooks on the same layers that
only sum each layer's input over its last two axes (per-token and per-channel events, the
least any exact recorder must read) with no bookkeeping; then the time to build a synthetic
trace of spikformer_8_512_imagenet from its layer shapes. Issue targets: overhead <= 25 %,
synthetic trace < 2 s.

Timings are the best of `--repeats` runs, plain and recording interleaved, because this
2-core VM's speed drifts by 10-20 % between runs. Each row gives wall seconds and, in
brackets, the process's CPU seconds: with `--threads 1` CPU time is the work done, which
other processes on a shared machine disturb far less than the wall clock (and OpenMP
threads that spin-wait for a descheduled partner inflate multi-threaded wall times there).
"""

from __future__ import annotations

import argparse
import time

import torch

from sparsespikformer.model import create_model, get_preset_config
from sparsespikformer.model.data import load_dataset
from sparsespikformer.model.tracing.record import layer_shapes, record_trace
from sparsespikformer.model.tracing.recorder import recorded_modules
from sparsespikformer.model.training.weights import load_model_weights
from sparsespikformer.simulator.synthetic import synthetic_trace


def best_of(repeats: int, work) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def interleaved_best(repeats: int, runs: dict) -> dict[str, tuple[float, float]]:
    """Best (wall, CPU) seconds of each run, taking turns so that a slow spell hits all."""
    times = {key: [] for key in runs}
    cpu = {key: [] for key in runs}
    for _ in range(repeats):
        for key, work in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            work()
            times[key].append(time.perf_counter() - start)
            cpu[key].append(time.process_time() - start_cpu)
    return {key: (min(times[key]), min(cpu[key])) for key in runs}


def two_reductions(module, inputs, output) -> None:
    """Floor hook: per-token and per-channel sums of the layer's input, nothing else."""
    inputs[0].sum(-1)
    inputs[0].sum(-2)


def benchmark_inputs(config, samples: int) -> torch.Tensor:
    """Digits test images for digit-sized presets; seeded noise of the right shape otherwise
    (the cost of recording depends on the shapes, hardly on the values)."""
    if (config.in_channels, config.img_size) == (1, 16):
        return load_dataset("digits", "test").get_batch(torch.arange(samples))[0]
    generator = torch.Generator().manual_seed(0)
    return torch.rand(samples, config.in_channels, config.img_size, config.img_size,
                      generator=generator)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="spikformer_4_64_digits",
                        help="any preset; non-digit sizes run on seeded noise images")
    parser.add_argument("--checkpoint")
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = create_model(args.preset).eval()
    if args.checkpoint:
        load_model_weights(model, args.checkpoint)
    images = benchmark_inputs(model.config, args.samples)

    @torch.no_grad()
    def plain() -> None:
        for batch in images.split(args.batch_size):
            model(batch)

    @torch.no_grad()
    def floor() -> None:
        handles = [module.register_forward_hook(two_reductions)
                   for _, module in recorded_modules(model)]
        try:
            plain()
        finally:
            for handle in handles:
                handle.remove()

    def record(real_stats_samples):
        return lambda: record_trace(model, images, batch_size=args.batch_size,
                                    real_stats_samples=real_stats_samples)

    plain()  # warm-up
    runs = {"plain": plain, "all": record(None), "first": record(args.batch_size),
            "floor": floor}
    seconds = interleaved_best(args.repeats, runs)
    config = get_preset_config("spikformer_8_512_imagenet")

    def synthetic() -> None:
        with torch.device("meta"):
            big = create_model("spikformer_8_512_imagenet")
        shapes = layer_shapes(big, (config.in_channels, config.img_size, config.img_size))
        synthetic_trace(shapes, firing_rate=0.15, weight_density=0.1,
                        timesteps=config.timesteps)

    synthetic_s = best_of(args.repeats, synthetic)
    plain_s, plain_cpu = seconds["plain"]
    print(f"| measurement ({args.samples} samples, {args.preset}, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads) | seconds (CPU) | overhead (CPU) |")
    print("|---|---|---|")
    print(f"| plain inference | {plain_s:.3f} ({plain_cpu:.3f}) | |")
    labels = (("all", "inference + trace recording, default (every statistic on every sample)"),
              ("first", f"inference + trace recording, real_stats_samples={args.batch_size}"),
              ("floor", "floor: inference + two sums of each recorded layer's input, no trace"))
    for key, label in labels:
        wall, cpu = seconds[key]
        print(f"| {label} | {wall:.3f} ({cpu:.3f}) | {100 * (wall / plain_s - 1):.1f} % "
              f"({100 * (cpu / plain_cpu - 1):.1f} %) |")
    print(f"| synthetic trace, spikformer_8_512_imagenet | {synthetic_s:.3f} | |")


if __name__ == "__main__":
    main()
