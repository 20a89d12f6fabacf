"""`sparsespikformer sweep / plot / report / list` from the command line."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest
from sweep_fakes import tiny_layer_shapes, write_spec
from test_plot_data import energy_rows, rounds_table

from sparsespikformer.analysis.cli import main
from sparsespikformer.analysis.reporting.result_files import write_kept_tokens
from sparsespikformer.simulator import load_hwconfig, simulate
from sparsespikformer.simulator.synthetic import synthetic_trace


@pytest.fixture()
def real_spec(tmp_path):
    """The real simulator on two bundled configs and tiny traces: 2 x 2 x 2 x 2 = 16 points."""
    return write_spec(tmp_path, base=["sparse_int8_45nm", "sata_like"],
                      axes={"pe_array.rows": [8, 16], "clock_mhz": [200, 400]})


def test_sweep_runs_then_resumes(real_spec, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", str(real_spec), "--out", str(out), "--workers", "1",
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "16 points: 0 already done, 16 evaluated now, 0 rejected" in printed
    assert "lowest energy:" in printed
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 16
    # write_spec's traces: tiny shapes at firing rate 0.2, the "sparse" one at 25 % weights
    traces = {"dense": synthetic_trace(tiny_layer_shapes(), firing_rate=0.2),
              "sparse": synthetic_trace(tiny_layer_shapes(), firing_rate=0.2,
                                        weight_density=0.25)}
    for _, row in table.iterrows():
        hw = load_hwconfig(row["base"], {"pe_array.rows": int(row["pe_array.rows"]),
                                         "clock_mhz": float(row["clock_mhz"])})
        expected = simulate(traces[row["trace"]], hw).totals
        for metric in ("energy_pj", "latency_s", "cycles", "area_mm2"):
            assert row[metric] == pytest.approx(expected[metric], rel=1e-12, nan_ok=True), \
                (metric, row)
    for column in ("pe_array.rows", "clock_mhz", "accuracy", "weight_sparsity", "keep_ratio",
                   "energy_pj", "latency_s", "edp_pj_s", "area_mm2", "utilization",
                   "dense_gflops", "effective_gflops"):
        assert column in table.columns, column
    assert main(["sweep", str(real_spec), "--out", str(out), "--no-progress"]) == 0
    assert "16 already done, 0 evaluated now" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["sweep", "{spec_dir}/missing.yaml", "--out", "{out}"], "missing.yaml: sweep spec not found"),
    (["sweep", "{spec}", "--out", "{out}", "--workers", "0"], "--workers"),
    (["sweep", "{spec}", "--out", "{out}", "--scheduler", "tcp://x:1"], "--scheduler"),
    (["sweep", "{bad_spec}", "--out", "{out}"], "spec.yaml: axes.pe_array.rowz: unknown"),
    (["plot", "lth", "--input", "{spec}", "--out", "{out}/x"], "missing"),
    (["plot", "keep-ratio", "--input", "{spec_dir}/nope.csv", "--out", "{out}/x"], "nope.csv"),
    (["report", "{spec_dir}/nowhere", "--out", "{out}/r.html"], "run directory not found"),
])
def test_bad_input_is_one_line_and_exit_2(real_spec, tmp_path, capsys, argv, message):
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad_spec = write_spec(bad_dir, base="sparse_int8_45nm", axes={"pe_array.rowz": [8]})
    values = {"spec": real_spec, "spec_dir": tmp_path, "out": tmp_path / "out",
              "bad_spec": bad_spec}
    assert main([part.format(**values) for part in argv]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error and "Traceback" not in error


def test_plot_makes_every_kind_from_result_files(tmp_path, capsys):
    energy_rows().to_csv(tmp_path / "layers.csv", index=False)
    rounds_table("imp", [0.9, 0.91]).to_csv(tmp_path / "imp.csv", index=False)
    rounds_table("reinit", [0.9, 0.8]).to_csv(tmp_path / "reinit.csv", index=False)
    pd.DataFrame({"scorer": ["learned", "random"], "keep_ratio": [0.7, 0.7],
                  "accuracy": [0.95, 0.93], "gflops": [2.5, 2.5]}).to_csv(
        tmp_path / "keep.csv", index=False)
    synthetic_trace(tiny_layer_shapes()).save(tmp_path / "trace")
    write_kept_tokens(tmp_path / "kept.npz", np.zeros((1, 8, 8)), {"s": np.array([[0, 3]])}, 4)
    pd.DataFrame({"key": ["a", "b"], "energy_pj": [1.0, 2.0], "accuracy": [0.9, 0.95],
                  "trace": ["t", "t"]}).to_csv(tmp_path / "results.csv", index=False)
    cases = {"energy-breakdown": ["layers.csv"], "lth": ["imp.csv", "reinit.csv"],
             "keep-ratio": ["keep.csv"], "input-events": ["trace"], "firing-rate": ["trace"],
             "kept-tokens": ["kept.npz"],
             "pareto": ["results.csv"]}
    for kind, inputs in cases.items():
        out = tmp_path / "figures" / kind
        argv = ["plot", kind, "--input", *[str(tmp_path / i) for i in inputs], "--out", str(out)]
        assert main(argv) == 0, capsys.readouterr().err
        assert out.with_suffix(".png").stat().st_size > 1000
        assert out.with_suffix(".pdf").stat().st_size > 1000
    assert main(["plot", "pareto", "--input", str(tmp_path / "results.csv"), "--out",
                 str(tmp_path / "p"), "--y", "latency_s"]) == 2
    assert "latency_s" in capsys.readouterr().err


def test_report_and_list(real_spec, tmp_path, capsys):
    assert main(["sweep", str(real_spec), "--out", str(tmp_path / "run" / "sweep"),
                 "--workers", "1", "--no-progress"]) == 0
    assert main(["report", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "report.html").stat().st_size > 10_000
    capsys.readouterr()
    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    names = ["sparse_int8_45nm", "paper_fp32_45nm", "pe_memory_sweep", "codesign_sweep"]
    if importlib.util.find_spec("torch") is not None:  # presets need the model side
        names.append("spikformer_4_384_cifar10")
    for name in names:
        assert name in listing
