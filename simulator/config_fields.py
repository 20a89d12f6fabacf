"""How config dataclasses declare their keys, and how a parsed YAML mapping becomes one.

Every field of a config dataclass carries its check in `metadata` (made with `value_field`,
`choice_field` or `section_field`), in the manner of timeloopfe/Accelergy spec classes: one
place declares each key's type, default and whether a file must give it. `build_dataclass`
turns a mapping into the dataclass, `apply_dotted_overrides` sets dotted keys (how sweeps and
`--set` change a config) and every error is one `HwConfigError` line naming the file and the
full dotted key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import field
from typing import Any

import yaml

from sparsespikformer.simulator import checks
from sparsespikformer.simulator.errors import HwConfigError

POSITIVE_INT = "positive_int"
NON_NEGATIVE_INT = "non_negative_int"
POSITIVE_FLOAT = "positive_float"
NON_NEGATIVE_FLOAT = "non_negative_float"
OPTIONAL_NON_NEGATIVE_FLOAT = "optional_non_negative_float"
TEXT = "text"
CHOICE = "choice"
# An SRAM cost: a number, or `auto` (interpolated from the technology's table: sram_table.py).
COST_OR_AUTO = "cost_or_auto"
OPTIONAL_COST_OR_AUTO = "optional_cost_or_auto"
AUTO = "auto"


def value_field(default: Any, check: str, *, required: bool = False,
                choices: tuple[str, ...] = ()) -> Any:
    """A config key: its default, its check and whether every file must give it."""
    return field(default=default,
                 metadata={"check": check, "required": required, "choices": choices})


def choice_field(default: str, choices: tuple[str, ...], *, required: bool = False) -> Any:
    return value_field(default, CHOICE, required=required, choices=choices)


def section_field(cls: type, factory: Any = None) -> Any:
    """A nested section (another config dataclass); `factory` gives its defaults."""
    return field(default_factory=factory or cls, metadata={"section": cls})


def config_fields(cls: type) -> dict[str, dataclasses.Field]:
    """The keys a file may give for `cls` (not bookkeeping fields: `source`, `auto`)."""
    return {f.name: f for f in dataclasses.fields(cls)
            if f.name != "source" and not f.metadata.get("internal")}


def parse_scalar(text: str, where: str) -> Any:
    try:
        value = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        raise HwConfigError(f"{where}: cannot parse value {text!r}") from None
    if isinstance(value, (dict, list)):
        raise HwConfigError(f"{where}: expected a single value, got {text!r}")
    return value


def apply_dotted_overrides(root: type, data: dict[str, Any], overrides: Mapping[str, Any],
                           source: str) -> set[str]:
    """Set dotted keys in `data` in place; returns the keys set, for error messages."""
    for dotted, value in overrides.items():
        if not isinstance(dotted, str) or not dotted:
            raise HwConfigError(f"{source}: override {dotted!r}: key must be a dotted string")
        parts = dotted.split(".")
        cls: type = root
        node = data
        for depth, part in enumerate(parts):
            fields = config_fields(cls)
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
                    value = parse_scalar(value, f"{source}: override {dotted}")
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


def build_dataclass(cls: type, data: Any, source: str, prefix: str, overridden: set[str],
           defaults: Any = None) -> Any:
    """`cls` from `data`; a key it omits keeps its value in `defaults` (an instance), the
    section's own default (the global buffer's differs from the other buffers')."""
    if not isinstance(data, Mapping):
        raise HwConfigError(f"{source}: {prefix.rstrip('.') or 'top level'}: must be a mapping "
                         f"of keys, got {type(data).__name__}")
    fields = config_fields(cls)
    for key in data:
        if key not in fields:
            raise HwConfigError(f"{source}: {prefix}{key}: unknown key "
                             f"(expected one of: {', '.join(fields)})")
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        dotted = f"{prefix}{name}"
        section = spec.metadata.get("section")
        if section is not None:
            values[name] = build_dataclass(section, data.get(name, {}), source, f"{dotted}.",
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
    if check == CHOICE:
        return checks.check_choice(value, meta["choices"], where, **kw)
    if check == TEXT:
        return checks.check_text(value, where, **kw)
    if check in (OPTIONAL_NON_NEGATIVE_FLOAT, OPTIONAL_COST_OR_AUTO) and value is None:
        return None
    if check in (COST_OR_AUTO, OPTIONAL_COST_OR_AUTO) and value == AUTO:
        return AUTO  # resolved from the technology's SRAM table once the section is built
    if check == POSITIVE_INT:
        return checks.check_positive_int(value, where, **kw)
    if check == NON_NEGATIVE_INT:
        return checks.check_non_negative_int(value, where, **kw)
    if isinstance(value, str):
        value = _number_from_text(value)  # YAML 1.1 reads `1e3` as text
    if check == POSITIVE_FLOAT:
        return checks.check_number(value, where, positive=True, **kw)
    if check in (COST_OR_AUTO, OPTIONAL_COST_OR_AUTO) and not checks.is_number(value):
        kw["note"] = f" (a number or {AUTO!r}){suffix}"
    return checks.check_number(value, where, minimum=0, **kw)


def _number_from_text(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


