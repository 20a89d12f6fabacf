"""Mutation testing of the formula modules: how many deliberate one-token bugs the tests catch.

    .venv/bin/python benchmarks/mutation.py                      # the default files and tests
    .venv/bin/python benchmarks/mutation.py simulator/memory.py --tests tests/simulator
    .venv/bin/python benchmarks/mutation.py --list-survivors --keep   # names; diffs via mutmut show

Runs mutmut (https://mutmut.readthedocs.io, `pip install mutmut`; `pip install -e ".[mutation]"`)
and prints killed / survived per file. Not part of CI: a full run takes tens of minutes on two
cores.

Why a staging folder: mutmut names each mutant after its file's path below `src/` (or the
project root) and matches it with the module name the tests import. This project maps its
folders into one namespace with `package_dir` (`simulator/` is imported as
`sparsespikformer.simulator`), so run in place every mutant would be reported as "no tests".
The script therefore copies the four package folders into a throw-away src layout
(`<work>/src/sparsespikformer/...`) with the tests and runs mutmut there. Each run has its own
work folder (a new temporary one unless `--work` is given), so runs can go on side by side and
the repository is never touched. Nothing here needs the editable install to be removed: the
staged `src/` comes first on mutmut's `sys.path`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("model", "simulator", "hwconfigs", "analysis")
NAMESPACE = "sparsespikformer"

# The simulator's formula modules and the recorder's count kernels, with the tests that
# guard them (mutmut runs, for each mutant, only the tests that reach the mutated function).
DEFAULT_FILES = (
    "simulator/pe_array.py", "simulator/mapping.py", "simulator/memory.py",
    "simulator/neuron_unit.py", "simulator/selector_unit.py", "simulator/tokens.py",
    "simulator/engine.py", "simulator/layer_table.py", "simulator/synthetic.py",
    "simulator/residency.py", "simulator/schedule.py", "simulator/imbalance.py",
    "simulator/timing.py", "simulator/sram_table.py", "model/tracing/counts.py",
)
DEFAULT_TESTS = (
    "tests/simulator/test_components.py", "tests/simulator/test_engine.py",
    "tests/simulator/test_energy_per_action.py", "tests/simulator/test_fidelity.py",
    "tests/simulator/test_tokens.py", "tests/simulator/test_trace.py",
    "tests/simulator/test_residency.py", "tests/simulator/test_schedule.py",
    "tests/simulator/test_review_cases.py", "tests/simulator/test_sram_table.py",
    "tests/simulator/test_schedule_live_sets.py", "tests/simulator/test_layer_table_fields.py",
    "tests/simulator/test_memory_formulas.py", "tests/simulator/test_imbalance.py",
    "tests/simulator/test_config.py", "tests/simulator/test_engine_outputs.py",
    "tests/simulator/test_memory_live_sets.py", "tests/simulator/test_synthetic_worked.py",
    "tests/simulator/test_mapping_worked.py",
    "tests/model/test_trace_counts.py", "tests/model/test_count_kernels.py",
    "tests/model/test_tensor_stats.py",
)
STATUS_BY_EXIT_CODE = {0: "survived", 1: "killed", 3: "killed", 37: "killed"}
# mutmut's other codes: 5 / 33 no tests, 34 skipped, 35 suspicious, 36 / 24 / 152 / 255
# timeout, -9 / -11 segfault (a mutant that crashes the tests counts as caught below).
CAUGHT = ("killed", "timeout", "segfault")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", default=list(DEFAULT_FILES),
                        help="source files to mutate, relative to the repository root")
    parser.add_argument("--tests", nargs="+", default=list(DEFAULT_TESTS),
                        help="test files or folders that may kill the mutants")
    parser.add_argument("--work", type=Path, default=None,
                        help="staging folder (default: a new temporary folder, removed after)")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1,
                        help="mutants tested at once (default: one per CPU)")
    parser.add_argument("--list-survivors", action="store_true",
                        help="print the name of every surviving mutant")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    return parser.parse_args(argv)


def stage(work: Path, files: list[str], tests: list[str]) -> None:
    """A src layout of the packages, the tests, and a setup.cfg with the mutmut settings."""
    src = work / "src" / NAMESPACE
    for package in PACKAGES:
        shutil.copytree(ROOT / package, src / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(ROOT / "tests", work / "tests",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # the setup.cfg's package list and its sections pytest reads, plus mutmut's own
    text = (ROOT / "setup.cfg").read_text(encoding="utf-8")
    staged = [f"src/{NAMESPACE}/{path}" for path in files]
    text += ("\n[mutmut]\nsource_paths = src\nuse_git_change_detection = false\n"
             "track_dependencies = false\n"
             "only_mutate =\n" + "".join(f"    {path}\n" for path in staged)
             + "pytest_add_cli_args_test_selection =\n" + "".join(f"    {t}\n" for t in tests)
             + "pytest_add_cli_args =\n    -p\n    no:cacheprovider\n    -x\n")
    (work / "setup.cfg").write_text(text, encoding="utf-8")


def run_mutmut(work: Path, max_children: int) -> int:
    """`mutmut run` in the staging folder; its spinner output goes to `<work>/mutmut.log`."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children)]
    log = work / "mutmut.log"
    print(f"mutmut run in {work} (log: {log.name}) ...", flush=True)
    with log.open("w", encoding="utf-8") as handle:
        code = subprocess.run(command, cwd=work, env=env, stdout=handle, stderr=subprocess.STDOUT,
                              check=False).returncode
    if code != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
        print(f"mutmut exited with {code}; the end of its log:\n{tail}", file=sys.stderr)
    return code


def statuses(work: Path, files: list[str]) -> dict[str, dict[str, str]]:
    """{file: {mutant name: status}} from mutmut's per-file result files."""
    result = {}
    for path in files:
        meta = work / "mutants" / "src" / NAMESPACE / (path + ".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.is_file() else {}
        result[path] = {name: STATUS_BY_EXIT_CODE.get(code, _other_status(code))
                        for name, code in codes.items()}
    return result


def _other_status(code: int | None) -> str:
    if code is None:
        return "not checked"
    if code in (5, 33):
        return "no tests"
    if code in (36, 24, -24, 152, 255):
        return "timeout"
    if code in (-9, -11):
        return "segfault"
    return "suspicious"


def print_table(by_file: dict[str, dict[str, str]]) -> None:
    print(f"\n{'file':<30}{'mutants':>8}{'killed':>8}{'survived':>9}{'other':>7}{'caught':>8}")
    total = Counter()
    for path, names in by_file.items():
        counts = Counter(names.values())
        caught = sum(counts[s] for s in CAUGHT)
        other = len(names) - caught - counts["survived"]
        total.update(mutants=len(names), caught=caught, survived=counts["survived"],
                     killed=counts["killed"], other=other)
        share = f"{caught / len(names):.0%}" if names else "-"
        print(f"{path:<30}{len(names):>8}{counts['killed']:>8}{counts['survived']:>9}"
              f"{other:>7}{share:>8}")
    share = f"{total['caught'] / total['mutants']:.1%}" if total["mutants"] else "-"
    print(f"{'all':<30}{total['mutants']:>8}{total['killed']:>8}{total['survived']:>9}"
          f"{total['other']:>7}{share:>8}")
    print("caught = killed + timeout + segfault; other = no tests, skipped, suspicious, "
          "not checked")


def print_survivors(work: Path, by_file: dict[str, dict[str, str]]) -> None:
    """The surviving mutants' names; `mutmut show NAME` in a kept work folder prints a diff."""
    for path, names in by_file.items():
        survivors = sorted(name for name, status in names.items() if status == "survived")
        if survivors:
            print(f"\n{path}: {len(survivors)} survived")
            print("\n".join(f"  {name}" for name in survivors))
    print(f"\ndiffs: cd {work} && {Path(sys.executable).name} -m mutmut show NAME (with --keep)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = [p for p in [*args.files, *args.tests] if not (ROOT / p).exists()]
    if missing:
        print(f"not in the repository: {', '.join(missing)}", file=sys.stderr)
        return 2
    temporary = args.work is None
    work = Path(tempfile.mkdtemp(prefix="ssf-mutation-")) if temporary else args.work
    if not temporary and work.exists() and any(work.iterdir()):
        print(f"{work}: not empty (give a new folder; runs must not share one)", file=sys.stderr)
        return 2
    try:
        stage(work, args.files, args.tests)
        code = run_mutmut(work, args.max_children)
        by_file = statuses(work, args.files)
        if args.list_survivors:
            print_survivors(work, by_file)
        print_table(by_file)
        return 0 if any(by_file.values()) else (code or 1)
    finally:
        if temporary and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        elif temporary:
            print(f"work folder kept: {work}")


if __name__ == "__main__":
    sys.exit(main())
