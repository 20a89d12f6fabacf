"""`sparsespikformer prune`: lottery-ticket pruning (IMP with late rewinding) or a baseline.

Writes OUT/round_XX/{mask.pt, weights.pt, result.json} and OUT/rounds.csv; a
baseline writes the same under OUT/baseline_<name>/ and reuses OUT's dense
round (and, for `reinit`, OUT's masks), running them first if needed. Started
again, it skips finished rounds and resumes the unfinished one.

A `sparsespikformer_*` preset prunes a selector-equipped model: it trains with
the selector loss (CE + ratio MSE, + KL to --teacher, which also initialises
round 0's backbone).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sparsespikformer.analysis.cli.arg_groups import (
    SHARED_TRAIN_FLAGS,
    add_model_and_data,
    add_shared_training,
    add_token_selection,
    progress_wanted,
    runtime_of,
    train_config_changes,
)
from sparsespikformer.analysis.cli.arg_types import finite_float, non_negative_int, positive_int
from sparsespikformer.simulator.errors import InputError

HELP = "lottery-ticket pruning: iterative magnitude pruning with rewinding, or a baseline"
# --rounds, --rate and --rewind-epoch without a flag or a recipe: 1 - 0.75^9 = 92.5 % sparsity
_LOTTERY_DEFAULTS = {"rounds": 9, "rate": 0.25, "rewind_epoch": 1}

def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_and_data(parser, out_help="output folder (round_XX/, rounds.csv)")
    parser.add_argument("--rounds", type=non_negative_int,
                        help="pruning rounds after the dense one (default: the recipe's, "
                             "else 9: 1 - 0.75^9 = 92.5%% sparsity)")
    parser.add_argument("--rate", type=finite_float,
                        help="fraction of the surviving weights removed per round "
                             "(default: the recipe's, else 0.25)")
    parser.add_argument("--rewind-epoch", type=non_negative_int,
                        help="rewind survivors to their weights after this epoch "
                             "(default: the recipe's, else 1; 0 = initialisation)")
    parser.add_argument("--baseline", choices=("none", "reinit", "oneshot", "random"),
                        default="none", help="none = IMP (default); reinit = winning masks on a "
                        "fresh initialisation; oneshot = one pruning to the final sparsity; "
                        "random = random masks")
    parser.add_argument("--baseline-rounds", type=positive_int, nargs="+", metavar="K",
                        help="train the reinit / random baseline only at these rounds "
                             "(default: every round)")
    parser.add_argument("--scope", choices=("global", "layer"), default="global",
                        help="rank weights over the whole model or per tensor (default global)")
    add_token_selection(parser, teacher_help="trained dense checkpoint: initialises a "
                        "sparsespikformer_* model's backbone and is its KL teacher")
    add_shared_training(parser, epochs_help="epochs per round (default: the recipe's)")


def run(args: argparse.Namespace) -> int:

    from sparsespikformer.model import create_model, get_preset_config
    from sparsespikformer.model.data import load_dataset
    from sparsespikformer.model.nn.token_selector import token_selectors_of
    from sparsespikformer.model.pruning.lottery import (
        LotteryTask,
        baseline_dir,
        run_lottery,
    )
    from sparsespikformer.model.training.distributed import process_group
    from sparsespikformer.model.training.recipes import model_overrides_for
    from sparsespikformer.model.training.seeding import seed_everything
    from sparsespikformer.model.training.selector_training import (
        SelectorLoss,
        SelectorLossConfig,
        load_teacher_for,
        selector_overrides,
        student_state_from_teacher,
    )

    runtime = runtime_of(args)
    train_config, lottery = settings_of(args)
    preset_config = get_preset_config(args.preset)
    img_size = args.img_size or preset_config.img_size
    train_set = load_dataset(args.data, "train", img_size=img_size)
    test_set = load_dataset(args.data, "test", img_size=img_size)
    overrides = {**model_overrides_for(preset_config, train_set.info),
                 **selector_overrides(args.preset, args.keep_ratio, args.scorer)}

    def build_model(seed: int):
        seed_everything(seed)
        return create_model(args.preset, **overrides)

    probe = build_model(lottery.seed)
    has_selectors = bool(token_selectors_of(probe))
    if args.teacher is not None and not has_selectors:
        raise InputError(f"--teacher needs a sparsespikformer_* preset, got {args.preset}")
    teacher = load_teacher_for(probe, args.teacher) if args.teacher else None
    task = LotteryTask(
        build_model=build_model, train_set=train_set, test_set=test_set,
        train_config=train_config,
        initial_state=student_state_from_teacher(probe, teacher) if teacher else None,
        loss_fn=SelectorLoss(teacher, SelectorLossConfig()) if has_selectors else None,
        progress=progress_wanted(args), runtime=runtime,
        # Recorded in OUT (settings.json): a resumed run must use the same model, data and
        # teacher. The teacher's path stands for its weights.
        metadata={"preset": args.preset, "data": args.data, "img_size": img_size,
                  "overrides": overrides,
                  "teacher": str(Path(args.teacher).resolve()) if args.teacher else None})
    with process_group(task.runtime.torch_device()) as shard:
        table = run_lottery(lottery, task, args.out)
    if not shard.is_main:
        return 0
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"rounds table: {baseline_dir(args.out, args.baseline)}/rounds.csv")
    return 0


def settings_of(args: argparse.Namespace):
    """(TrainConfig, LotteryConfig) of the flags: a flag wins over `--recipe`, which wins
    over the defaults (9 rounds of 25 %, rewinding to epoch 1)."""
    from sparsespikformer.model.pruning.lottery import LotteryConfig
    from sparsespikformer.model.training.recipes import get_recipe, recipe_for, with_changes

    changes = train_config_changes(args, SHARED_TRAIN_FLAGS)
    train_config = with_changes(recipe_for(args.preset, args.data, args.recipe), changes)
    recipe_lottery = get_recipe(args.recipe).lottery if args.recipe else {}
    flags = {"rounds": args.rounds, "rate": args.rate, "rewind_epoch": args.rewind_epoch}
    lottery = LotteryConfig(**{**_LOTTERY_DEFAULTS, **recipe_lottery,
                               **{k: v for k, v in flags.items() if v is not None}},
                            scope=args.scope, baseline=args.baseline, seed=train_config.seed,
                            baseline_rounds=args.baseline_rounds)
    return train_config, lottery
