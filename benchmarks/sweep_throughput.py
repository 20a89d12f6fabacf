"""Sweep throughput: points per second for each executor on one synthetic trace.

    python benchmarks/sweep_throughput.py [--points-per-trace 2400] [--workers 2]

Builds a grid spec in a temporary directory (Spikformer-4-384 shapes, one synthetic trace),
runs it with the in-process executor, the local process pool and Dask (a LocalCluster,
if dask is installed), and prints one row per executor. `eval_s` is the evaluation phase
only (executor start included, planning excluded); every run starts from an empty store.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from sparsespikformer.analysis.sweeps.run import run_sweep
from sparsespikformer.analysis.sweeps.spec import load_sweep_spec


def write_spec(directory: Path, points: int) -> Path:
    clocks = max(1, points // (4 * 4 * 6))
    spec = {
        "version": 1, "name": "throughput", "base": "sparse_int8_45nm", "mode": "grid",
        "axes": {
            "pe_array.rows": [8, 16, 32, 64],
            "pe_array.cols": [8, 16, 32, 64],
            "weight_memory.size_kib": {"log2": [512, 16384]},
            "clock_mhz": {"range": [100, 100 + 10 * (clocks - 1), 10]},
        },
        "traces": [{"name": "codesigned", "accuracy": 0.95,
                    "synthetic": {"preset": "spikformer_4_384_cifar10",
                                  "weight_density": 0.1, "keep_ratio": 0.7}}],
    }
    path = directory / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points-per-trace", type=int, default=2400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=None)
    args = parser.parse_args()
    runs = [("inline", "local", 1), ("local pool", "local", args.workers),
            ("dask LocalCluster", "dask", args.workers)]
    with tempfile.TemporaryDirectory() as tmp:
        spec = load_sweep_spec(write_spec(Path(tmp), args.points_per_trace))
        reference = None
        print(f"{'executor':<20}{'workers':>8}{'points':>8}{'eval_s':>9}{'points/s':>10}"
              f"{'wall_s':>8}  same as inline")
        for label, kind, workers in runs:
            try:
                start = time.perf_counter()
                outcome = run_sweep(spec, Path(tmp) / label.replace(" ", "_"), executor=kind,
                                    workers=workers, chunk_size=args.chunk_size,
                                    progress=False)
                wall = time.perf_counter() - start
            except ValueError as err:  # dask not installed
                print(f"{label:<20} skipped: {err}")
                continue
            same = "-" if reference is None else str(outcome.results.equals(reference))
            reference = outcome.results if reference is None else reference
            print(f"{label:<20}{workers:>8}{outcome.evaluated:>8}{outcome.elapsed_s:>9.2f}"
                  f"{outcome.points_per_s:>10.0f}{wall:>8.2f}  {same}")


if __name__ == "__main__":
    main()
