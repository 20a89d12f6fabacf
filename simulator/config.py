"""Hardware configuration: the YAML schema, its frozen dataclasses, the loader.

A config file is YAML with `version: 1` and a unit in every key name (`clock_mhz`,
`size_kib`, `read_pj`). `load_hwconfig("sparse_int8_45nm")` loads a bundled file by name,
`load_hwconfig("my.yaml")` a file by path; `overrides={"pe_array.rows": 32}` changes dotted
keys before validation (how sweeps vary a config; the CLI's `--set key=value` passes strings,
parsed as one YAML scalar each). Everything is validated: an unknown key, a wrong type, a
missing required value, a zero or negative size, an unknown format or policy raises a
one-line `HwConfigError` naming the file and the full dotted key.

Each dataclass field carries its check in `metadata` (`config_fields.py`); a field marked
`required` must be written in every file (energies and capacities, so a forgotten number is
an error rather than a silently free memory). The defaults are those of the bundled
`sparse_int8_45nm`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sparsespikformer.hwconfigs import resolve_hwconfig
from sparsespikformer.simulator.config_auto import resolve_auto_costs, to_plain_dict
from sparsespikformer.simulator.config_fields import (
    COST_OR_AUTO,
    NON_NEGATIVE_FLOAT,
    NON_NEGATIVE_INT,
    OPTIONAL_COST_OR_AUTO,
    OPTIONAL_NON_NEGATIVE_FLOAT,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    TEXT,
    apply_dotted_overrides,
    build_dataclass,
    choice_field,
    parse_scalar,
    section_field,
    value_field,
)
from sparsespikformer.simulator.errors import HwConfigError
from sparsespikformer.simulator.yaml_file import read_yaml

CONFIG_VERSION = 1
DATAFLOWS = ("weight_stationary", "output_stationary", "input_stationary")
TIME_HANDLINGS = ("serial", "parallel")
SPARSITY_HANDLINGS = ("none", "gate", "skip")
INTEGER_INPUT_MODES = ("replay", "multiply")
RATE_INPUT_MODES = ("counts", "fraction")
SPARSE_FORMATS = ("dense", "bitmask", "csr", "rle")
TIME_LOOPS = ("layer", "network")
TIME_PLACEMENTS = ("auto", "inside_tile", "outside_folds")
LOOP_ORDERS = ("auto", "weights_outer", "inputs_outer")
LIF_FUSIONS = ("fused", "unfused")
BITS_PER_KIB = 8 * 1024


def _auto_field() -> Any:
    """Bookkeeping: which SRAM cost keys the file wrote as `auto` (resolved to numbers)."""
    return field(default=(), compare=False, metadata={"internal": True})

@dataclass(frozen=True)
class PeArrayConfig:
    """The processing-element array. Each unit retires one operation per cycle."""

    rows: int = value_field(16, POSITIVE_INT, required=True)
    cols: int = value_field(16, POSITIVE_INT, required=True)
    dataflow: str = choice_field("output_stationary", DATAFLOWS, required=True)
    # Accumulators per PE: spike, integer (replayed) and rate inputs use these.
    accumulate_units_per_pe: int = value_field(1, POSITIVE_INT)
    # Multipliers per PE: real-valued inputs (and integers under `integer_inputs: multiply`).
    # 0 = no multiplier: a real-valued MAC runs bit-serially as `real_value_bits` accumulates.
    multiply_units_per_pe: int = value_field(1, NON_NEGATIVE_INT)
    real_value_bits: int = value_field(8, POSITIVE_INT)  # width of real / rate activations
    psum_bits: int = value_field(24, POSITIVE_INT)  # width of partial sums written to the buffer
    pe_area_mm2: float | None = value_field(None, OPTIONAL_NON_NEGATIVE_FLOAT)  # one PE

    def area_mm2(self) -> float | None:
        return None if self.pe_area_mm2 is None else self.rows * self.cols * self.pe_area_mm2


@dataclass(frozen=True)
class PolicyConfig:
    """Dataflow-independent policies: time handling and sparsity handling per operand."""

    # serial: one timestep after another; parallel: one weight fetch serves all T timesteps.
    time_handling: str = choice_field("serial", TIME_HANDLINGS)
    # none: compute on zeros; gate: zeros cost no compute energy but keep their cycle;
    # skip: zeros cost neither energy nor cycles.
    input_sparsity: str = choice_field("skip", SPARSITY_HANDLINGS)  # spike, integer, rate inputs
    real_input_sparsity: str = choice_field("none", SPARSITY_HANDLINGS)  # real-valued inputs
    weight_sparsity: str = choice_field("skip", SPARSITY_HANDLINGS)  # weights and attention K / V
    # replay: an integer value v is v accumulate events; multiply: one multiplier MAC.
    integer_inputs: str = choice_field("replay", INTEGER_INPUT_MODES)
    # Replayed rate inputs (time averages r = c / T): counts: c events and one shift per
    # output; fraction: r of an accumulate (the spiking-transformer papers' SOP convention).
    rate_inputs: str = choice_field("counts", RATE_INPUT_MODES)


@dataclass(frozen=True)
class NeuronUnitConfig:
    """LIF neuron units: membrane update, threshold compare, reset."""

    count: int = value_field(16, POSITIVE_INT)
    updates_per_cycle: int = value_field(1, POSITIVE_INT)  # per unit
    update_pj: float = value_field(0.13, NON_NEGATIVE_FLOAT, required=True)
    spike_pj: float = value_field(0.0, NON_NEGATIVE_FLOAT)  # extra energy per output spike
    membrane_bits: int = value_field(16, POSITIVE_INT)
    unit_area_mm2: float | None = value_field(None, OPTIONAL_NON_NEGATIVE_FLOAT)  # one unit

    def area_mm2(self) -> float | None:
        return None if self.unit_area_mm2 is None else self.count * self.unit_area_mm2


@dataclass(frozen=True)
class WeightMemoryConfig:
    """On-chip sparse weight memory. Energies are per access of one `word_bits` word."""

    format: str = choice_field("bitmask", SPARSE_FORMATS, required=True)
    value_bits: int = value_field(8, POSITIVE_INT)
    # csr: column index and row pointer width; rle: run-length field width; unused otherwise.
    index_bits: int = value_field(8, POSITIVE_INT)
    size_kib: float = value_field(256.0, POSITIVE_FLOAT, required=True)
    banks: int = value_field(4, POSITIVE_INT)
    word_bits: int = value_field(256, POSITIVE_INT)
    # Per word access, pJ; `auto`: from the technology's SRAM table (sram_table.py).
    read_pj: float = value_field(124.61, COST_OR_AUTO, required=True)
    write_pj: float = value_field(118.03, COST_OR_AUTO, required=True)
    leakage_mw: float = value_field(0.0, COST_OR_AUTO)  # the whole memory's static power
    area_mm2_per_kib: float | None = value_field(None, OPTIONAL_COST_OR_AUTO)
    auto: tuple[str, ...] = _auto_field()

    def area_mm2(self) -> float | None:
        return None if self.area_mm2_per_kib is None else self.size_kib * self.area_mm2_per_kib


@dataclass(frozen=True)
class BufferConfig:
    """An on-chip SRAM buffer (spike, membrane or global). Energies per `word_bits` access."""

    size_kib: float = value_field(64.0, POSITIVE_FLOAT, required=True)
    banks: int = value_field(2, POSITIVE_INT)
    word_bits: int = value_field(64, POSITIVE_INT)
    # Per word access, pJ; `auto`: from the technology's SRAM table (sram_table.py).
    read_pj: float = value_field(25.87, COST_OR_AUTO, required=True)
    write_pj: float = value_field(19.65, COST_OR_AUTO, required=True)
    leakage_mw: float = value_field(0.0, COST_OR_AUTO)  # the whole buffer's static power
    area_mm2_per_kib: float | None = value_field(None, OPTIONAL_COST_OR_AUTO)
    auto: tuple[str, ...] = _auto_field()

    def area_mm2(self) -> float | None:
        return None if self.area_mm2_per_kib is None else self.size_kib * self.area_mm2_per_kib


def _global_buffer_default() -> BufferConfig:
    return BufferConfig(size_kib=256.0, banks=4, word_bits=256, read_pj=124.61, write_pj=118.03)


@dataclass(frozen=True)
class DramConfig:
    """Off-chip memory. Bandwidth in gigabits per second."""

    bandwidth_gbps: float = value_field(204.8, POSITIVE_FLOAT, required=True)
    energy_pj_per_bit: float = value_field(8.0, NON_NEGATIVE_FLOAT, required=True)


@dataclass(frozen=True)
class SelectorUnitConfig:
    """Token-selector unit: top-k over token scores with parallel comparators."""

    comparators: int = value_field(16, POSITIVE_INT)
    # A parameter-free scorer (firing rate) sums each token's input values: one add each.
    adders: int = value_field(16, POSITIVE_INT)
    add_pj: float = value_field(0.03, NON_NEGATIVE_FLOAT)
    comparator_area_mm2: float | None = value_field(None, OPTIONAL_NON_NEGATIVE_FLOAT)

    def area_mm2(self) -> float | None:
        if self.comparator_area_mm2 is None:
            return None
        return self.comparators * self.comparator_area_mm2


@dataclass(frozen=True)
class EnergyConfig:
    """Per-action compute energies."""

    accumulate_pj: float = value_field(0.03, NON_NEGATIVE_FLOAT, required=True)
    multiply_accumulate_pj: float = value_field(0.23, NON_NEGATIVE_FLOAT, required=True)
    compare_pj: float = value_field(0.03, NON_NEGATIVE_FLOAT, required=True)
    gated_op_pj: float = value_field(0.0, NON_NEGATIVE_FLOAT)  # a gated (zero) operand's cycle
    # a spike added into the residual stream (a small integer): Horowitz 45 nm 8b add
    residual_add_pj: float = value_field(0.03, NON_NEGATIVE_FLOAT)


@dataclass(frozen=True)
class ScheduleConfig:
    """The loop nest the engine derives traffic, working sets and timing from (docs/schedule.md)."""

    # Serial time handling only: `layer` runs the network layer by layer, all T timesteps of a
    # layer before the next; `network` runs the whole network once per timestep (every LIF
    # layer's membranes persist across the timestep boundary).
    time_loop: str = choice_field("layer", TIME_LOOPS)
    # Under `layer`: the timestep loop inside each output tile (weights fetched once, a tile's
    # membranes live), or outside the fold loops (partial sums of one timestep live, weights
    # fetched per timestep, the layer's membranes live); `auto`: per layer, fewer DRAM bits.
    time_placement: str = choice_field("auto", TIME_PLACEMENTS)
    # Order of the two outer fold loops of each GEMM: `weights_outer` fetches each weight once
    # per run, `inputs_outer` each input once; `auto` picks per layer the one with fewer DRAM bits.
    loop_order: str = choice_field("auto", LOOP_ORDERS)
    # fused: a GEMM's sums go straight into the LIF units and the pair runs as one pipeline;
    # unfused: the sums are written to the global buffer and read back, the LIF runs after.
    lif_fusion: str = choice_field("fused", LIF_FUSIONS)
    batch: int = value_field(1, POSITIVE_INT)  # inferences per weight load (results per inference)


@dataclass(frozen=True)
class HwConfig:
    """A complete, validated accelerator description."""

    version: int = value_field(CONFIG_VERSION, POSITIVE_INT, required=True)
    name: str = value_field("", TEXT)
    description: str = value_field("", TEXT)
    clock_mhz: float = value_field(500.0, POSITIVE_FLOAT, required=True)
    leakage_mw: float = value_field(0.0, NON_NEGATIVE_FLOAT, required=True)  # logic, not SRAMs
    technology_nm: float = value_field(45.0, POSITIVE_FLOAT)  # picks the SRAM table for `auto`
    pe_array: PeArrayConfig = section_field(PeArrayConfig)
    policies: PolicyConfig = section_field(PolicyConfig)
    neuron_unit: NeuronUnitConfig = section_field(NeuronUnitConfig)
    weight_memory: WeightMemoryConfig = section_field(WeightMemoryConfig)
    spike_buffer: BufferConfig = section_field(BufferConfig)
    membrane_buffer: BufferConfig = section_field(BufferConfig)
    global_buffer: BufferConfig = section_field(BufferConfig, _global_buffer_default)
    dram: DramConfig = section_field(DramConfig)
    selector_unit: SelectorUnitConfig = section_field(SelectorUnitConfig)
    energy: EnergyConfig = section_field(EnergyConfig)
    schedule: ScheduleConfig = section_field(ScheduleConfig)
    source: str = field(default="<defaults>", compare=False)  # file it came from

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict of every value (no `source`): the resolved config, with keys the
        file wrote as `auto` written `auto` again (a changed size re-resolves them)."""
        return to_plain_dict(self)

    @cached_property
    def total_leakage_mw(self) -> float:
        """Static power of the chip: logic (`leakage_mw`) plus every SRAM's."""
        return self.leakage_mw + sum(getattr(self, name).leakage_mw for name in SRAM_SECTIONS)

    @cached_property
    def area_mm2(self) -> float:
        """Sum of the component areas given (DRAM excluded); NaN when none is given."""
        areas = [section.area_mm2() for section in _sections(self) if hasattr(section, "area_mm2")]
        given = [a for a in areas if a is not None]
        return float(sum(given)) if given else math.nan


SRAM_SECTIONS = ("weight_memory", "spike_buffer", "membrane_buffer", "global_buffer")


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
    overridden = apply_dotted_overrides(HwConfig, data, overrides or {}, source)
    version = data.get("version")
    if "version" in data and version != CONFIG_VERSION:
        raise HwConfigError(f"{source}: version: unsupported version {version!r} "
                         f"(this build reads version {CONFIG_VERSION})")
    hw = build_dataclass(HwConfig, data, source, "", overridden)
    hw = resolve_auto_costs(hw, SRAM_SECTIONS, source)
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
    return key, parse_scalar(value.strip(), f"--set {key}")


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
    "SelectorUnitConfig", "EnergyConfig", "ScheduleConfig", "SRAM_SECTIONS", "TIME_LOOPS",
    "TIME_PLACEMENTS",
    "LOOP_ORDERS", "LIF_FUSIONS", "load_hwconfig", "hwconfig_from_dict",
    "apply_overrides", "parse_override",
]
