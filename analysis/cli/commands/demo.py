"""`sparsespikformer demo`: the whole co-design story on the bundled digits data."""

from __future__ import annotations

import argparse

from sparsespikformer.analysis.cli.arg_groups import (
    add_progress_flag,
    add_runtime,
    progress_wanted,
    runtime_of,
)
from sparsespikformer.analysis.cli.arg_types import output_folder

HELP = ("train, prune (LTH), select tokens, trace, simulate on every bundled accelerator, "
        "sweep and report, on the bundled digits data")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo_run", type=output_folder,
                        help="output directory; re-running reuses finished stages "
                             "(default: demo_run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: fewer epochs, rounds and samples (minutes less, "
                             "numbers not meaningful)")
    add_progress_flag(parser)
    add_runtime(parser, amp=False)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sparsespikformer.analysis.demo import DemoConfig, run_demo
    from sparsespikformer.analysis.demo_summary import summary_table

    runtime_of(args)  # a bad --device fails before the first stage starts
    config = DemoConfig(out_dir=Path(args.out), seed=args.seed, progress=progress_wanted(args),
                        device=args.device)
    if args.quick:
        config = quick_config(config)
    summary = run_demo(config)
    print(summary_table(summary))
    print(f"\nwrote {config.out_dir / 'summary.json'} and {config.out_dir / 'report.html'}")
    return 0


def quick_config(config):
    from dataclasses import replace

    return replace(config, lth_rounds=2, dense_epochs=1, lth_epochs=1, selector_epochs=1,
                   trace_samples=32,
                   sweep_rows=(8, 16), sweep_cols=(8, 16), sweep_weight_kib=(64,))
