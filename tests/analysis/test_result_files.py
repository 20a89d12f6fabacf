"""Reading result files: numbers that are not numbers and damaged .npz files are named."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from damaged_files import flip_compressed_bytes
from test_plot_data import energy_rows

from sparsespikformer.analysis.cli import main
from sparsespikformer.analysis.reporting.report import build_report
from sparsespikformer.analysis.reporting.result_files import (
    read_kept_tokens,
    read_table,
    write_kept_tokens,
)
from sparsespikformer.analysis.sweeps.store import read_results


def bad_energy_table(path):
    table = energy_rows()
    table["energy_pj"] = table["energy_pj"].astype(object)
    table.loc[3, "energy_pj"] = "abc"
    table.to_csv(path, index=False)
    return path


def kept_tokens_file(path, **kept):
    images = np.random.default_rng(0).uniform(size=(2, 16, 16))
    return write_kept_tokens(path, images, kept or {"s": np.array([[0, 1], [2, 3]])}, 16)


def test_text_in_a_number_column_names_file_column_and_row(tmp_path):
    path = bad_energy_table(tmp_path / "layers.csv")
    with pytest.raises(ValueError, match=r"layers.csv: column energy_pj: not a number: "
                                         r"'abc' in row 4"):
        read_table(path)


def test_number_columns_may_hold_empty_cells_and_number_text(tmp_path):
    path = tmp_path / "r.jsonl"
    rows = [{"key": "a", "energy_pj": "1.5", "accuracy": None, "name": "x"},
            {"key": "b", "energy_pj": 2, "accuracy": 0.5, "name": "y"}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    table = read_table(path)
    assert table["energy_pj"].tolist() == [1.5, 2.0]
    assert np.isnan(table["accuracy"][0]) and table["name"].tolist() == ["x", "y"]


@pytest.mark.parametrize("name", ["results.csv", "results.jsonl"])
def test_sweep_results_with_text_energy_are_rejected(tmp_path, name):
    rows = [{"key": "a", "energy_pj": 1.0, "status": "ok"},
            {"key": "b", "energy_pj": "abc", "status": "ok"}]
    path = tmp_path / name
    if name.endswith(".csv"):
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(ValueError, match=f"{name}: column energy_pj: not a number: 'abc'"):
        read_results(path)


def test_damaged_or_non_numeric_kept_tokens_are_named(tmp_path):
    path = kept_tokens_file(tmp_path / "kept.npz")
    flip_compressed_bytes(path)
    with pytest.raises(ValueError, match="kept.npz: unreadable npz"):
        read_kept_tokens(path)
    text = tmp_path / "text.npz"
    np.savez(text, images=np.zeros((2, 4, 4)), num_tokens=np.array(4),
             **{"kept/s": np.array([["a"], ["b"]])})
    with pytest.raises(ValueError, match="text.npz: kept/s: expected integer token indices"):
        read_kept_tokens(text)


def test_plot_of_bad_files_is_one_line_and_exit_2(tmp_path, capsys):
    bad_energy_table(tmp_path / "layers.csv")
    assert main(["plot", "energy-breakdown", "--input", str(tmp_path / "layers.csv"),
                 "--out", str(tmp_path / "fig")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "layers.csv: column energy_pj" in error
    flip_compressed_bytes(kept_tokens_file(tmp_path / "kept.npz"))
    assert main(["plot", "kept-tokens", "--input", str(tmp_path / "kept.npz"),
                 "--out", str(tmp_path / "fig")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "kept.npz: unreadable npz" in error
    assert not list(tmp_path.glob("fig*"))


def test_report_skips_bad_files_by_name(tmp_path, caplog):
    bad_energy_table(tmp_path / "layers.csv")
    flip_compressed_bytes(kept_tokens_file(tmp_path / "kept.npz"))
    with caplog.at_level(logging.WARNING):
        build_report(tmp_path, tmp_path / "out" / "r.html")
    assert "layers.csv: column energy_pj" in caplog.text
    assert "kept.npz: unreadable npz" in caplog.text
