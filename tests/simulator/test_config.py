"""Hardware config loading, overrides and validation errors (file and dotted key named)."""

import math
from pathlib import Path

import pytest
import yaml

from sparsespikformer.hwconfigs import list_hwconfigs, list_sweeps, resolve_hwconfig
from sparsespikformer.simulator.config import (
    HwConfig,
    apply_overrides,
    hwconfig_from_dict,
    load_hwconfig,
    parse_override,
)

BUNDLED = ("paper_fp32_45nm", "sparse_int8_45nm", "loihi_like", "sata_like", "dense_systolic")


def bundled_dict(name="sparse_int8_45nm"):
    return yaml.safe_load(resolve_hwconfig(name).read_text())


def write_config(tmp_path, data, name="x.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def load_error(tmp_path, data, overrides=None):
    path = write_config(tmp_path, data)
    with pytest.raises(ValueError) as info:
        load_hwconfig(path, overrides)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_every_bundled_config_is_listed_and_loads():
    assert set(BUNDLED) <= set(list_hwconfigs())
    for name in BUNDLED:
        hw = load_hwconfig(name)
        assert isinstance(hw, HwConfig)
        assert hw.name == name
        assert hw.version == 1


def test_default_config_is_the_documented_one():
    hw = load_hwconfig("sparse_int8_45nm")
    assert (hw.pe_array.rows, hw.pe_array.cols) == (16, 16)
    assert hw.weight_memory.format == "bitmask"
    assert hw.policies.input_sparsity == "skip" and hw.policies.weight_sparsity == "skip"


def test_paper_config_holds_the_papers_energies():
    hw = load_hwconfig("paper_fp32_45nm")
    assert hw.energy.multiply_accumulate_pj == 4.6
    assert hw.energy.accumulate_pj == 0.9
    assert hw.leakage_mw == 0.0


def test_sata_config_holds_the_published_sizes():
    hw = load_hwconfig("sata_like")
    assert (hw.pe_array.rows, hw.pe_array.cols, hw.clock_mhz) == (8, 16, 400.0)
    assert hw.weight_memory.size_kib * 1024 == 147_456
    assert hw.spike_buffer.size_kib * 1024 == 32_768


def test_loading_by_path_equals_loading_by_name(tmp_path):
    path = write_config(tmp_path, bundled_dict("loihi_like"), "copy.yaml")
    assert load_hwconfig(path) == load_hwconfig("loihi_like")
    assert load_hwconfig(str(path)).source == str(path)


def test_omitted_keys_take_the_sections_documented_defaults():
    """The global buffer's defaults (4 banks of 256 bits, as sparse_int8_45nm) are not the
    spike buffer's (2 x 64), whether the config comes from YAML or from HwConfig()."""
    raw = bundled_dict("sparse_int8_45nm")
    for section in ("global_buffer", "spike_buffer"):
        del raw[section]["banks"], raw[section]["word_bits"]
    hw = hwconfig_from_dict(raw)
    assert (hw.global_buffer.banks, hw.global_buffer.word_bits) == (4, 256)
    assert (hw.spike_buffer.banks, hw.spike_buffer.word_bits) == (2, 64)
    defaults = HwConfig()
    assert (defaults.global_buffer.banks, defaults.global_buffer.word_bits) == (4, 256)


def test_resolved_config_round_trips_through_a_dict():
    hw = load_hwconfig("sata_like")
    assert hwconfig_from_dict(hw.to_dict()) == hw


def test_overrides_change_dotted_keys_and_accept_cli_strings():
    hw = load_hwconfig("sparse_int8_45nm", {"pe_array.rows": 32, "pe_array.cols": "8",
                                            "weight_memory.size_kib": "1e3",
                                            "policies.time_handling": "parallel",
                                            "pe_array.pe_area_mm2": "null"})
    assert (hw.pe_array.rows, hw.pe_array.cols) == (32, 8)
    assert hw.weight_memory.size_kib == 1000.0
    assert hw.policies.time_handling == "parallel"
    assert hw.pe_array.pe_area_mm2 is None
    # the bundled file itself is untouched for the next load
    assert load_hwconfig("sparse_int8_45nm").pe_array.rows == 16


def test_apply_overrides_revalidates():
    hw = apply_overrides(load_hwconfig("dense_systolic"),
                         {"pe_array.dataflow": "output_stationary"})
    assert hw.pe_array.dataflow == "output_stationary"
    with pytest.raises(ValueError, match=r"pe_array\.rows: must be a positive integer"):
        apply_overrides(hw, {"pe_array.rows": 0})


def test_parse_override():
    assert parse_override("pe_array.rows=32") == ("pe_array.rows", 32)
    assert parse_override("weight_memory.format = csr") == ("weight_memory.format", "csr")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_override("pe_array.rows")


def test_area_sums_the_components_given():
    hw = load_hwconfig("sparse_int8_45nm")
    # SRAM areas are `auto`: CACTI 7 at 45 nm gives 0.859765 mm2 for 256 KiB of 256-bit words
    # and 0.209046 mm2 for 64 KiB of 64-bit words (docs/sram-tables.md)
    expected = (16 * 16 * 0.002 + 16 * 0.001 + 2 * 0.859765 + 2 * 0.209046 + 16 * 0.0002)
    assert hw.area_mm2 == pytest.approx(expected)
    assert math.isnan(load_hwconfig("paper_fp32_45nm").area_mm2)


# ----------------------------------------------------------------------------- errors


def test_zero_rows_names_file_and_key(tmp_path):
    data = bundled_dict()
    data["pe_array"]["rows"] = 0
    message = load_error(tmp_path, data)
    assert "pe_array.rows: must be a positive integer, got 0" in message


@pytest.mark.parametrize("section, key, value, expected", [
    ("pe_array", "rows", "16", "pe_array.rows: must be a positive integer"),
    ("pe_array", "cols", True, "pe_array.cols: must be a positive integer"),
    ("pe_array", "cols", 2.5, "pe_array.cols: must be a positive integer"),
    ("weight_memory", "size_kib", -1, "weight_memory.size_kib: must be a positive number"),
    ("weight_memory", "size_kib", 0, "weight_memory.size_kib: must be a positive number"),
    ("weight_memory", "read_pj", -0.5, "weight_memory.read_pj: must be a non-negative number"),
    ("dram", "bandwidth_gbps", "fast", "dram.bandwidth_gbps: must be a positive number"),
    ("weight_memory", "format", "coo", "weight_memory.format: must be one of dense, bitmask"),
    ("pe_array", "dataflow", "row_stationary",
     "pe_array.dataflow: must be one of weight_stationary"),
    ("policies", "weight_sparsity", "prune", "policies.weight_sparsity: must be one of none"),
    ("policies", "time_handling", "both", "policies.time_handling: must be one of serial"),
    ("policies", "integer_inputs", "lut", "policies.integer_inputs: must be one of replay"),
])
def test_bad_values_are_named(tmp_path, section, key, value, expected):
    data = bundled_dict()
    data[section][key] = value
    assert expected in load_error(tmp_path, data)


def test_unknown_keys_are_named(tmp_path):
    data = bundled_dict()
    data["spike_buffer"]["size_kb"] = 64
    assert "spike_buffer.size_kb: unknown key" in load_error(tmp_path, data)
    data = bundled_dict()
    data["turbo"] = True
    assert "turbo: unknown key" in load_error(tmp_path, data)


def test_missing_required_values_are_named(tmp_path):
    data = bundled_dict()
    del data["energy"]["accumulate_pj"]
    assert "energy.accumulate_pj: missing required value" in load_error(tmp_path, data)
    data = bundled_dict()
    del data["dram"]
    assert "dram.bandwidth_gbps: missing required value" in load_error(tmp_path, data)
    data = bundled_dict()
    del data["version"]
    assert "version: missing required value" in load_error(tmp_path, data)


def test_section_of_the_wrong_type_is_named(tmp_path):
    data = bundled_dict()
    data["global_buffer"] = 256
    assert "global_buffer: must be a mapping" in load_error(tmp_path, data)


def test_unsupported_version_is_named(tmp_path):
    data = bundled_dict()
    data["version"] = 2
    assert "version: unsupported version 2" in load_error(tmp_path, data)


def test_multiply_policy_without_multipliers_is_named(tmp_path):
    data = bundled_dict()
    data["pe_array"]["multiply_units_per_pe"] = 0
    data["policies"]["integer_inputs"] = "multiply"
    assert "policies.integer_inputs: 'multiply' needs" in load_error(tmp_path, data)


@pytest.mark.parametrize("clock", [1e-300, 1e-4, 2e6, 1e308])
def test_absurd_clock_is_named(tmp_path, clock):
    message = load_error(tmp_path, bundled_dict(), {"clock_mhz": clock})
    assert "clock_mhz: must be between 0.001 and 1e+06 MHz" in message


def test_bad_override_names_file_key_and_origin(tmp_path):
    data = bundled_dict()
    message = load_error(tmp_path, data, {"pe_array.rows": "0"})
    assert "pe_array.rows: must be a positive integer, got 0 (set by override)" in message
    message = load_error(tmp_path, data, {"pe_array.rowz": 4})
    assert "override pe_array.rowz: unknown key" in message
    message = load_error(tmp_path, data, {"pe_array": 4})
    assert "override pe_array: is a section" in message
    message = load_error(tmp_path, data, {"clock_mhz.value": 4})
    assert "override clock_mhz.value" in message


def test_invalid_yaml_and_missing_files(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("pe_array: [1, 2\n")
    with pytest.raises(ValueError, match="broken.yaml: invalid YAML"):
        load_hwconfig(path)
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        load_hwconfig(tmp_path / "nowhere.yaml")
    with pytest.raises(ValueError, match="no bundled hardware config") as info:
        load_hwconfig("no_such_accelerator")
    assert "sparse_int8_45nm" in str(info.value)


# ----------------------------------------------------------------------------- sweep spec


def test_bundled_sweep_spec_expands_to_valid_overrides():
    sweep_spec = pytest.importorskip("sparsespikformer.analysis.sweeps.spec")
    assert "pe_memory_sweep" in list_sweeps()
    spec = sweep_spec.load_sweep_spec("pe_memory_sweep")
    combos = sweep_spec.hardware_combinations(spec)
    assert len(combos) >= 200
    for point in sweep_spec.expand_points(spec)[: len(combos)]:
        hw = load_hwconfig(point.base, point.overrides_dict())
        assert hw.pe_array.rows * hw.pe_array.cols <= 2048


def test_bundled_files_are_package_data():
    # setup.cfg ships `*.yaml` and `sweeps/*.yaml`: nothing may live deeper.
    folder = resolve_hwconfig("sparse_int8_45nm").parent
    nested = [p for p in folder.rglob("*.yaml") if p.parent not in (folder, folder / "sweeps")]
    assert nested == []
    assert Path(folder / "sweeps" / "pe_memory_sweep.yaml").is_file()
