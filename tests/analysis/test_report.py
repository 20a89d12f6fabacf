"""The HTML report: finds every kind of result file and embeds everything in one page."""

from __future__ import annotations

import base64
import html
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
    assert "93.00 %" in page and "sparse_int8_45nm" in page  # summary values are in tables


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


# ----------------------------------------------------------------------------- what a person sees


def _accuracy(correct, n=360):
    return {"accuracy": correct / n, "correct": correct, "test_samples": n}


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory):
    """A demo-shaped run: summary.json, a stage file, LTH rounds (with and without n)."""
    root = tmp_path_factory.mktemp("demo_like")
    summary = {
        "test_samples": 360, "dense_accuracy": _accuracy(351),
        "co_designed_accuracy": _accuracy(347), "co_designed_weight_sparsity": 0.925,
        "keep_ratio": 0.7, "dense_gflops": 0.0465, "selected_gflops": 0.0310,
        "energy_pj": {"hw_a": {"dense": 2.0e7, "co_designed": 5.0e6},
                      "hw_b": {"dense": 1.0e7, "co_designed": 1.2e7}},
        "latency_s": {"hw_a": {"dense": 2.0e-4, "co_designed": 1.0e-4},
                      "hw_b": {"dense": 3.0e-4, "co_designed": 1.5e-4}},
    }
    (root / "summary.json").write_text(json.dumps(summary))
    (root / "stages").mkdir()
    (root / "stages" / "simulate.json").write_text(json.dumps(
        {"energy_pj": summary["energy_pj"], "latency_s": summary["latency_s"],
         "simulate_seconds": 3.0}))
    (root / "lth").mkdir()
    rounds_table("imp", [351 / 360, 349 / 360]).to_csv(root / "lth" / "rounds.csv",
                                                       index=False)
    page = build_report(root, root / "report.html").read_text(encoding="utf-8")
    return root, page


def _section(page: str, title: str) -> str:
    start = page.index(f"<h2>{title}")
    end = page.find("<h2>", start + 1)
    return page[start:end if end > 0 else len(page)]


def test_the_page_opens_with_the_answer(demo_like):
    _, page = demo_like
    assert re.findall(r"<h2>(.*?)</h2>", page)[0] == "Co-designed vs dense: the answer"
    answer = _section(page, "Co-designed vs dense")
    cells = [re.sub("<.*?>", "", c) for c in re.findall(r"<td>.*?</td>", answer, flags=re.S)]
    rows = [cells[i:i + 4] for i in range(0, len(cells), 4)]
    by_name = {row[0]: row[1:] for row in rows}
    assert by_name["Energy per image on hw_a"] == ["20 µJ", "5 µJ", "4.00× less (75.0 % saved)"]
    assert by_name["Energy per image on hw_b"] == ["10 µJ", "12 µJ",
                                                   "1.20× more (20.0 % added)"]
    assert by_name["Latency per image on hw_a"] == ["200 µs", "100 µs",
                                                    "2.00× less (50.0 % saved)"]
    assert by_name["Weight sparsity"][:2] == ["0.0 %", "92.5 %"]
    assert by_name["GFLOPs per image (dense count)"][2] == "1.50× fewer (33.3 % saved)"
    accuracy = by_name["Top-1 accuracy (360 test images)"]
    assert accuracy[0] == "97.50 % (351/360; 95 % CI 95.3–98.7 %)"
    assert accuracy[1] == "96.39 % (347/360; 95 % CI 93.9–97.9 %)"
    assert html.unescape(accuracy[2]) == "-1.11 points; within each other's 95 % intervals"
    sentence = html.unescape(re.search(r"<p class='answer'>(.*?)</p>", answer).group(1))
    assert sentence.startswith("Across the 2 accelerators, the co-designed model (92.5 % of "
                               "weights pruned, keep ratio 0.7 per token selector) saves 75 % "
                               "of the energy (most on hw_a: 4.00× less) except on hw_b, "
                               "where it costs 20 % more, and saves 50 % of the latency "
                               "(most on hw_a: 2.00× less); its accuracy, 96.39 %, and the "
                               "dense model's, 97.50 % (on 360 test images), are within each "
                               "other's 95 % intervals: the 4-image difference is not "
                               "resolved by this test set.")
    assert "are within each other's 95 % intervals: the 4-image difference" in sentence


def test_stage_bookkeeping_is_never_rendered(demo_like):
    root, page = demo_like
    assert scan_run_dir(root).totals == []
    assert "stages/simulate.json" not in page and "simulate_seconds" not in page


def test_every_accuracy_carries_n_and_its_interval(demo_like):
    _, page = demo_like
    summary = _section(page, "Summary")
    assert "97.50 % (351/360; 95 % CI 95.3–98.7 %)" in summary
    rounds = html.unescape(_section(page, "Lottery-ticket pruning"))
    # rounds.csv has no n: the run's summary says the test set has 360 images
    assert "96.94 % (349/360; 95 % CI 94.6–98.3 %)" in rounds


def test_no_raw_exponents_where_units_belong(demo_like):
    _, page = demo_like
    for title in ("Co-designed vs dense", "Summary"):
        text = re.sub(r'src="data:[^"]*"', "", _section(page, title))  # base64 has e+0 too
        assert "e+0" not in text, title
