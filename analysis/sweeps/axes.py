"""A sweep spec's `axes`: dotted hw-config keys and the values each takes, written as a list,
`{range: [start, stop, step]}` (stop included when it lands) or `{log2: [lo, hi]}` (powers of
two, both ends included)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparsespikformer.simulator.checks import is_number
from sparsespikformer.simulator.errors import SweepSpecError

_MAX_AXIS_VALUES = 100_000

Scalar = int | float | str | bool


@dataclass(frozen=True)
class Axis:
    """One swept hw-config key and its values, in the order the spec gives them."""

    key: str
    values: tuple[Scalar, ...]


def parse_axes(value: Any, source: Path) -> tuple[Axis, ...]:
    if not isinstance(value, Mapping):
        raise SweepSpecError(f"{source}: axes: expected a mapping of dotted keys to values")
    axes = []
    for key, spec in value.items():
        where = f"{source}: axes.{key}"
        if not isinstance(key, str) or not all(part.isidentifier() for part in key.split(".")):
            raise SweepSpecError(f"{where}: a key must be a dotted name such as pe_array.rows")
        values = _axis_values(spec, where)
        _check_distinct(values, where)
        axes.append(Axis(key=key, values=tuple(values)))
    return tuple(axes)


def value_identity(value: Scalar) -> tuple[str, Scalar]:
    """Values equal as numbers are one value (500 and 500.0); a boolean is never a number
    (`True` is not 1, though Python says they are equal)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", value)  # int/float equality and hashing agree in Python
    return ("text", value)


def _check_distinct(values: list[Scalar], where: str) -> None:
    first: dict[tuple[str, Scalar], Scalar] = {}
    for value in values:
        identity = value_identity(value)
        if identity in first:
            same = "" if repr(first[identity]) == repr(value) else \
                f" ({first[identity]!r} and {value!r} are the same number)"
            raise SweepSpecError(f"{where}: repeated values: {value!r}{same}")
        first[identity] = value


def _axis_values(spec: Any, where: str) -> list[Scalar]:
    if isinstance(spec, list):
        if not spec:
            raise SweepSpecError(f"{where}: empty list")
        for value in spec:
            if not isinstance(value, (int, float, str, bool)) or _is_nan(value):
                raise SweepSpecError(f"{where}: values must be numbers, strings or booleans, "
                                 f"got {value!r}")
        return list(spec)
    if isinstance(spec, Mapping) and len(spec) == 1:
        (kind, args), = spec.items()
        if kind == "range":
            return _range_values(args, where)
        if kind == "log2":
            return _log2_values(args, where)
    raise SweepSpecError(f"{where}: expected a list, {{range: [start, stop, step]}} or "
                     f"{{log2: [lo, hi]}}")


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _numbers(args: Any, count: int, where: str) -> list[int | float]:
    ok = isinstance(args, list) and len(args) == count and all(map(is_number, args))
    if not ok:
        raise SweepSpecError(f"{where}: expected a list of {count} finite numbers, got {args!r}")
    return args


def _range_values(args: Any, where: str) -> list[int | float]:
    start, stop, step = _numbers(args, 3, f"{where}.range", )
    if step <= 0 or stop < start:
        raise SweepSpecError(f"{where}.range: need step > 0 and stop >= start, got {args!r}")
    count = math.floor((stop - start) / step + 1e-9) + 1  # stop is included when it lands
    if count > _MAX_AXIS_VALUES:
        raise SweepSpecError(f"{where}.range: {count} values, more than {_MAX_AXIS_VALUES}")
    if all(isinstance(a, int) for a in args):
        return [start + i * step for i in range(count)]
    # 12 significant digits: 0.1 * 3 is 0.3 in the spec, not 0.30000000000000004
    return [float(f"{start + i * step:.12g}") for i in range(count)]


def _log2_values(args: Any, where: str) -> list[int]:
    low, high = _numbers(args, 2, f"{where}.log2")
    if low <= 0 or high < low:
        raise SweepSpecError(f"{where}.log2: need 0 < lo <= hi, got {args!r}")
    first, last = math.ceil(math.log2(low) - 1e-12), math.floor(math.log2(high) + 1e-12)
    if first > last:
        raise SweepSpecError(f"{where}.log2: no power of two between {low} and {high}")
    if first < 0:
        raise SweepSpecError(f"{where}.log2: powers of two below 1 are not supported")
    return [2 ** e for e in range(first, last + 1)]


