"""Sweep specs: value ranges, grid/random expansion, constraints, validation, keys."""

from __future__ import annotations

import hashlib
import itertools
import json
import re

import numpy as np
import pytest
import yaml
from sweep_fakes import FAKE_BASES, base_value, tiny_layer_shapes, write_spec

from sparsespikformer.analysis.sweeps import evaluate as sweep_eval
from sparsespikformer.analysis.sweeps.constraints import parse_constraint
from sparsespikformer.analysis.sweeps.identity import (
    hardware_identity,
    legacy_point_key,
    point_key,
)
from sparsespikformer.analysis.sweeps.spec import (
    count_points,
    expand_points,
    hardware_combinations,
    load_sweep_spec,
)
from sparsespikformer.analysis.sweeps.traces import build_trace, trace_content_hash, trace_metadata
from sparsespikformer.simulator.synthetic import synthetic_trace
from sparsespikformer.simulator.trace import Trace


def axis_values(tmp_path, spec_value):
    spec = load_sweep_spec(write_spec(tmp_path, axes={"clock_mhz": spec_value}))
    return list(spec.axes[0].values)


# ----------------------------------------------------------------------------- values


def test_range_includes_stop_when_it_lands(tmp_path):
    assert axis_values(tmp_path, {"range": [200, 800, 200]}) == [200, 400, 600, 800]
    assert axis_values(tmp_path, {"range": [1, 10, 4]}) == [1, 5, 9]
    values = axis_values(tmp_path, {"range": [0.1, 0.5, 0.1]})
    assert values == [0.1, 0.2, 0.3, 0.4, 0.5]  # no 0.30000000000000004
    assert all(isinstance(v, int) for v in axis_values(tmp_path, {"range": [2, 6, 2]}))


def test_log2_gives_powers_of_two_inclusive(tmp_path):
    assert axis_values(tmp_path, {"log2": [64, 1024]}) == [64, 128, 256, 512, 1024]
    assert axis_values(tmp_path, {"log2": [60, 1000]}) == [64, 128, 256, 512]
    assert axis_values(tmp_path, {"log2": [1, 1]}) == [1]


@pytest.mark.parametrize("bad", [{"range": [5, 1, 1]}, {"range": [1, 5, 0]}, {"range": [1, 5]},
                                 {"log2": [0, 8]}, {"log2": [5, 7]}, {"lin": [1, 2]}, [],
                                 [1, 1], "8", [[1]]])
def test_bad_axis_values_name_file_and_key(tmp_path, bad):
    path = write_spec(tmp_path, axes={"pe_array.rows": bad})
    with pytest.raises(ValueError, match=r"spec\.yaml: axes\.pe_array\.rows"):
        load_sweep_spec(path)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("changes, key", [
    ({"version": 2}, "version"),
    ({"version": None}, "version"),
    ({"colour": "red"}, "colour"),
    ({"mode": "exhaustive"}, "mode"),
    ({"samples": 5}, "samples"),  # samples in grid mode
    ({"mode": "random"}, "samples"),  # random mode without samples
    ({"mode": "random", "samples": 0}, "samples"),
    ({"seed": -1}, "seed"),
    ({"base": None}, "base"),
    ({"base": ["tiny_a", 3]}, r"base\[1\]"),
    ({"constraints": ["pe_array.rows <"]}, r"constraints\[0\]"),
    ({"constraints": "pe_array.rows < 3"}, "constraints"),
    ({"traces": []}, "traces"),
    ({"traces": [{"name": "x"}]}, r"traces\[0\]"),
    ({"traces": [{"path": "a", "synthetic": {"preset": "p"}}]}, r"traces\[0\]"),
    ({"traces": [{"synthetic": {"preset": "p", "firing_rate": 2}}]},
     r"traces\[0\]\.synthetic\.firing_rate"),
    ({"traces": [{"synthetic": {"preset": "p", "colour": 1}}]},
     r"traces\[0\]\.synthetic\.colour"),
    ({"traces": [{"path": "a", "name": "t"}, {"path": "b", "name": "t"}]},
     r"traces\[1\]\.name: duplicate"),
])
def test_invalid_specs_name_the_file_and_key(tmp_path, changes, key):
    path = write_spec(tmp_path, **changes)
    with pytest.raises(ValueError, match=rf"spec\.yaml: {key}"):
        load_sweep_spec(path)


def test_invalid_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: [1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.yaml: invalid YAML"):
        load_sweep_spec(bad)
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_sweep_spec(tmp_path / "nope.yaml")


def test_trace_paths_and_layer_shape_files_are_relative_to_the_spec(tmp_path):
    path = write_spec(tmp_path, traces=["traces/dense",
                                        {"name": "s", "synthetic": {"layer_shapes": "s.csv"}}])
    spec = load_sweep_spec(path)
    assert spec.traces[0].path == tmp_path / "traces" / "dense"
    assert spec.traces[0].name == "dense"
    assert spec.traces[1].layer_shapes == tmp_path / "s.csv"


def test_synthetic_lists_expand_into_named_traces(tmp_path):
    entry = {"name": "lth", "accuracy": 0.9,
             "synthetic": {"layer_shapes": tiny_layer_shapes(),
                           "weight_density": [1.0, 0.5], "keep_ratio": [1.0, 0.7]}}
    spec = load_sweep_spec(write_spec(tmp_path, traces=[entry]))
    assert [t.name for t in spec.traces] == ["lth/wd1-kr1", "lth/wd1-kr0.7",
                                             "lth/wd0.5-kr1", "lth/wd0.5-kr0.7"]
    assert [(t.weight_density, t.keep_ratio) for t in spec.traces] == [
        (1.0, 1.0), (1.0, 0.7), (0.5, 1.0), (0.5, 0.7)]


# ----------------------------------------------------------------------------- expansion


def brute_force_points(spec, keep):
    """Independent expansion: itertools.product and a Python predicate."""
    expected = []
    for trace in spec.traces:
        for base in spec.bases:
            for values in itertools.product(*(axis.values for axis in spec.axes)):
                named = dict(zip(spec.axis_keys, values, strict=True))
                if keep(base, named):
                    expected.append((trace.name, base, tuple(named.items())))
    return expected


def as_tuples(points):
    return [(p.trace, p.base, p.overrides) for p in points]


def test_grid_is_the_full_product_trace_major(tmp_path):
    spec = load_sweep_spec(write_spec(tmp_path))
    points = expand_points(spec)
    assert len(points) == 2 * 3 * 2 * 2 == count_points(spec)
    assert as_tuples(points) == brute_force_points(spec, lambda base, v: True)


def test_constraints_filter_the_grid(tmp_path):
    constraint = "pe_array.rows * clock_mhz <= 3200 and not (pe_array.rows == 8 and " \
                 "clock_mhz == 100) or pe_array.rows > 31"
    spec = load_sweep_spec(write_spec(
        tmp_path, axes={"pe_array.rows": [8, 16, 32], "clock_mhz": [100, 200, 400]},
        constraints=[constraint]))

    def keep(base, v):
        rows, clock = v["pe_array.rows"], v["clock_mhz"]
        return (rows * clock <= 3200 and not (rows == 8 and clock == 100)) or rows > 31

    expected = brute_force_points(spec, keep)
    assert 0 < len(expected) < 2 * 2 * 9
    assert as_tuples(expand_points(spec)) == expected


def test_constraints_read_unswept_keys_from_each_base(tmp_path):
    # cols is not swept: 16 in tiny_a, 32 in tiny_b
    spec = load_sweep_spec(write_spec(tmp_path, constraints=[
        "pe_array.rows * pe_array.cols <= 256"]))

    def lookup(base, key):
        return base_value(FAKE_BASES[base], key)

    expected = brute_force_points(spec, lambda base, v: v["pe_array.rows"] *
                                  FAKE_BASES[base]["pe_array"]["cols"] <= 256)
    assert as_tuples(expand_points(spec, lookup)) == expected
    with pytest.raises(ValueError, match="spec.yaml: constraints: 'pe_array.cols'"):
        expand_points(spec)  # no base lookup: cols is unknown


def test_string_axes_and_chained_comparisons(tmp_path):
    spec = load_sweep_spec(write_spec(tmp_path, axes={
        "pe_array.dataflow": ["ws", "os", "is"], "pe_array.rows": [4, 8, 16, 32]},
        constraints=['pe_array.dataflow != "is"', "4 < pe_array.rows <= 16"]))
    expected = brute_force_points(spec, lambda base, v: v["pe_array.dataflow"] != "is"
                                  and 4 < v["pe_array.rows"] <= 16)
    assert as_tuples(expand_points(spec)) == expected


def test_random_mode_is_seeded_distinct_and_valid(tmp_path):
    axes = {"pe_array.rows": {"range": [1, 40, 1]}, "clock_mhz": {"range": [10, 400, 10]}}
    constraints = ["pe_array.rows * clock_mhz <= 4000"]
    spec = load_sweep_spec(write_spec(tmp_path, mode="random", samples=50, seed=7, axes=axes,
                                      constraints=constraints))
    combos = hardware_combinations(spec)
    again = hardware_combinations(load_sweep_spec(spec.source))
    assert combos == again and len(combos) == 50 and len(set(combos)) == 50
    points = expand_points(spec)
    assert len(points) == 50 * len(spec.traces)
    for point in points:
        values = point.overrides_dict()
        assert values["pe_array.rows"] * values["clock_mhz"] <= 4000
    other = load_sweep_spec(write_spec(tmp_path, mode="random", samples=50, seed=8, axes=axes,
                                       constraints=constraints))
    assert hardware_combinations(other) != combos


def test_random_mode_in_a_huge_space_uses_rejection_sampling(tmp_path):
    axes = {f"pe_array.k{i}": {"range": [1, 100, 1]} for i in range(4)}  # 2 x 10^8 points
    spec = load_sweep_spec(write_spec(tmp_path, mode="random", samples=200, seed=1, axes=axes,
                                      constraints=["pe_array.k0 + pe_array.k1 < 100"]))
    combos = hardware_combinations(spec)
    assert len(set(combos)) == 200 and combos == hardware_combinations(spec)
    for point in expand_points(spec)[:200]:
        values = point.overrides_dict()
        assert values["pe_array.k0"] + values["pe_array.k1"] < 100


def test_random_mode_asking_for_more_than_exist_is_an_error(tmp_path):
    spec = load_sweep_spec(write_spec(tmp_path, mode="random", samples=13))  # 2x3x2 = 12
    with pytest.raises(ValueError, match="spec.yaml: samples: 13 requested but only 12"):
        expand_points(spec)


# ----------------------------------------------------------------------------- constraints


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')", "pe_array.rows.bit_length() > 1", "[1][0] < 2",
    "(lambda: 1)() == 1", "pe_array[0] > 1", "x if y else z", "{1: 2}", "a := 1",
    "pe_array.rows in (1, 2)", "(1).real > 0", "f'{x}' == 'a'",
])
def test_constraints_reject_everything_but_arithmetic(text):
    with pytest.raises(ValueError, match="constraint"):
        parse_constraint(text)


def test_constraint_evaluates_on_arrays_like_python():
    constraint = parse_constraint("a.b % 3 == 1 or -a.c // 2 >= -3 and a.b ** 2 != 16")
    b = np.arange(0, 10)
    c = np.arange(10, 0, -1)
    got = constraint.evaluate({"a.b": b, "a.c": c})
    expected = [(x % 3 == 1) or ((-y // 2 >= -3) and (x ** 2 != 16)) for x, y in zip(b, c)]
    assert got.tolist() == expected
    assert constraint.names == ("a.b", "a.c")
    with pytest.raises(ValueError, match="exponent"):
        parse_constraint("a ** 1000 > 1").evaluate({"a": np.array([2])})


# ----------------------------------------------------------------------------- identity


def _sha256_of_json(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def test_legacy_point_key_is_sha256_of_canonical_json_and_order_free():
    payload = {"base": "b", "base_sha256": "1" * 64, "overrides": {"x.y": 2, "a": "s"},
               "trace_sha256": "2" * 64}
    key = legacy_point_key(base="b", base_identity="1" * 64,
                           overrides=(("x.y", 2), ("a", "s")), trace_identity="2" * 64)
    assert key == _sha256_of_json(payload)
    assert key == legacy_point_key(base="b", base_identity="1" * 64,
                                   overrides=(("a", "s"), ("x.y", 2)), trace_identity="2" * 64)
    assert key != legacy_point_key(base="b", base_identity="1" * 64,
                                   overrides=(("a", "s"), ("x.y", 3)), trace_identity="2" * 64)


def test_point_key_is_sha256_of_hardware_and_trace_with_numbers_as_numbers():
    # oracle: the canonical JSON written out by hand, every number as a float
    hardware = {"clock_mhz": 500, "pe_array": {"rows": 16, "dataflow": "ws"}, "flag": True}
    expected_hw = _sha256_of_json({"hardware": {"clock_mhz": 500.0, "flag": True,
                                                "pe_array": {"dataflow": "ws", "rows": 16.0}}})
    assert hardware_identity(hardware) == expected_hw
    assert hardware_identity({**hardware, "clock_mhz": 500.0}) == expected_hw
    assert hardware_identity({**hardware, "flag": 1}) != expected_hw  # True is not 1
    key = point_key(hardware=expected_hw, trace_identity="2" * 64)
    assert key == _sha256_of_json({"hardware_sha256": expected_hw, "trace_sha256": "2" * 64,
                                   "version": 2})


def test_trace_hash_survives_a_save_and_load_and_sees_changes(tmp_path):
    trace = synthetic_trace(tiny_layer_shapes(), firing_rate=0.2, seed=3)
    loaded = Trace.load(trace.save(tmp_path / "t"))
    assert trace_content_hash(loaded) == trace_content_hash(trace)
    assert trace_content_hash(synthetic_trace(tiny_layer_shapes(), firing_rate=0.2, seed=3)) \
        == trace_content_hash(trace)
    changed = synthetic_trace(tiny_layer_shapes(), firing_rate=0.21, seed=3)
    assert trace_content_hash(changed) != trace_content_hash(trace)


def test_built_trace_carries_the_spec_accuracy(tmp_path):
    spec = load_sweep_spec(write_spec(tmp_path))
    trace = build_trace(spec.traces[1])
    info = trace_metadata(trace)
    assert info["accuracy"] == 0.85
    assert info["weight_sparsity"] == pytest.approx(0.75)
    assert info["keep_ratio"] == 1.0
    assert info["mean_in_nonzero_fraction"] == pytest.approx(0.2)


# ----------------------------------------------------------------------------- bundled specs


def test_bundled_specs_parse_and_have_at_least_200_points():
    from sparsespikformer.analysis.sweeps import evaluate as sweep_eval
    from sparsespikformer.hwconfigs import list_sweeps

    names = list_sweeps()
    assert len(names) >= 2
    for name in names:
        spec = load_sweep_spec(name)
        bases = {base: sweep_eval.load_base(base) for base in spec.bases}
        for axis in spec.axes:  # every axis value is valid for every base
            for base in bases.values():
                for value in axis.values:
                    sweep_eval.resolve_config(base, ((axis.key, value),))
        total = count_points(spec, lambda b, k, bases=bases: sweep_eval.base_value(bases[b], k))
        assert total >= 200, name
        assert yaml.safe_load(spec.source.read_text())["version"] == 1


def test_keep_ratio_on_shapes_that_already_select_tokens_is_an_error(tmp_path):
    shapes = tiny_layer_shapes()
    shapes.insert(2, dict(shapes[1], layer="selector.1", kind="selector", block=1))
    entry = {"name": "t", "synthetic": {"layer_shapes": shapes, "keep_ratio": 0.7}}
    spec = load_sweep_spec(write_spec(tmp_path, traces=[entry]))
    with pytest.raises(ValueError, match=r"traces\[0\]\.synthetic\.keep_ratio: .*selectors"):
        build_trace(spec.traces[0])


@pytest.mark.parametrize("text, kind", [
    ("1 / 0 > 1", "ZeroDivisionError"), ("1 % 0 == 1", "ZeroDivisionError"),
    ("1e300 ** 2 > 1", "OverflowError"), ("a / 0 > 1", "FloatingPointError"),
    ("a * 1e308 > 1", "FloatingPointError"),
])
def test_constraint_arithmetic_errors_name_the_constraint(text, kind):
    expected = re.escape(f"constraint '{text}': arithmetic error ({kind}")
    with pytest.raises(ValueError, match=expected):
        parse_constraint(text).evaluate({"a": np.array([1.0, 2.0])})


def test_constraint_arithmetic_error_in_a_spec_names_the_file(tmp_path):
    spec = load_sweep_spec(write_spec(tmp_path, constraints=["pe_array.rows / 0 > 1"]))
    with pytest.raises(ValueError, match=r"spec.yaml: constraints: .*arithmetic error"):
        expand_points(spec)


# ----------------------------------------------------------------------------- YAML


def test_repeated_key_in_a_spec_or_its_base_file_is_an_error(tmp_path):
    path = write_spec(tmp_path)
    text = path.read_text()
    path.write_text(text + "mode: random\n")
    with pytest.raises(ValueError, match=r"spec.yaml: line \d+: duplicate key 'mode'"):
        load_sweep_spec(path)
    base = tmp_path / "base.yaml"
    base.write_text("version: 1\nclock_mhz: 500\nclock_mhz: 1000\n")
    with pytest.raises(ValueError, match=r"base.yaml: line 3: duplicate key 'clock_mhz'"):
        sweep_eval.load_base(str(base))


def test_a_batch_key_is_the_schedule_batch_axis(tmp_path):
    spec = load_sweep_spec(write_spec(tmp_path, batch=[1, 8]))
    batch = next(axis for axis in spec.axes if axis.key == "schedule.batch")
    assert list(batch.values) == [1, 8]
    assert count_points(spec) == 2 * 3 * 2 * 2 * 2
    single = load_sweep_spec(write_spec(tmp_path, batch=4))
    assert [a.values for a in single.axes if a.key == "schedule.batch"] == [(4,)]
    from sparsespikformer.simulator.errors import SweepSpecError
    with pytest.raises(SweepSpecError, match="batch: give either"):
        load_sweep_spec(write_spec(tmp_path, batch=2, axes={"schedule.batch": [1]}))
