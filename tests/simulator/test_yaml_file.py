"""The shared YAML reader: safe loading, one-line errors, no silently repeated keys."""

import pytest

from sparsespikformer.simulator.config import load_hwconfig
from sparsespikformer.simulator.yaml_file import read_yaml


def read_text(tmp_path, text):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    return read_yaml(path)


@pytest.mark.parametrize("text, line, key, first", [
    ("clock_mhz: 500\nleakage_mw: 1\nclock_mhz: 1000\n", 3, "clock_mhz", 1),
    ("pe_array:\n  rows: 8\n  cols: 8\n  rows: 16\n", 4, "rows", 2),
    ("axes: {a: [1], a: [2]}\n", 1, "a", 1),
])
def test_duplicate_keys_name_file_line_and_key(tmp_path, text, line, key, first):
    with pytest.raises(ValueError) as info:
        read_text(tmp_path, text)
    message = str(info.value)
    assert message == (f"{tmp_path / 'x.yaml'}: line {line}: duplicate key {key!r} "
                       f"(first on line {first})")


def test_merge_keys_may_be_overridden_and_loading_stays_safe(tmp_path):
    text = "a: &x {p: 1, q: 2}\nb:\n  <<: *x\n  p: 3\n"
    assert read_text(tmp_path, text) == {"a": {"p": 1, "q": 2}, "b": {"p": 3, "q": 2}}
    with pytest.raises(ValueError, match="invalid YAML"):
        read_text(tmp_path, "a: !!python/object/apply:os.system ['true']\n")


def test_hardware_config_with_a_repeated_key_is_rejected(tmp_path):
    path = tmp_path / "hw.yaml"
    path.write_text("version: 1\nclock_mhz: 500\nclock_mhz: 1000\n")
    with pytest.raises(ValueError, match=r"hw.yaml: line 3: duplicate key 'clock_mhz'"):
        load_hwconfig(path)
