"""The append-only results store: durability, torn lines, duplicates, locking."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from sparsespikformer.analysis.sweeps.store import (
    RESULTS_CSV,
    RESULTS_JSONL,
    SweepStore,
    read_results,
)


def rows(*keys, energy=1.5):
    return [{"key": key, "energy_pj": energy, "trace": "t", "pe_array.rows": 8} for key in keys]


def test_rows_survive_closing_and_reopening(tmp_path):
    with SweepStore(tmp_path) as store:
        assert store.append(rows("a", "b")) == 2
        assert store.append(rows("c", energy=float("nan"))) == 1
    lines = (tmp_path / RESULTS_JSONL).read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["a", "b", "c"]
    assert json.loads(lines[2])["energy_pj"] is None  # NaN is stored as null
    with SweepStore(tmp_path) as store:
        assert store.keys() == {"a", "b", "c"}
        assert store.row("a") == rows("a")[0]
        assert math.isnan(store.table(["c"])["energy_pj"].iloc[0])


def test_a_key_is_never_written_twice(tmp_path):
    with SweepStore(tmp_path) as store:
        store.append(rows("a"))
        assert store.append(rows("a", "b", energy=9.0)) == 1
        assert store.row("a")["energy_pj"] == 1.5
    assert len((tmp_path / RESULTS_JSONL).read_text().splitlines()) == 2


@pytest.mark.parametrize("torn", [b'{"key": "c", "energy', b'{"key": "c"', b"\xff\xfe", b"x\n"])
def test_a_torn_last_line_is_cut_off(tmp_path, torn):
    with SweepStore(tmp_path) as store:
        store.append(rows("a", "b"))
    good = (tmp_path / RESULTS_JSONL).read_bytes()
    with open(tmp_path / RESULTS_JSONL, "ab") as handle:
        handle.write(torn)
    with SweepStore(tmp_path) as store:
        assert store.keys() == {"a", "b"}
        assert (tmp_path / RESULTS_JSONL).read_bytes() == good  # repaired in place
        store.append(rows("c"))
    lines = (tmp_path / RESULTS_JSONL).read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["a", "b", "c"]


def test_a_corrupt_line_in_the_middle_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / RESULTS_JSONL
    path.write_text('{"key": "a"}\nnot json\n{"key": "b"}\n')
    with pytest.raises(ValueError, match=rf"{RESULTS_JSONL}:2: corrupt"):
        SweepStore(tmp_path)
    # the failed open released its lock
    path.write_text('{"key": "a"}\n')
    SweepStore(tmp_path).close()


def test_two_writers_on_one_directory_are_refused(tmp_path):
    with SweepStore(tmp_path):
        with pytest.raises(OSError, match="another sweep is writing"):
            SweepStore(tmp_path)
    SweepStore(tmp_path).close()  # free again


def test_table_follows_the_requested_order_and_columns(tmp_path):
    with SweepStore(tmp_path) as store:
        store.append([{"key": "a", "z": 1, "energy_pj": 2.0}, {"key": "b", "z": 3,
                                                               "energy_pj": 4.0}])
        path = store.write_table(["b", "missing", "a"], columns=["key", "energy_pj"])
    table = pd.read_csv(path)
    assert list(table.columns) == ["key", "energy_pj", "z"]
    assert table["key"].tolist() == ["b", "a"]
    assert path == tmp_path / RESULTS_CSV


def test_read_results_from_a_directory_or_either_file(tmp_path):
    with SweepStore(tmp_path) as store:
        store.append(rows("a", "b"))
        store.write_table()
    from_dir = read_results(tmp_path)
    from_csv = read_results(tmp_path / RESULTS_CSV)
    assert from_dir["key"].tolist() == from_csv["key"].tolist() == ["a", "b"]
    with pytest.raises(FileNotFoundError, match="no sweep results"):
        read_results(tmp_path / "empty")
