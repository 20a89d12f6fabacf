"""`sparsespikformer train`: train a preset on a data set, resuming if OUT holds a checkpoint.

Runs on `--device` in `--amp` precision; under `torchrun --nproc_per_node N` every process
trains its share of each global batch (`--batch-size` stays the global batch) and rank 0
writes OUT."""

from __future__ import annotations

import argparse

from sparsespikformer.analysis.cli.arg_groups import (
    SHARED_TRAIN_FLAGS,
    add_model_and_data,
    add_shared_training,
    add_token_selection,
    progress_wanted,
    runtime_of,
    train_config_changes,
)
from sparsespikformer.analysis.cli.arg_types import finite_float, positive_int

HELP = "train a preset on a data set (resumes if --out holds a checkpoint)"

# Flags only `train` takes (CLI flag -> TrainConfig field); unset flags keep the recipe's.
_TRAIN_ONLY_FLAGS = {
    "weight_decay": "weight_decay", "warmup_epochs": "warmup_epochs", "min_lr": "min_lr",
    "label_smoothing": "label_smoothing", "mixup": "mixup_alpha",
}
# Flags passed on to create_model() as preset overrides (recorded for `eval`).
_ARCHITECTURE_FLAGS = ("depth", "embed_dim", "num_heads", "timesteps")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_and_data(parser, out_help="output folder (checkpoint.pt, history.csv)")
    parser.add_argument("--depth", type=positive_int, help="override the preset's number of blocks")
    parser.add_argument("--embed-dim", type=positive_int,
                        help="override the preset's embedding width")
    parser.add_argument("--num-heads", type=positive_int,
                        help="override the preset's attention heads")
    parser.add_argument("--timesteps", type=positive_int, help="override the preset's T (images)")
    add_shared_training(parser, epochs_help="epochs (default: the recipe's)")
    parser.add_argument("--weight-decay", type=finite_float)
    parser.add_argument("--warmup-epochs", type=finite_float)
    parser.add_argument("--min-lr", type=finite_float)
    parser.add_argument("--label-smoothing", type=finite_float)
    parser.add_argument("--mixup", type=finite_float, help="mixup alpha (0 = off)")
    # token selection (sparsespikformer_* presets; see model/training/selector_training.py)
    add_token_selection(parser, teacher_help="trained dense checkpoint: the selector model "
                        "starts from it and trains with CE + 2.0 ratio MSE + 0.5 KL to it")


def run(args: argparse.Namespace) -> int:

    from sparsespikformer.model import create_model, get_preset_config
    from sparsespikformer.model.data import load_dataset
    from sparsespikformer.model.training.distributed import process_group
    from sparsespikformer.model.training.loop import CHECKPOINT_NAME, train
    from sparsespikformer.model.training.recipes import (
        model_overrides_for,
        recipe_for,
        with_changes,
    )
    from sparsespikformer.model.training.seeding import seed_everything
    from sparsespikformer.model.training.selector_training import (
        load_teacher_for,
        selector_overrides,
        train_selector,
    )

    runtime = runtime_of(args)
    architecture = {name: getattr(args, name) for name in _ARCHITECTURE_FLAGS
                    if getattr(args, name) is not None}
    preset_config = get_preset_config(args.preset, **architecture)
    changes = train_config_changes(args, {**SHARED_TRAIN_FLAGS, **_TRAIN_ONLY_FLAGS})
    config = with_changes(recipe_for(args.preset, args.data, args.recipe), changes)
    img_size = args.img_size or preset_config.img_size
    train_set = load_dataset(args.data, "train", img_size=img_size)
    test_set = load_dataset(args.data, "test", img_size=img_size)
    overrides = {**architecture, **model_overrides_for(preset_config, train_set.info),
                 **selector_overrides(args.preset, args.keep_ratio, args.scorer)}
    seed_everything(config.seed)
    model = create_model(args.preset, **overrides)
    metadata = {"preset": args.preset, "data": args.data, "img_size": img_size,
                "overrides": overrides}
    with process_group(runtime.torch_device()) as shard:
        if args.teacher is not None:
            history = train_selector(model, load_teacher_for(model, args.teacher), train_set,
                                     test_set, config, args.out, progress=progress_wanted(args),
                                     metadata=metadata, runtime=runtime)
        else:
            history = train(model, train_set, test_set, config, args.out,
                            progress=progress_wanted(args), metadata=metadata, runtime=runtime)
    if not shard.is_main:
        return 0
    last = history.iloc[-1]
    print(f"{args.preset} on {train_set.info.name}: test accuracy {last['test_accuracy']:.2%} "
          f"after {int(last['epoch'])} epochs; checkpoint {args.out}/{CHECKPOINT_NAME}")
    return 0
