"""Argument groups that several commands share, each defined once: the model and data a
command trains on (`train`, `prune`), the training knobs they both expose (recipe, data
workers), token selection, the progress-bar rule, and where and how a command runs
(`--device`, `--amp`, `--sync-bn`; also on `eval`, `trace` and `demo`).
`train_config_changes` maps the set flags onto `TrainConfig` fields, `runtime_of` the run
flags onto a `Runtime`.
No torch import here: every command's parser is built for `--help`."""

from __future__ import annotations

import argparse
import sys

from sparsespikformer.analysis.cli.arg_types import (
    finite_float,
    non_negative_int,
    output_folder,
    positive_int,
    rng_seed,
)

DATA_HELP = ("digits | cifar10:PATH | cifar100:PATH | imagefolder:PATH | frames:PATH | "
             "events:PATH[?frames=T&split_by=number|time&size=HxW]")
SCORERS = ("learned", "firing_rate", "random")
# CLI flag -> TrainConfig field, for the flags both `train` and `prune` take.
SHARED_TRAIN_FLAGS = {"epochs": "epochs", "batch_size": "batch_size", "lr": "lr",
                      "seed": "seed", "threads": "num_threads", "workers": "num_workers"}
# Spelled out here (not imported) to keep torch out of `--help`; tests check they match.
DEVICE_HELP = "auto | cpu | cuda | cuda:N | mps (default auto: CUDA if present, else CPU)"
AMP_CHOICES = ("off", "bf16", "fp16")
RECIPE_NAMES = ("spikformer_cifar10", "spikformer_imagenet", "sparsespikformer_cifar10",
                "digits")


def add_model_and_data(parser: argparse.ArgumentParser, *, out_help: str) -> None:
    """--preset, --data, --out, --img-size."""
    parser.add_argument("--preset", default="spikformer_4_64_digits",
                        help="model preset (see `sparsespikformer list`); default %(default)s")
    parser.add_argument("--data", default="digits", help=f"{DATA_HELP} (default %(default)s)")
    parser.add_argument("--out", required=True, type=output_folder, help=out_help)
    parser.add_argument("--img-size", type=positive_int,
                        help="resize inputs (default: the preset's size)")


def add_shared_training(parser: argparse.ArgumentParser, *, epochs_help: str) -> None:
    """--epochs, --batch-size, --lr, --seed, --threads, --no-progress, --recipe, --workers,
    --device, --amp, --sync-bn."""
    parser.add_argument("--epochs", type=positive_int, help=epochs_help)
    parser.add_argument("--batch-size", type=positive_int, help="global batch size")
    parser.add_argument("--lr", type=finite_float, help="peak learning rate")
    parser.add_argument("--seed", type=rng_seed, help="initialisation and shuffling seed")
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads")
    add_progress_flag(parser)
    parser.add_argument("--recipe", choices=RECIPE_NAMES,
                        help="a published training recipe (flags given here override it; "
                             "default: the digits recipe for digits presets on digits, else "
                             "the Spikformer optimizer without augmentation)")
    parser.add_argument("--workers", type=non_negative_int,
                        help="data-loading processes (image folders; seeded; pinned memory "
                             "on CUDA)")
    add_runtime(parser, sync_bn=True)


def add_progress_flag(parser: argparse.ArgumentParser) -> None:
    """--no-progress (bars are drawn only when standard error is a terminal anyway)."""
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars (they are shown only on a terminal)")


def progress_wanted(args: argparse.Namespace) -> bool:
    """Progress bars go to standard error, and only to a terminal: redirected to a file or
    a pipe they would fill a log with carriage-return lines."""
    stream = sys.stderr
    return not getattr(args, "no_progress", False) and hasattr(stream, "isatty") \
        and stream.isatty()


def add_runtime(parser: argparse.ArgumentParser, *, amp: bool = True,
                sync_bn: bool = False) -> None:
    """--device, and --amp and --sync-bn where the command takes them."""
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    if amp:
        parser.add_argument("--amp", choices=AMP_CHOICES, default="off",
                            help="autocast the forward pass in bf16 or fp16 (membrane "
                                 "potentials stay float32; default off)")
    if sync_bn:
        parser.add_argument("--sync-bn", action="store_true",
                            help="under torchrun: batch-norm statistics over the global batch")


def runtime_of(args: argparse.Namespace):
    """The `Runtime` the run flags ask for, its device checked (imports torch): call it
    before loading anything, so a bad device fails at once."""
    from sparsespikformer.model.training.devices import Runtime

    runtime = Runtime(device=args.device, amp=getattr(args, "amp", "off"),
                      sync_bn=getattr(args, "sync_bn", False))
    runtime.torch_device()
    return runtime


def add_token_selection(parser: argparse.ArgumentParser, *, teacher_help: str) -> None:
    """--teacher, --keep-ratio, --scorer (sparsespikformer_* presets)."""
    parser.add_argument("--teacher", help=teacher_help)
    parser.add_argument("--keep-ratio", type=finite_float,
                        help="token keep ratio ρ (selector presets)")
    parser.add_argument("--scorer", choices=SCORERS, help="token scorer (selector presets)")


def train_config_changes(args: argparse.Namespace, flags: dict[str, str]) -> dict:
    """{TrainConfig field: value} for every flag in `flags` that was given."""
    return {field: getattr(args, flag) for flag, field in flags.items()
            if getattr(args, flag) is not None}
