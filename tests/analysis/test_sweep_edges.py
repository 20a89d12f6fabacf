"""Sweeps at the edges: a design space the constraints leave empty is a one-line error in
every mode (grid, random enumerated, random by rejection) and with every executor (local,
Dask), before any folder is written; a single point runs, reports and plots."""

from __future__ import annotations

import pytest
from sweep_fakes import FAKE, tiny_layer_shapes, write_spec

from sparsespikformer.analysis.cli import main
from sparsespikformer.analysis.reporting.report import build_report
from sparsespikformer.analysis.sweeps.run import run_sweep
from sparsespikformer.analysis.sweeps.spec import load_sweep_spec
from sparsespikformer.simulator.errors import SweepSpecError

NOTHING = ["pe_array.rows * pe_array.cols > 10 ** 9"]
MODES = {
    "grid": {},
    "random": {"mode": "random", "samples": 3},
    # 10^6 x 2 bases > the enumeration limit: drawn by rejection
    "rejection": {"mode": "random", "samples": 3,
                  "axes": {"pe_array.rows": {"range": [1, 1000, 1]},
                           "pe_array.cols": {"range": [1, 1000, 1]}}},
}


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("executor", ["local", "dask"])
def test_constraints_that_leave_nothing_are_one_error_in_every_mode(tmp_path, mode, executor):
    spec = load_sweep_spec(write_spec(tmp_path, constraints=NOTHING, **MODES[mode]))
    with pytest.raises(SweepSpecError) as caught:
        run_sweep(spec, tmp_path / "out", executor=executor, workers=1, progress=False,
                  evaluator=FAKE, dask_processes=False)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'spec.yaml'}: constraints: ")
    assert "design space satisfies them" in message and NOTHING[0] in message
    assert not (tmp_path / "out").exists()


def test_the_cli_says_it_in_one_line_with_exit_2(tmp_path, capsys):
    spec = write_spec(tmp_path, constraints=NOTHING, base="sparse_int8_45nm")  # 3 x 2 points
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no point of the 6-point design space" in err


def test_a_single_point_runs_reports_and_plots(tmp_path):
    spec = load_sweep_spec(write_spec(
        tmp_path, base="tiny_a", axes={"pe_array.rows": [8]},
        traces=[{"name": "only", "accuracy": 0.9,
                 "synthetic": {"layer_shapes": tiny_layer_shapes()}}]))
    outcome = run_sweep(spec, tmp_path / "sw", workers=1, progress=False, evaluator=FAKE)
    assert outcome.total_points == 1 and outcome.errors == 0
    page = build_report(tmp_path / "sw", tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Pareto front of 1 of 1 points" in page
    assert "1 points, 0 rejected" in page
