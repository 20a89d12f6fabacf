"""Values equal as numbers are one value, and one hardware point has one key (field case 15).

Kind: identity of values in sweep specs and point keys. Inputs tried besides the case's
`[500, 500.0, 1000]`: a float step `range` against a list of ints, `log2` against floats,
a swept value the base config already has, a quoted number ("500"), YAML's `1.0e+3`, two
bases that differ only in their name, `True` against `1`, and a sweep folder keyed the old
way (version 1) resumed with the new keys.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import yaml
from sweep_fakes import FAKE, base_identity, load_base, tiny_layer_shapes, write_spec

from sparsespikformer.analysis.sweeps.run import SWEEP_META, plan_sweep, run_sweep
from sparsespikformer.analysis.sweeps.spec import load_sweep_spec
from sparsespikformer.analysis.sweeps.store import RESULTS_CSV, RESULTS_JSONL
from sparsespikformer.simulator.errors import SweepSpecError

TRACE = {"name": "t", "synthetic": {"layer_shapes": tiny_layer_shapes(), "firing_rate": 0.2}}


def real_spec(tmp_path, axes, base="sparse_int8_45nm", name="spec.yaml"):
    """A spec on a bundled config (the real validation decides what is equal)."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"version": 1, "base": base, "axes": axes,
                                    "traces": [TRACE]}, sort_keys=False), encoding="utf-8")
    return load_sweep_spec(path)


def keys_by_value(spec, axis):
    return {dict(p.point.overrides)[axis]: p.key for p in plan_sweep(spec).points}


# ----------------------------------------------------------------------------- axis values


@pytest.mark.parametrize("values, repeated", [
    ([500, 500], "500"), ([500, 500.0, 1000], "500 and 500.0 are the same number"),
    ([0.5, 0.50], "0.5"), (["a", "a"], "'a'"), ([1000, 1.0e+3], "1000 and 1000.0"),
])
def test_values_equal_as_numbers_are_repeated_values(tmp_path, values, repeated):
    with pytest.raises(SweepSpecError, match=r"spec.yaml: axes.clock_mhz: repeated values: .*"
                       + re.escape(repeated)):
        load_sweep_spec(write_spec(tmp_path, axes={"clock_mhz": values}))


def test_true_is_not_one(tmp_path):
    spec = load_sweep_spec(write_spec(tmp_path, axes={"clock_mhz": [1, True, 0, False]}))
    assert [type(v) for v in spec.axes[0].values] == [int, bool, int, bool]


def test_the_yaml_of_case_15_is_rejected_like_500_500(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("version: 1\nbase: tiny_a\naxes:\n  clock_mhz: [500, 500.0, 1000]\n"
                    "  pe_array.rows: [16, 32]\ntraces: [t]\n", encoding="utf-8")
    with pytest.raises(SweepSpecError, match="clock_mhz: repeated values: 500.0"):
        load_sweep_spec(path)


# ----------------------------------------------------------------------------- keys


def test_range_log2_and_list_spellings_share_keys(tmp_path):
    by_range = keys_by_value(real_spec(tmp_path, {"clock_mhz": {"range": [250, 1000, 250]}},
                                       name="a.yaml"), "clock_mhz")
    by_floats = keys_by_value(real_spec(tmp_path, {"clock_mhz": [250.0, 500, 750.0, 1000]},
                                        name="b.yaml"), "clock_mhz")
    assert by_range == by_floats and len(by_range) == 4
    by_log2 = keys_by_value(real_spec(tmp_path, {"weight_memory.size_kib": {"log2": [64, 256]}},
                                      name="c.yaml"), "weight_memory.size_kib")
    by_list = keys_by_value(real_spec(tmp_path, {"weight_memory.size_kib": [64.0, 128, 256.0]},
                                      name="d.yaml"), "weight_memory.size_kib")
    assert by_log2 == by_list and sorted(by_log2) == [64.0, 128.0, 256.0]


def test_values_are_stored_as_the_config_validates_them(tmp_path):
    spec = real_spec(tmp_path, {"clock_mhz": [500, "750"], "pe_array.rows": [16]})
    values = [dict(p.point.overrides) for p in plan_sweep(spec).points]
    assert values == [{"clock_mhz": 500.0, "pe_array.rows": 16},
                      {"clock_mhz": 750.0, "pe_array.rows": 16}]
    assert [type(v["clock_mhz"]) for v in values] == [float, float]


def test_a_value_the_base_already_has_is_the_base_point(tmp_path):
    # sparse_int8_45nm: clock_mhz 500, pe_array.rows 16
    clock = plan_sweep(real_spec(tmp_path, {"clock_mhz": [500]}, name="a.yaml")).points
    rows = plan_sweep(real_spec(tmp_path, {"pe_array.rows": [16]}, name="b.yaml")).points
    assert clock[0].key == rows[0].key


def test_spellings_of_one_point_in_one_spec_run_once(tmp_path, caplog):
    # "500" and 1.0e+3 are text and a float in YAML; the config reads them as 500.0, 1000.0
    spec = real_spec(tmp_path, {"clock_mhz": [500, "500", 1000, "1.0e+3"]})
    points = plan_sweep(spec).points
    assert [dict(p.point.overrides)["clock_mhz"] for p in points] == [500.0, 1000.0]
    assert "2 point(s) are the same hardware and trace as an earlier point" in caplog.text


def test_bases_that_differ_only_in_their_name_are_one_hardware_point(tmp_path):
    from sparsespikformer.hwconfigs import hwconfig_path

    text = hwconfig_path("sparse_int8_45nm").read_text(encoding="utf-8")
    copy = tmp_path / "renamed.yaml"
    copy.write_text(text.replace("name: sparse_int8_45nm", "name: my_copy")
                    .replace("description: 16x16", "description: a copy, 16x16"),
                    encoding="utf-8")
    spec = real_spec(tmp_path, {"pe_array.rows": [16, 32]},
                     base=["sparse_int8_45nm", "renamed.yaml"])
    points = plan_sweep(spec).points
    assert len(points) == 2 and {p.point.base for p in points} == {"sparse_int8_45nm"}


def test_case_15_grid_runs_each_hardware_point_once(tmp_path):
    spec = real_spec(tmp_path, {"clock_mhz": [500, 1000.0], "pe_array.rows": [16, 32]})
    outcome = run_sweep(spec, tmp_path / "sw", workers=1, progress=False)
    assert outcome.total_points == 4 and outcome.errors == 0
    table = outcome.results
    assert table["key"].is_unique
    assert not table.duplicated(subset=["energy_pj", "latency_s", "pe_array.rows"]).any()


# ----------------------------------------------------------------------------- resuming


def test_resuming_with_other_spellings_runs_nothing_again(tmp_path):
    first = run_sweep(load_sweep_spec(write_spec(tmp_path, axes={"clock_mhz": [100, 200]})),
                      tmp_path / "sw", workers=1, progress=False, evaluator=FAKE)
    assert first.evaluated == 2 * 2 * 2  # 2 bases x 2 clocks x 2 traces
    again = run_sweep(load_sweep_spec(write_spec(tmp_path, axes={"clock_mhz": [100.0, 200.0]})),
                      tmp_path / "sw", workers=1, progress=False, evaluator=FAKE)
    assert (again.already_done, again.evaluated) == (8, 0)


def _legacy_key(base, overrides, trace_id):
    """Version 1 of the key, written out: sha256 of the JSON of the base's label and
    content hash, the overrides as written and the trace's hash."""
    payload = {"base": base, "base_sha256": base_identity(load_base(base)),
               "overrides": dict(overrides), "trace_sha256": trace_id}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def test_a_folder_keyed_by_version_1_is_re_keyed_not_rerun(tmp_path):
    spec = load_sweep_spec(write_spec(tmp_path, axes={"clock_mhz": [100, 200]}))
    reference = run_sweep(spec, tmp_path / "ref", workers=1, progress=False, evaluator=FAKE)
    run_sweep(spec, tmp_path / "old", workers=1, progress=False, evaluator=FAKE)
    plan = plan_sweep(spec, FAKE)
    legacy = {p.key: _legacy_key(p.point.base, p.written, plan.trace_identities[p.point.trace])
              for p in plan.points}
    # make "old" look like a folder written before version 2
    lines = (tmp_path / "old" / RESULTS_JSONL).read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    for row in rows:
        row["key"] = legacy[row["key"]]
        row["clock_mhz"] = int(row["clock_mhz"])  # as written in the spec then
    (tmp_path / "old" / RESULTS_JSONL).write_text("".join(json.dumps(r) + "\n" for r in rows))
    meta = json.loads((tmp_path / "old" / SWEEP_META).read_text())
    del meta["point_key_version"]
    (tmp_path / "old" / SWEEP_META).write_text(json.dumps(meta))

    resumed = run_sweep(spec, tmp_path / "old", workers=1, progress=False, evaluator=FAKE)
    assert (resumed.already_done, resumed.evaluated) == (reference.total_points, 0)
    keys = [json.loads(line)["key"] for line in
            (tmp_path / "old" / RESULTS_JSONL).read_text().splitlines()]
    assert sorted(keys) == sorted(reference.results["key"])
    assert (tmp_path / "old" / RESULTS_CSV).read_bytes() == \
        (tmp_path / "ref" / RESULTS_CSV).read_bytes()
    assert json.loads((tmp_path / "old" / SWEEP_META).read_text())["point_key_version"] == 2
