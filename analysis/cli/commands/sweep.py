"""`sparsespikformer sweep SPEC --out DIR`: evaluate every point of a sweep spec.

SPEC is a YAML file or the name of a bundled spec (`sparsespikformer list`). Results go
to DIR/results.jsonl as points finish and to DIR/results.csv (the tidy table) at the end;
run the same command again after an interruption and it resumes, skipping every point
already stored. `--executor dask` runs on a Dask cluster (`--scheduler tcp://host:8786`)
or, without a scheduler, on a local Dask cluster of `--workers` processes.
"""

from __future__ import annotations

import argparse
import signal

from sparsespikformer.analysis.cli.arg_groups import add_progress_flag, progress_wanted
from sparsespikformer.analysis.cli.arg_types import output_folder

HELP = "run a hardware x model design-space sweep (resumable; local processes or Dask)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="sweep spec YAML, or a bundled spec name")
    parser.add_argument("--out", required=True, type=output_folder,
                        help="results folder (resumed if it exists)")
    parser.add_argument("--executor", choices=("local", "dask"), default="local",
                        help="local process pool (default) or Dask distributed")
    parser.add_argument("--workers", type=int,
                        help="worker processes (default: the CPUs available, or in-process "
                             "for sweeps under 2000 points; 1 = in-process)")
    parser.add_argument("--scheduler", help="Dask scheduler address (with --executor dask)")
    parser.add_argument("--chunk-size", type=int,
                        help="points per task sent to a worker (default: automatic)")
    add_progress_flag(parser)


def _interrupt_on_sigterm() -> None:
    """`kill PID` stops the sweep as cleanly as Ctrl-C: workers stopped, table written."""
    def handler(signum, frame):  # noqa: ARG001 - signal API
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def run(args: argparse.Namespace) -> int:
    from sparsespikformer.analysis.reporting.display import format_duration, format_energy
    from sparsespikformer.analysis.sweeps.run import run_sweep

    _interrupt_on_sigterm()
    outcome = run_sweep(args.spec, args.out, executor=args.executor, workers=args.workers,
                        scheduler=args.scheduler, chunk_size=args.chunk_size,
                        progress=progress_wanted(args))
    results = outcome.results
    print(f"{outcome.total_points} points: {outcome.already_done} already done, "
          f"{outcome.evaluated} evaluated now, {outcome.errors} rejected by the config")
    if outcome.evaluated:
        print(f"evaluation: {outcome.elapsed_s:.2f} s, {outcome.points_per_s:.0f} points/s")
    if outcome.errors:
        first = results.loc[results["status"] == "error", "error"].iloc[0]
        print(f"first rejection: {first}")
    where = outcome.best_point_text()
    if where:  # every swept value of the best point, as the spec names its axes
        ok = results[results["status"] == "ok"] if "status" in results else results
        best = ok.loc[ok["energy_pj"].idxmin()]
        print(f"lowest energy: {format_energy(best['energy_pj'])}, "
              f"{format_duration(best['latency_s'])} ({where})")
    print(f"results: {outcome.out_dir / 'results.csv'}")
    return 0
