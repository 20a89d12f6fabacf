"""The HTML report: finds every kind of result file and embeds everything in one page."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest
from sweep_fakes import FAKE, tiny_layer_shapes, write_spec
from test_plot_data import energy_rows, rounds_table

from sparsespikformer.analysis.reporting.report import build_report, scan_run_dir
from sparsespikformer.analysis.reporting.result_files import write_kept_tokens
from sparsespikformer.analysis.sweeps.run import run_sweep
from sparsespikformer.simulator.synthetic import synthetic_trace


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    summary = {"dense_accuracy": 0.93, "weight_sparsity": 0.91, "keep_ratio": 0.7,
               "energy_pj": {"sparse_int8_45nm": {"dense": 2.0e9, "codesigned": 7.5e8}}}
    (root / "summary.json").write_text(json.dumps(summary))
    spec_dir = root / "specs"
    spec_dir.mkdir()
    run_sweep(write_spec(spec_dir), root / "sweep", workers=1, progress=False, evaluator=FAKE)
    (root / "lth" / "baseline_reinit").mkdir(parents=True)
    rounds_table("imp", [0.9, 0.91, 0.9]).to_csv(root / "lth" / "rounds.csv", index=False)
    rounds_table("reinit", [0.9, 0.85, 0.8]).to_csv(
        root / "lth" / "baseline_reinit" / "rounds.csv", index=False)
    pd.DataFrame({"scorer": ["learned", "random"] * 2, "keep_ratio": [0.9, 0.9, 0.7, 0.7],
                  "accuracy": [0.95, 0.94, 0.95, 0.93], "gflops": [3.2, 3.2, 2.5, 2.5]}
                 ).to_csv(root / "keep_ratio.csv", index=False)
    synthetic_trace(tiny_layer_shapes(), firing_rate=0.2).save(root / "traces" / "dense")
    (root / "sim").mkdir()
    energy_rows().to_csv(root / "sim" / "layers.csv", index=False)
    pd.DataFrame({"hw": ["sparse_int8_45nm", "loihi_like"], "energy_pj": [2e9, 5e9],
                  "latency_s": [0.01, 0.02]}).to_csv(root / "sim" / "totals.csv", index=False)
    write_kept_tokens(root / "kept_tokens.npz", np.random.default_rng(0).uniform(
        size=(2, 16, 16)), {"selector 1": np.array([[0, 1, 2], [3, 4, 5]])}, 16)
    (root / "notes.txt").write_text("not a result")
    return root


def test_scan_finds_every_kind_of_result(run_dir):
    contents = scan_run_dir(run_dir)
    assert [p.name for p in contents.summaries] == ["summary.json"]
    assert [p.name for p in contents.sweeps] == ["sweep"]
    assert len(contents.rounds) == 2
    assert [p.name for p in contents.keep_ratio_tables] == ["keep_ratio.csv"]
    assert [p.name for p in contents.traces] == ["dense"]
    assert [p.name for p in contents.layer_energy_tables] == ["layers.csv"]
    assert [p.name for p in contents.totals] == ["totals.csv"]
    assert [p.name for p in contents.kept_tokens] == ["kept_tokens.npz"]


@pytest.fixture(scope="module")
def report_path(run_dir, tmp_path_factory):
    return build_report(run_dir, tmp_path_factory.mktemp("report") / "report.html")


def test_report_is_one_self_contained_page(report_path):
    page = report_path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for title in ("Summary", "Simulation totals", "Energy breakdown", "Sweep",
                  "Lottery-ticket pruning", "Token selection", "Traces"):
        assert title in page, title
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    # summary: energy per config; totals: energy + latency bars; layer energy; sweep:
    # accuracy, latency and area fronts; LTH; keep ratio; kept tokens; one trace heatmap
    assert len(images) == 11
    assert all(base64.b64decode(image)[:8] == b"\x89PNG\r\n\x1a\n" for image in images)
    assert not re.search(r'(src|href)="(?!data:|#)', page), "an external resource"
    assert "<script" not in page and "<link" not in page
    assert "0.93" in page and "sparse_int8_45nm" in page  # summary values are in tables


def test_report_is_deterministic_and_can_save_its_figures(run_dir, report_path, tmp_path):
    again = build_report(run_dir, tmp_path / "again.html", figures_dir=tmp_path / "figures")
    assert again.read_bytes() == report_path.read_bytes()
    assert len(list((tmp_path / "figures").glob("*.png"))) == 11
    assert len(list((tmp_path / "figures").glob("*.pdf"))) == 11


def test_unreadable_files_are_skipped_and_empty_folders_still_give_a_page(tmp_path):
    (tmp_path / "broken.csv").write_bytes(b'a,b\n"1,2\n')
    pd.DataFrame({"round": [0], "weight_sparsity": [0.0]}).to_csv(tmp_path / "partial.csv")
    page = build_report(tmp_path, tmp_path / "out" / "r.html").read_text()
    assert "No result files found" in page
    with pytest.raises(FileNotFoundError, match="run directory not found"):
        build_report(tmp_path / "missing", tmp_path / "r.html")
