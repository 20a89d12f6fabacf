"""A sweep interrupted at any moment resumes with no point lost and none done twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sweep_fakes
from sweep_fakes import FAKE, INTERRUPTING, write_spec

from sparsespikformer.analysis.sweeps.run import run_sweep
from sparsespikformer.analysis.sweeps.spec import load_sweep_spec
from sparsespikformer.analysis.sweeps.store import RESULTS_CSV, RESULTS_JSONL

HERE = Path(__file__).resolve().parent
BIG_AXES = {"pe_array.rows": [8, 16, 32], "clock_mhz": [100, 200, 300, 400]}  # 48 points


def jsonl_keys(directory: Path) -> list[str]:
    lines = (directory / RESULTS_JSONL).read_text().splitlines()
    return [json.loads(line)["key"] for line in lines]


@pytest.fixture()
def reference(tmp_path):
    """An uninterrupted run of the spec: the oracle for every resumed one."""
    spec = load_sweep_spec(write_spec(tmp_path, axes=BIG_AXES))
    outcome = run_sweep(spec, tmp_path / "reference", workers=1, progress=False,
                        evaluator=FAKE)
    assert outcome.total_points == outcome.evaluated == 48 and outcome.errors == 0
    return spec, tmp_path / "reference"


def assert_same_as_reference(directory: Path, reference_dir: Path) -> None:
    keys = jsonl_keys(directory)
    assert len(keys) == len(set(keys)), "a point was stored twice"
    assert set(keys) == set(jsonl_keys(reference_dir)), "a point is missing"
    assert (directory / RESULTS_CSV).read_bytes() == (reference_dir / RESULTS_CSV).read_bytes()


def test_fake_values_are_the_closed_form(reference):
    spec, reference_dir = reference
    import pandas as pd

    table = pd.read_csv(reference_dir / RESULTS_CSV)
    row = table[(table["trace"] == "sparse") & (table["base"] == "tiny_b")
                & (table["pe_array.rows"] == 16) & (table["clock_mhz"] == 200)].iloc[0]
    macs = 4 * (64 * 16 * 27 + 2 * 64 * 16 * 16)  # T=4, conv + two linears
    pes = 16 * 32  # tiny_b has 32 columns
    assert row["energy_pj"] == pytest.approx(macs * 0.25 / pes + 64)
    assert row["latency_s"] == pytest.approx(macs / (pes * 200e6))
    assert row["accuracy"] == 0.85 and row["weight_sparsity"] == pytest.approx(0.75)


def test_ctrl_c_mid_chunk_then_resume(reference, tmp_path):
    spec, reference_dir = reference
    out = tmp_path / "interrupted"
    sweep_fakes.INTERRUPT.update(after=13, count=0)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_sweep(spec, out, workers=1, chunk_size=5, progress=False,
                      evaluator=INTERRUPTING)
    finally:
        sweep_fakes.INTERRUPT.update(after=None, count=0)
    assert len(jsonl_keys(out)) == 10  # two whole chunks; the third was in flight
    assert (out / RESULTS_CSV).is_file()  # the table of what is done, written on the way out
    resumed = run_sweep(spec, out, workers=1, progress=False, evaluator=FAKE)
    assert (resumed.already_done, resumed.evaluated) == (10, 38)
    assert_same_as_reference(out, reference_dir)
    again = run_sweep(spec, out, workers=1, progress=False, evaluator=FAKE)
    assert (again.already_done, again.evaluated) == (48, 0)
    assert_same_as_reference(out, reference_dir)


def test_torn_last_line_then_resume(reference, tmp_path):
    spec, reference_dir = reference
    out = tmp_path / "torn"
    sweep_fakes.INTERRUPT.update(after=20, count=0)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_sweep(spec, out, workers=1, chunk_size=4, progress=False,
                      evaluator=INTERRUPTING)
    finally:
        sweep_fakes.INTERRUPT.update(after=None, count=0)
    lines = (out / RESULTS_JSONL).read_bytes().splitlines(keepends=True)
    assert len(lines) == 20
    # as if the process died half-way through writing the 20th line
    (out / RESULTS_JSONL).write_bytes(b"".join(lines[:19]) + lines[19][:25])
    resumed = run_sweep(spec, out, workers=1, progress=False, evaluator=FAKE)
    assert (resumed.already_done, resumed.evaluated) == (19, 29)
    assert_same_as_reference(out, reference_dir)


def run_script(tmp_path: Path, spec_path: Path, out: Path, workers: int) -> subprocess.Popen:
    script = tmp_path / "run_sweep_script.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        from sweep_fakes import SLOW
        from sparsespikformer.analysis.sweeps.run import run_sweep

        if __name__ == "__main__":
            run_sweep({str(spec_path)!r}, {str(out)!r}, workers={workers}, chunk_size=2,
                      progress=False, evaluator=SLOW)
    """), encoding="utf-8")
    return subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ,
                                                         "SWEEP_PID_LOG": str(tmp_path / "pids")})


def wait_for_lines(path: Path, count: int, process: subprocess.Popen, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        if process.poll() is not None:
            raise AssertionError(f"sweep exited early: {process.stderr.read().decode()}")
        time.sleep(0.005)
    raise AssertionError("sweep made no progress")


def test_killed_process_resumes(reference, tmp_path):
    spec, reference_dir = reference
    out = tmp_path / "killed"
    process = run_script(tmp_path, spec.source, out, workers=1)
    wait_for_lines(out / RESULTS_JSONL, 10, process)
    process.send_signal(signal.SIGKILL)  # no cleanup, no table, maybe a torn line
    process.wait(timeout=30)
    done = len(jsonl_keys_tolerant(out))
    assert 10 <= done < 48
    resumed = run_sweep(spec, out, workers=1, progress=False, evaluator=FAKE)
    assert resumed.already_done == done and resumed.evaluated == 48 - done
    assert_same_as_reference(out, reference_dir)


def jsonl_keys_tolerant(directory: Path) -> list[str]:
    keys = []
    for line in (directory / RESULTS_JSONL).read_bytes().split(b"\n"):
        try:
            keys.append(json.loads(line)["key"])
        except ValueError:
            pass
    return keys


def test_ctrl_c_on_a_process_pool_stops_the_workers_and_resumes(reference, tmp_path):
    spec, reference_dir = reference
    out = tmp_path / "pool"
    process = run_script(tmp_path, spec.source, out, workers=2)
    wait_for_lines(out / RESULTS_JSONL, 8, process)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) != 0
    done = len(jsonl_keys(out))  # a clean stop: every stored line is whole
    assert 8 <= done < 48
    pids = {int(p) for p in (tmp_path / "pids").read_text().split()}
    assert pids and os.getpid() not in pids
    time.sleep(0.5)
    for pid in pids:  # the pool's workers are gone, not orphaned and still running
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    resumed = run_sweep(spec, out, workers=1, progress=False, evaluator=FAKE)
    assert resumed.evaluated == 48 - done
    assert_same_as_reference(out, reference_dir)


def test_a_changed_trace_is_a_new_point_not_a_resumed_one(reference, tmp_path):
    spec, reference_dir = reference
    changed_dir = tmp_path / "changed"
    changed_dir.mkdir()
    changed = load_sweep_spec(write_spec(changed_dir, axes=BIG_AXES, traces=[
        {"name": "dense", "accuracy": 0.9,
         "synthetic": {"layer_shapes": sweep_fakes.tiny_layer_shapes(), "firing_rate": 0.3}}]))
    outcome = run_sweep(changed, reference_dir, workers=1, progress=False, evaluator=FAKE)
    assert (outcome.already_done, outcome.evaluated) == (0, 24)
    assert len(jsonl_keys(reference_dir)) == 48 + 24  # old rows kept in the log
    assert len(outcome.results) == 24  # the table holds this spec's points only
