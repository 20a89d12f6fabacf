"""Hardware configuration: the YAML schema, its frozen dataclasses, the loader.

A config file is YAML with `version: 1` and a unit in every key name (`clock_mhz`,
`size_kib`, `read_pj`). `load_hwconfig("sparse_int8_45nm")` loads a bundled file by name,
`load_hwconfig("my.yaml")` a file by path; `overrides={"pe_array.rows": 32}` changes dotted
keys before validation (how sweeps vary a config; the CLI's `--set key=value` passes strings,
parsed as one YAML scalar each). Everything is validated: an unknown key, a wrong type, a
missing required value, a zero or negative size, an unknown format or policy raises a
one-line `ValueError` naming the file and the full dotted key.

Each dataclass field carries its check in `metadata`; a field marked `required` must be
written in every file (energies and capacities, so a forgotten number is an error rather
than a silently free memory). The defaults are those of the bundled `sparse_int8_45nm`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sparsespikformer.hwconfigs import resolve_hwconfig
from sparsespikformer.simulator import checks
from sparsespikformer.simulator.errors import HwConfigError
from sparsespikformer.simulator.yaml_file import read_yaml

CONFIG_VERSION = 1
DATAFLOWS = ("weight_stationary", "output_stationary", "input_stationary")
TIME_HANDLINGS = ("serial", "parallel")
SPARSITY_HANDLINGS = ("none", "gate", "skip")
INTEGER_INPUT_MODES = ("replay", "multiply")
SPARSE_FORMATS = ("dense", "bitmask", "csr", "rle")
BITS_PER_KIB = 8 * 1024

# ----------------------------------------------------------------------------- field checks
# A check is (description for the error message, predicate on an already type-checked value).
POSITIVE_INT = "positive_int"
NON_NEGATIVE_INT = "non_negative_int"
POSITIVE_FLOAT = "positive_float"
NON_NEGATIVE_FLOAT = "non_negative_float"
OPTIONAL_NON_NEGATIVE_FLOAT = "optional_non_negative_float"
TEXT = "text"


def _field(default: Any, check: str, *, required: bool = False,
           choices: tuple[str, ...] = ()) -> Any:
    return field(default=default,
                 metadata={"check": check, "required": required, "choices": choices})


def _choice(default: str, choices: tuple[str, ...], *, required: bool = False) -> Any:
    return _field(default, "choice", required=required, choices=choices)


def _section(cls: type, factory: Any = None) -> Any:
    return field(default_factory=factory or cls, metadata={"section": cls})


@dataclass(frozen=True)
class PeArrayConfig:
    """The processing-element array. Each unit retires one operation per cycle."""

    rows: int = _field(16, POSITIVE_INT, required=True)
    cols: int = _field(16, POSITIVE_INT, required=True)
    dataflow: str = _choice("output_stationary", DATAFLOWS, required=True)
    # Accumulators per PE: spike, integer (replayed) and rate inputs use these.
    accumulate_units_per_pe: int = _field(1, POSITIVE_INT)
    # Multipliers per PE: real-valued inputs (and integers under `integer_inputs: multiply`).
    # 0 = no multiplier: a real-valued MAC runs bit-serially as `real_value_bits` accumulates.
    multiply_units_per_pe: int = _field(1, NON_NEGATIVE_INT)
    real_value_bits: int = _field(8, POSITIVE_INT)  # width of real / rate activations
    psum_bits: int = _field(24, POSITIVE_INT)  # width of partial sums written to the buffer
    pe_area_mm2: float | None = _field(None, OPTIONAL_NON_NEGATIVE_FLOAT)  # one PE

    def area_mm2(self) -> float | None:
        return None if self.pe_area_mm2 is None else self.rows * self.cols * self.pe_area_mm2


@dataclass(frozen=True)
class PolicyConfig:
    """Dataflow-independent policies: time handling and sparsity handling per operand."""

    # serial: one timestep after another; parallel: one weight fetch serves all T timesteps.
    time_handling: str = _choice("serial", TIME_HANDLINGS)
    # none: compute on zeros; gate: zeros cost no compute energy but keep their cycle;
    # skip: zeros cost neither energy nor cycles.
    input_sparsity: str = _choice("skip", SPARSITY_HANDLINGS)  # spike, integer, rate inputs
    real_input_sparsity: str = _choice("none", SPARSITY_HANDLINGS)  # real-valued inputs
    weight_sparsity: str = _choice("skip", SPARSITY_HANDLINGS)  # weights and attention K / V
    # replay: an integer value v is v accumulate events; multiply: one multiplier MAC.
    integer_inputs: str = _choice("replay", INTEGER_INPUT_MODES)


@dataclass(frozen=True)
class NeuronUnitConfig:
    """LIF neuron units: membrane update, threshold compare, reset."""

    count: int = _field(16, POSITIVE_INT)
    updates_per_cycle: int = _field(1, POSITIVE_INT)  # per unit
    update_pj: float = _field(0.13, NON_NEGATIVE_FLOAT, required=True)
    spike_pj: float = _field(0.0, NON_NEGATIVE_FLOAT)  # extra energy per output spike
    membrane_bits: int = _field(16, POSITIVE_INT)
    unit_area_mm2: float | None = _field(None, OPTIONAL_NON_NEGATIVE_FLOAT)  # one unit

    def area_mm2(self) -> float | None:
        return None if self.unit_area_mm2 is None else self.count * self.unit_area_mm2


@dataclass(frozen=True)
class WeightMemoryConfig:
    """On-chip sparse weight memory. Energies are per access of one `word_bits` word."""

    format: str = _choice("bitmask", SPARSE_FORMATS, required=True)
    value_bits: int = _field(8, POSITIVE_INT)
    # csr: column index and row pointer width; rle: run-length field width; unused otherwise.
    index_bits: int = _field(8, POSITIVE_INT)
    size_kib: float = _field(256.0, POSITIVE_FLOAT, required=True)
    banks: int = _field(4, POSITIVE_INT)
    word_bits: int = _field(256, POSITIVE_INT)
    read_pj: float = _field(124.61, NON_NEGATIVE_FLOAT, required=True)
    write_pj: float = _field(118.03, NON_NEGATIVE_FLOAT, required=True)
    area_mm2_per_kib: float | None = _field(None, OPTIONAL_NON_NEGATIVE_FLOAT)

    def area_mm2(self) -> float | None:
        return None if self.area_mm2_per_kib is None else self.size_kib * self.area_mm2_per_kib


@dataclass(frozen=True)
class BufferConfig:
    """An on-chip SRAM buffer (spike, membrane or global). Energies per `word_bits` access."""

    size_kib: float = _field(64.0, POSITIVE_FLOAT, required=True)
    banks: int = _field(2, POSITIVE_INT)
    word_bits: int = _field(64, POSITIVE_INT)
    read_pj: float = _field(25.87, NON_NEGATIVE_FLOAT, required=True)
    write_pj: float = _field(19.65, NON_NEGATIVE_FLOAT, required=True)
    area_mm2_per_kib: float | None = _field(None, OPTIONAL_NON_NEGATIVE_FLOAT)

    def area_mm2(self) -> float | None:
        return None if self.area_mm2_per_kib is None else self.size_kib * self.area_mm2_per_kib


def _global_buffer_default() -> BufferConfig:
    return BufferConfig(size_kib=256.0, banks=4, word_bits=256, read_pj=124.61, write_pj=118.03)


@dataclass(frozen=True)
class DramConfig:
    """Off-chip memory. Bandwidth in gigabits per second."""

    bandwidth_gbps: float = _field(204.8, POSITIVE_FLOAT, required=True)
    energy_pj_per_bit: float = _field(8.0, NON_NEGATIVE_FLOAT, required=True)


@dataclass(frozen=True)
class SelectorUnitConfig:
    """Token-selector unit: top-k over token scores with parallel comparators."""

    comparators: int = _field(16, POSITIVE_INT)
    # A parameter-free scorer (firing rate) sums each token's input values: one add each.
    adders: int = _field(16, POSITIVE_INT)
    add_pj: float = _field(0.03, NON_NEGATIVE_FLOAT)
    comparator_area_mm2: float | None = _field(None, OPTIONAL_NON_NEGATIVE_FLOAT)

    def area_mm2(self) -> float | None:
        if self.comparator_area_mm2 is None:
            return None
        return self.comparators * self.comparator_area_mm2


@dataclass(frozen=True)
class EnergyConfig:
    """Per-action compute energies."""

    accumulate_pj: float = _field(0.03, NON_NEGATIVE_FLOAT, required=True)
    multiply_accumulate_pj: float = _field(0.23, NON_NEGATIVE_FLOAT, required=True)
    compare_pj: float = _field(0.03, NON_NEGATIVE_FLOAT, required=True)
    gated_op_pj: float = _field(0.0, NON_NEGATIVE_FLOAT)  # a gated (zero) operand's cycle


@dataclass(frozen=True)
class HwConfig:
    """A complete, validated accelerator description."""

    version: int = _field(CONFIG_VERSION, POSITIVE_INT, required=True)
    name: str = _field("", TEXT)
    description: str = _field("", TEXT)
    clock_mhz: float = _field(500.0, POSITIVE_FLOAT, required=True)
    leakage_mw: float = _field(0.0, NON_NEGATIVE_FLOAT, required=True)
    pe_array: PeArrayConfig = _section(PeArrayConfig)
    policies: PolicyConfig = _section(PolicyConfig)
    neuron_unit: NeuronUnitConfig = _section(NeuronUnitConfig)
    weight_memory: WeightMemoryConfig = _section(WeightMemoryConfig)
    spike_buffer: BufferConfig = _section(BufferConfig)
    membrane_buffer: BufferConfig = _section(BufferConfig)
    global_buffer: BufferConfig = _section(BufferConfig, _global_buffer_default)
    dram: DramConfig = _section(DramConfig)
    selector_unit: SelectorUnitConfig = _section(SelectorUnitConfig)
    energy: EnergyConfig = _section(EnergyConfig)
    source: str = field(default="<defaults>", compare=False)  # file it came from

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict of every value (no `source`): the resolved config."""
        data = dataclasses.asdict(self)
        data.pop("source")
        return data

    @property
    def area_mm2(self) -> float:
        """Sum of the component areas given (DRAM excluded); NaN when none is given."""
        areas = [section.area_mm2() for section in _sections(self) if hasattr(section, "area_mm2")]
        given = [a for a in areas if a is not None]
        return float(sum(given)) if given else math.nan


def _sections(hw: HwConfig) -> list[Any]:
    return [getattr(hw, f.name) for f in dataclasses.fields(hw) if "section" in f.metadata]


# ----------------------------------------------------------------------------- loading

_RAW_CACHE: dict[tuple[str, int, int], dict[str, Any]] = {}


def load_hwconfig(name_or_path: str | os.PathLike, overrides: Mapping[str, Any] | None = None
                  ) -> HwConfig:
    """Load a bundled config by name or a YAML file by path, apply dotted overrides, validate."""
    path = resolve_hwconfig(name_or_path)
    raw = _read_yaml(path)
    return hwconfig_from_dict(raw, source=str(path), overrides=overrides)


def hwconfig_from_dict(raw: Any, *, source: str = "<dict>",
                       overrides: Mapping[str, Any] | None = None) -> HwConfig:
    """Validate a parsed YAML mapping (plus dotted overrides) into an `HwConfig`."""
    if not isinstance(raw, Mapping):
        raise HwConfigError(f"{source}: top level must be a mapping of keys, "
                         f"got {type(raw).__name__}")
    data = _copy_tree(raw)
    overridden = _apply_overrides(data, overrides or {}, source)
    version = data.get("version")
    if "version" in data and version != CONFIG_VERSION:
        raise HwConfigError(f"{source}: version: unsupported version {version!r} "
                         f"(this build reads version {CONFIG_VERSION})")
    hw = _build(HwConfig, data, source, "", overridden)
    _check_cross_fields(hw, source)
    return dataclasses.replace(hw, source=source)


def apply_overrides(hw: HwConfig, overrides: Mapping[str, Any]) -> HwConfig:
    """A new config: `hw` with dotted overrides applied and validated again."""
    return hwconfig_from_dict(hw.to_dict(), source=hw.source, overrides=overrides)


def parse_override(text: str) -> tuple[str, Any]:
    """`"pe_array.rows=32"` -> `("pe_array.rows", 32)`; the value is one YAML scalar."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise HwConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. pe_array.rows=32")
    return key, _parse_scalar(value.strip(), f"--set {key}")


def _read_yaml(path: Path) -> dict[str, Any]:
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    cached = _RAW_CACHE.get(key)
    if cached is None:
        cached = read_yaml(path)
        if cached is None:
            raise HwConfigError(f"{path}: empty file")
        _RAW_CACHE[key] = cached
    return cached


def _copy_tree(value: Any) -> Any:
    """Copy nested mappings (the only mutable part we change) so the cache stays intact."""
    if isinstance(value, Mapping):
        return {k: _copy_tree(v) for k, v in value.items()}
    return value


def _parse_scalar(text: str, where: str) -> Any:
    try:
        value = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        raise HwConfigError(f"{where}: cannot parse value {text!r}") from None
    if isinstance(value, (dict, list)):
        raise HwConfigError(f"{where}: expected a single value, got {text!r}")
    return value


def _apply_overrides(data: dict[str, Any], overrides: Mapping[str, Any],
                     source: str) -> set[str]:
    """Set dotted keys in `data` in place; returns the keys set, for error messages."""
    for dotted, value in overrides.items():
        if not isinstance(dotted, str) or not dotted:
            raise HwConfigError(f"{source}: override {dotted!r}: key must be a dotted string")
        parts = dotted.split(".")
        cls: type = HwConfig
        node = data
        for depth, part in enumerate(parts):
            fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
            if part not in fields:
                where = ".".join(parts[: depth + 1])
                raise HwConfigError(f"{source}: override {where}: unknown key "
                                 f"(expected one of: {', '.join(fields)})")
            section = fields[part].metadata.get("section")
            last = depth == len(parts) - 1
            if last:
                if section is not None:
                    raise HwConfigError(f"{source}: override {dotted}: is a section; "
                                     f"set one of its keys, e.g. {dotted}.<key>")
                if isinstance(value, str):
                    value = _parse_scalar(value, f"{source}: override {dotted}")
                node[part] = value
            else:
                if section is None:
                    raise HwConfigError(f"{source}: override {dotted}: "
                                     f"{'.'.join(parts[:depth + 1])} is not a section")
                child = node.get(part)
                if child is None:
                    child = node[part] = {}
                if not isinstance(child, dict):
                    raise HwConfigError(f"{source}: {'.'.join(parts[:depth + 1])}: must be a "
                                     f"mapping, got {type(child).__name__}")
                node, cls = child, section
    return set(overrides)


def _build(cls: type, data: Any, source: str, prefix: str, overridden: set[str],
           defaults: Any = None) -> Any:
    """`cls` from `data`; a key it omits keeps its value in `defaults` (an instance), the
    section's own default (the global buffer's differs from the other buffers')."""
    if not isinstance(data, Mapping):
        raise HwConfigError(f"{source}: {prefix.rstrip('.') or 'top level'}: must be a mapping "
                         f"of keys, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    for key in data:
        if key not in fields:
            raise HwConfigError(f"{source}: {prefix}{key}: unknown key "
                             f"(expected one of: {', '.join(fields)})")
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        dotted = f"{prefix}{name}"
        section = spec.metadata.get("section")
        if section is not None:
            values[name] = _build(section, data.get(name, {}), source, f"{dotted}.",
                                  overridden, defaults=spec.default_factory())
            continue
        if name not in data:
            if spec.metadata.get("required"):
                raise HwConfigError(f"{source}: {dotted}: missing required value")
            continue
        suffix = " (set by override)" if dotted in overridden else ""
        values[name] = _check_value(data[name], spec.metadata, f"{source}: {dotted}", suffix)
    return cls(**values) if defaults is None else dataclasses.replace(defaults, **values)


def _check_value(value: Any, meta: Mapping[str, Any], where: str, suffix: str) -> Any:
    check, kw = meta["check"], {"error": HwConfigError, "note": suffix}
    if check == "choice":
        return checks.check_choice(value, meta["choices"], where, **kw)
    if check == TEXT:
        return checks.check_text(value, where, **kw)
    if check == OPTIONAL_NON_NEGATIVE_FLOAT and value is None:
        return None
    if check == POSITIVE_INT:
        return checks.check_positive_int(value, where, **kw)
    if check == NON_NEGATIVE_INT:
        return checks.check_non_negative_int(value, where, **kw)
    if isinstance(value, str):
        value = _number_from_text(value)  # YAML 1.1 reads `1e3` as text
    if check == POSITIVE_FLOAT:
        return checks.check_number(value, where, positive=True, **kw)
    return checks.check_number(value, where, minimum=0, **kw)


def _number_from_text(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


# 1 kHz to 1 THz: beyond these, latency and leakage energy underflow or overflow floats.
CLOCK_MHZ_RANGE = (1e-3, 1e6)


def _check_cross_fields(hw: HwConfig, source: str) -> None:
    low, high = CLOCK_MHZ_RANGE
    if not (low <= hw.clock_mhz <= high):
        raise HwConfigError(f"{source}: clock_mhz: must be between {low:g} and {high:g} MHz, "
                         f"got {hw.clock_mhz!r}")
    if hw.policies.integer_inputs == "multiply" and hw.pe_array.multiply_units_per_pe == 0:
        raise HwConfigError(f"{source}: policies.integer_inputs: 'multiply' needs "
                         f"pe_array.multiply_units_per_pe >= 1, got 0")


__all__ = [
    "CONFIG_VERSION", "DATAFLOWS", "TIME_HANDLINGS", "SPARSITY_HANDLINGS",
    "INTEGER_INPUT_MODES", "SPARSE_FORMATS", "BITS_PER_KIB", "HwConfig", "PeArrayConfig",
    "PolicyConfig", "NeuronUnitConfig", "WeightMemoryConfig", "BufferConfig", "DramConfig",
    "SelectorUnitConfig", "EnergyConfig", "load_hwconfig", "hwconfig_from_dict",
    "apply_overrides", "parse_override",
]
