"""The swept axes come from the sweep's spec, never from column names (field case 11).

Kind: anything that recovers the axes from column names. Inputs tried besides the case's
`clock_mhz` x `pe_array.rows`: two top-level axes (`clock_mhz`, `leakage_mw`), a results
table copied out of its folder (no sweep.json), a folder resumed with a spec over other
axes, and values given out of order (`[16, 4, 64, 8, 32]`: listed 4, 8, 16, 32, 64).
"""

from __future__ import annotations

import html
import os
import re
import shutil

import pandas as pd
import pytest
import yaml
from sweep_fakes import FAKE, tiny_layer_shapes, write_spec

from sparsespikformer.analysis.cli import main
from sparsespikformer.analysis.reporting.report import build_report
from sparsespikformer.analysis.sweeps.meta import axes_from_column_order, swept_axes
from sparsespikformer.analysis.sweeps.run import run_sweep
from sparsespikformer.analysis.sweeps.spec import load_sweep_spec
from sparsespikformer.analysis.sweeps.store import RESULTS_CSV, RESULTS_JSONL, read_results


def _tables(page: str, after: str) -> list[str]:
    return re.findall(r"<table.*?</table>", page[page.find(after):], flags=re.S)


def _cells(table: str, tag: str = "td") -> list[str]:
    return [html.unescape(re.sub("<.*?>", "", c)).strip()
            for c in re.findall(rf"<{tag}.*?</{tag}>", table, flags=re.S)]


@pytest.fixture(scope="module")
def clock_sweep(tmp_path_factory):
    """Case 11 on the real simulator: clock_mhz [250, 1000] x pe_array.rows [16, 32]."""
    root = tmp_path_factory.mktemp("clock")
    spec = {"version": 1, "name": "clock_vs_array", "base": "sparse_int8_45nm",
            "axes": {"clock_mhz": [250, 1000], "pe_array.rows": [16, 32]},
            "traces": [{"name": "trace", "synthetic": {"layer_shapes": tiny_layer_shapes(),
                                                        "firing_rate": 0.2}}]}
    (root / "spec.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    return root


def test_lowest_energy_line_names_every_swept_value(clock_sweep, capsys):
    out = clock_sweep / "sweep"
    assert main(["sweep", str(clock_sweep / "spec.yaml"), "--out", str(out),
                 "--no-progress"]) == 0
    line = next(t for t in capsys.readouterr().out.splitlines() if t.startswith("lowest"))
    table = pd.read_csv(out / RESULTS_CSV)  # the oracle: the smallest energy in the file
    best = table.loc[table["energy_pj"].idxmin()]
    assert (f"clock_mhz={int(best['clock_mhz'])}, pe_array.rows={int(best['pe_array.rows'])}"
            in line), line


def test_report_lists_top_level_axes_in_the_axes_and_pareto_tables(clock_sweep):
    out = clock_sweep / "sweep2"
    run_sweep(load_sweep_spec(clock_sweep / "spec.yaml"), out, workers=1, progress=False)
    page = build_report(out, clock_sweep / "report.html").read_text(encoding="utf-8")
    tables = _tables(page, "Sweep (")
    swept = _cells(tables[0])
    assert swept[0::3] == ["trace", "base", "clock_mhz", "pe_array.rows"]
    assert swept[swept.index("clock_mhz") + 2] == "250, 1000"
    front_headers = [_cells(t, "th") for t in tables if "clock_mhz" in _cells(t, "th")]
    assert front_headers, "no Pareto table lists clock_mhz"
    assert front_headers[0][:4] == ["trace", "base", "clock_mhz", "pe_array.rows"]
    best = _cells(_tables(page, "Lowest-energy point")[0])
    assert "clock_mhz" in best[0::2]


def test_only_top_level_axes_and_numeric_order(tmp_path):
    spec = load_sweep_spec(write_spec(tmp_path, axes={"clock_mhz": [400, 100, 200],
                                                      "pe_array.rows": [16, 4, 64, 8, 32]}))
    run_sweep(spec, tmp_path / "sw", workers=1, progress=False, evaluator=FAKE)
    results = read_results(tmp_path / "sw")
    assert swept_axes(results, tmp_path / "sw") == ["clock_mhz", "pe_array.rows"]
    page = build_report(tmp_path / "sw", tmp_path / "r.html").read_text(encoding="utf-8")
    cells = _cells(_tables(page, "Sweep (")[0])
    assert cells[cells.index("clock_mhz") + 2] == "100, 200, 400"
    assert cells[cells.index("pe_array.rows") + 2] == "4, 8, 16, 32, 64"


def test_a_results_table_without_its_folder_names_axes_by_position(tmp_path):
    spec = load_sweep_spec(write_spec(tmp_path, axes={"clock_mhz": [100], "leakage_mw": [1, 2]}))
    outcome = run_sweep(spec, tmp_path / "sw", workers=1, progress=False, evaluator=FAKE)
    alone = tmp_path / "copied" / "table.csv"
    alone.parent.mkdir()
    shutil.copy(tmp_path / "sw" / RESULTS_CSV, alone)
    assert swept_axes(read_results(alone), alone) == ["clock_mhz", "leakage_mw"]
    assert axes_from_column_order(list(outcome.results.columns)) == ["clock_mhz", "leakage_mw"]
    assert axes_from_column_order(["energy_pj", "trace"]) == []


def test_a_folder_resumed_with_other_axes_reports_the_last_specs_points(tmp_path, caplog):
    first = load_sweep_spec(write_spec(tmp_path, axes={"pe_array.rows": [8, 16]}))
    run_sweep(first, tmp_path / "sw", workers=1, progress=False, evaluator=FAKE)
    second = load_sweep_spec(write_spec(tmp_path, axes={"clock_mhz": [100, 200, 300]}))
    outcome = run_sweep(second, tmp_path / "sw", workers=1, progress=False, evaluator=FAKE)
    assert "swept ['pe_array.rows'], this spec sweeps ['clock_mhz']" in caplog.text
    jsonl_rows = (tmp_path / "sw" / RESULTS_JSONL).read_text().count("\n")
    assert jsonl_rows > outcome.total_points  # both specs' points are kept there
    shown = read_results(tmp_path / "sw")
    assert sorted(shown["key"]) == sorted(outcome.results["key"])
    assert swept_axes(shown, tmp_path / "sw") == ["clock_mhz"]
    # a sweep still running (results.jsonl newer than the table) is read from the lines
    later = (tmp_path / "sw" / RESULTS_CSV).stat().st_mtime_ns + 10**9
    os.utime(tmp_path / "sw" / RESULTS_JSONL, ns=(later, later))
    assert len(read_results(tmp_path / "sw")) == jsonl_rows
