"""Every file and folder the simulator, sweeps, plots and reports write ends with the modes
the user's umask gives (field case 13 and its kind), under umask 022 and 077: traces (new
and replaced), sweep folders (results, lock, spec copy, sweep.json, re-keyed results),
reports and their figure folders, plots, kept-token files, `simulate -o FILE`. The model's
writers (checkpoints, history, masks, LTH rounds) are checked in tests/model."""

from __future__ import annotations

import numpy as np
import pytest
from file_modes import UMASKS, assert_umask_modes, umask
from sweep_fakes import FAKE, tiny_layer_shapes, write_spec

from sparsespikformer.analysis.cli import main
from sparsespikformer.analysis.reporting import plots
from sparsespikformer.analysis.reporting.report import build_report
from sparsespikformer.analysis.reporting.result_files import write_kept_tokens
from sparsespikformer.analysis.sweeps.run import run_sweep
from sparsespikformer.simulator.atomic import atomic_write_bytes, atomic_write_text
from sparsespikformer.simulator.synthetic import synthetic_trace


@pytest.mark.parametrize("mask", UMASKS)
def test_traces_new_and_replaced(tmp_path, mask):
    with umask(mask):
        trace = synthetic_trace(tiny_layer_shapes(), firing_rate=0.2)
        trace.save(tmp_path / "shared" / "trace")
        trace.save(tmp_path / "shared" / "trace")  # replacing an existing trace folder
    assert_umask_modes(tmp_path / "shared", mask)


@pytest.mark.parametrize("mask", UMASKS)
def test_sweep_folders(tmp_path, mask):
    spec = write_spec(tmp_path, axes={"pe_array.rows": [8, 16]})
    with umask(mask):
        run_sweep(spec, tmp_path / "out" / "sweep", workers=1, progress=False, evaluator=FAKE)
        run_sweep(spec, tmp_path / "out" / "sweep", workers=1, progress=False, evaluator=FAKE)
    names = {p.name for p in (tmp_path / "out" / "sweep").iterdir()}
    assert {"results.jsonl", "results.csv", ".sweep.lock", "spec.yaml", "sweep.json"} <= names
    assert_umask_modes(tmp_path / "out", mask)


@pytest.mark.parametrize("mask", UMASKS)
def test_reports_figures_plots_and_kept_tokens(tmp_path, mask):
    run = tmp_path / "run"
    with umask(mask):
        synthetic_trace(tiny_layer_shapes(), firing_rate=0.2).save(run / "traces" / "t")
        write_kept_tokens(run / "kept.npz", np.zeros((1, 8, 8)), {"s": np.array([[0, 1]])}, 4)
        build_report(run, tmp_path / "out" / "report.html", figures_dir=tmp_path / "out" / "f")
        figure = plots.draw_bar_summary(["a"], [1.0], column="energy_pj", title="t")
        plots.save_figure(figure, tmp_path / "out" / "plots" / "bars")
        atomic_write_text(tmp_path / "out" / "deep" / "a.txt", "x")
        atomic_write_bytes(tmp_path / "out" / "deep" / "b.bin", b"x")
    assert len(list((tmp_path / "out" / "f").glob("*.png"))) >= 2
    assert_umask_modes(run, mask)
    assert_umask_modes(tmp_path / "out", mask)


@pytest.mark.parametrize("mask", UMASKS)
def test_simulate_output_file(tmp_path, mask):
    synthetic_trace(tiny_layer_shapes(), firing_rate=0.2).save(tmp_path / "t")
    with umask(mask):
        assert main(["simulate", str(tmp_path / "t"), "-o", str(tmp_path / "o" / "r.txt")]) == 0
    assert_umask_modes(tmp_path / "o", mask)
