"""Sweep specs: parse and validate the YAML, expand it into points.

```yaml
version: 1
name: pe_memory_sweep                 # optional (default: the file name)
description: PE array size against weight memory size
base: sparse_int8_45nm                # a bundled hw config name or a YAML path; or a list
mode: grid                            # grid (every combination) or random
# samples: 300                        # random: hardware points drawn (per trace), no repeats
# seed: 0                             # random: the sampling seed
axes:                                 # dotted hw-config keys
  pe_array.rows: [8, 16, 32, 64]      # a list of values
  pe_array.cols: {log2: [8, 64]}      # powers of two from 8 to 64, both included
  clock_mhz: {range: [200, 800, 200]} # start, stop, step: 200, 400, 600, 800 (stop included)
constraints:                          # points where any is false are skipped
  - pe_array.rows * pe_array.cols <= 2048
# batch: 8                            # inferences per weight load (or a list: an axis)
traces: [...]                         # model variants, see traces_for_sweep.py
```

`batch: N` (or a list) is the axis `schedule.batch`: N inferences share each weight load, the
results stay per inference (docs/schedule.md).

A point is (base config, axis values, trace). Grid mode takes every combination of base and
axis values that passes the constraints; random mode draws `samples` distinct ones with
`seed`. Each is crossed with every trace, trace-major, so consecutive points share a trace.
Constraints read axis values by their dotted key; a name that is not an axis is looked up in
each base config (so `pe_array.rows * pe_array.cols <= 1024` works when only rows is swept).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from sparsespikformer.analysis.sweeps.axes import Axis, Scalar, parse_axes
from sparsespikformer.analysis.sweeps.constraints import Constraint, parse_constraint
from sparsespikformer.analysis.sweeps.traces import TraceEntry, parse_trace_entries
from sparsespikformer.simulator.checks import check_positive_int, check_seed, check_text
from sparsespikformer.simulator.errors import InputError, SweepSpecError
from sparsespikformer.simulator.yaml_file import read_yaml

SPEC_VERSION = 1
MODES = ("grid", "random")
_TOP_KEYS = {"version", "name", "description", "base", "mode", "samples", "seed", "axes",
             "constraints", "traces", "batch"}
BATCH_AXIS = "schedule.batch"
_GRID_LIMIT = 5_000_000  # candidates materialised at once; beyond this use mode: random
_ENUMERATE_LIMIT = 1_000_000  # random mode enumerates every candidate up to this size



@dataclass(frozen=True)
class SweepSpec:
    source: Path
    name: str
    description: str
    bases: tuple[str, ...]  # as written: a bundled name, or a path resolved against the spec
    axes: tuple[Axis, ...]
    mode: str
    samples: int | None
    seed: int
    constraints: tuple[Constraint, ...]
    traces: tuple[TraceEntry, ...]

    @property
    def axis_keys(self) -> tuple[str, ...]:
        return tuple(axis.key for axis in self.axes)


@dataclass(frozen=True)
class SweepPoint:
    """One evaluation: a base config with overrides, on one trace."""

    trace: str
    base: str
    overrides: tuple[tuple[str, Scalar], ...]  # in axis order

    def overrides_dict(self) -> dict[str, Scalar]:
        return dict(self.overrides)


# ----------------------------------------------------------------------------- loading


def bundled_sweeps_dir() -> Path:
    return Path(str(resources.files("sparsespikformer.hwconfigs"))) / "sweeps"


def resolve_spec_path(name_or_path: str | Path) -> Path:
    """A path as given, or the name of a bundled spec (`pe_memory_sweep`)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    bundled = bundled_sweeps_dir() / f"{Path(str(name_or_path)).stem}.yaml"
    if path.suffix == "" and bundled.is_file():
        return bundled
    raise FileNotFoundError(f"{name_or_path}: sweep spec not found (neither a file nor a "
                            f"bundled spec in {bundled_sweeps_dir()})")


def load_sweep_spec(name_or_path: str | Path) -> SweepSpec:
    path = resolve_spec_path(name_or_path)
    return parse_sweep_spec(read_yaml(path), path)


def parse_sweep_spec(data: Any, source: Path) -> SweepSpec:
    """Validate a parsed spec; every error names `source` and the dotted key at fault."""
    source = Path(source)
    if not isinstance(data, Mapping):
        raise SweepSpecError(f"{source}: a sweep spec must be a YAML mapping")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise SweepSpecError(f"{source}: {unknown[0]}: unknown key (allowed: {sorted(_TOP_KEYS)})")
    if data.get("version") != SPEC_VERSION:
        raise SweepSpecError(f"{source}: version: expected {SPEC_VERSION}, "
                         f"got {data.get('version')!r}")
    mode = data.get("mode", "grid")
    if mode not in MODES:
        raise SweepSpecError(f"{source}: mode: expected one of {MODES}, got {mode!r}")
    samples, seed = _parse_sampling(data, mode, source)
    axes = parse_axes(_with_batch_axis(data, source), source)
    constraints = _parse_constraints(data.get("constraints", []), source)
    return SweepSpec(
        source=source,
        name=_text(data.get("name", source.stem), source, "name"),
        description=_text(data.get("description", ""), source, "description", allow_empty=True),
        bases=_parse_bases(data.get("base"), source),
        axes=axes,
        mode=mode,
        samples=samples,
        seed=seed,
        constraints=constraints,
        traces=parse_trace_entries(data.get("traces"), source),
    )


def _with_batch_axis(data: Mapping[str, Any], source: Path) -> Any:
    """The axes, plus `batch` as the axis `schedule.batch` (one value or a list)."""
    axes = data.get("axes", {})
    if "batch" not in data:
        return axes
    if not isinstance(axes, Mapping):
        return axes  # parse_axes names the error
    if BATCH_AXIS in axes:
        raise SweepSpecError(f"{source}: batch: give either `batch` or the axis {BATCH_AXIS}")
    batch = data["batch"]
    return {**axes, BATCH_AXIS: batch if isinstance(batch, list) else [batch]}


def _text(value: Any, source: Path, key: str, *, allow_empty: bool = False) -> str:
    return check_text(value, f"{source}: {key}", allow_empty=allow_empty,
                      error=SweepSpecError).strip()


def _parse_sampling(data: Mapping[str, Any], mode: str, source: Path):
    samples, seed = data.get("samples"), data.get("seed", 0)
    if mode == "random":
        check_positive_int(samples, f"{source}: samples (random mode)", error=SweepSpecError)
    elif samples is not None:
        raise SweepSpecError(f"{source}: samples: only meaningful with mode: random")
    check_seed(seed, f"{source}: seed", error=SweepSpecError)
    return samples, seed


def _parse_bases(value: Any, source: Path) -> tuple[str, ...]:
    entries = value if isinstance(value, list) else [value]
    if not entries or value is None:
        raise SweepSpecError(f"{source}: base: expected a hw config name or path, or a list")
    bases = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, str) or not entry.strip():
            raise SweepSpecError(f"{source}: base[{index}]: expected a hw config name or path")
        bases.append(_resolve_base(entry.strip(), source))
    if len(set(bases)) != len(bases):
        raise SweepSpecError(f"{source}: base: listed twice")
    return tuple(bases)


def _resolve_base(entry: str, source: Path) -> str:
    """A path-like base is taken relative to the spec file; a bare name stays a name."""
    looks_like_path = "/" in entry or entry.endswith((".yaml", ".yml"))
    if not looks_like_path or Path(entry).is_absolute():
        return entry
    return str(source.parent / entry)


def _parse_constraints(value: Any, source: Path) -> tuple[Constraint, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SweepSpecError(f"{source}: constraints: expected a list of expressions")
    parsed = []
    for index, text in enumerate(value):
        try:
            parsed.append(parse_constraint(text))
        except InputError as err:
            raise SweepSpecError(f"{source}: constraints[{index}]: {err}") from None
    return tuple(parsed)


# ----------------------------------------------------------------------------- expansion

BaseValueLookup = Callable[[str, str], Scalar]  # (base, dotted key) -> value in that base


def expand_points(spec: SweepSpec, base_value: BaseValueLookup | None = None
                  ) -> list[SweepPoint]:
    """Every point of the sweep, trace-major, deterministic for a given spec.

    `base_value(base, key)` supplies constraint names that are not axes; it is only called
    when a constraint needs one, so pure-axis specs expand without any hw config.
    """
    combos = hardware_combinations(spec, base_value)
    points = []
    for trace in spec.traces:
        for base_index, value_indices in combos:
            overrides = tuple((axis.key, axis.values[i])
                              for axis, i in zip(spec.axes, value_indices, strict=True))
            points.append(SweepPoint(trace=trace.name, base=spec.bases[base_index],
                                     overrides=overrides))
    return points


def hardware_combinations(spec: SweepSpec, base_value: BaseValueLookup | None = None
                          ) -> list[tuple[int, tuple[int, ...]]]:
    """(base index, value index per axis) of every hardware point, in sweep order."""
    sizes = [len(spec.bases)] + [len(axis.values) for axis in spec.axes]
    total = math.prod(sizes)
    constants = _base_constants(spec, base_value)
    if spec.mode == "grid":
        if total > _GRID_LIMIT:
            raise SweepSpecError(f"{spec.source}: axes: the grid has {total:,} points, more than "
                             f"{_GRID_LIMIT:,}; use mode: random with samples")
        candidates = _all_candidates(sizes)
        chosen = candidates[_valid(spec, candidates, constants)]
        if not len(chosen):
            raise _empty_design_space(spec, total)
    elif total <= _ENUMERATE_LIMIT:
        candidates = _all_candidates(sizes)
        valid = np.flatnonzero(_valid(spec, candidates, constants))
        if not valid.size:
            raise _empty_design_space(spec, total)
        if valid.size < spec.samples:
            raise SweepSpecError(f"{spec.source}: samples: {spec.samples} requested but only "
                             f"{valid.size} distinct points satisfy the constraints")
        rng = np.random.default_rng(spec.seed)
        chosen = candidates[rng.choice(valid, size=spec.samples, replace=False)]
    else:
        chosen = _rejection_sample(spec, sizes, constants)
    return [(int(row[0]), tuple(int(i) for i in row[1:])) for row in chosen]


def _all_candidates(sizes: Sequence[int]) -> np.ndarray:
    """(total, len(sizes)) index array, last axis fastest: itertools.product order."""
    return np.indices(sizes).reshape(len(sizes), -1).T


def _rejection_sample(spec: SweepSpec, sizes: Sequence[int],
                      constants: Mapping[str, np.ndarray]) -> np.ndarray:
    rng = np.random.default_rng(spec.seed)
    seen: dict[tuple[int, ...], None] = {}
    for _ in range(100):
        batch = np.stack([rng.integers(0, size, 4 * spec.samples) for size in sizes], axis=1)
        for row in batch[_valid(spec, batch, constants)]:
            seen.setdefault(tuple(int(i) for i in row), None)
            if len(seen) == spec.samples:
                return np.array(list(seen), dtype=np.int64)
    if not seen:
        raise _empty_design_space(spec, math.prod(sizes), drawn=400 * spec.samples)
    raise SweepSpecError(f"{spec.source}: samples: found only {len(seen)} distinct points that "
                     f"satisfy the constraints; loosen them or ask for fewer samples")


def _empty_design_space(spec: SweepSpec, total: int, drawn: int | None = None
                        ) -> SweepSpecError:
    """One line: the constraints leave nothing to run (in every mode and executor)."""
    searched = f"none of {drawn:,} random draws from" if drawn else "no point of"
    return SweepSpecError(f"{spec.source}: constraints: {searched} the {total:,}-point design "
                          f"space satisfies them ({'; '.join(c.text for c in spec.constraints)})")


def _base_constants(spec: SweepSpec, base_value: BaseValueLookup | None
                    ) -> dict[str, np.ndarray]:
    """Per-base values of constraint names that are not axes, indexed by base index."""
    names = {name for c in spec.constraints for name in c.names} - set(spec.axis_keys)
    constants = {}
    for name in sorted(names):
        if base_value is None:
            raise SweepSpecError(f"{spec.source}: constraints: {name!r} is not a swept axis")
        try:
            values = [base_value(base, name) for base in spec.bases]
        except (KeyError, AttributeError, ValueError) as err:
            raise SweepSpecError(f"{spec.source}: constraints: {name!r} is neither a swept axis "
                             f"nor a key of the base config ({err})") from None
        constants[name] = _as_array(values)
    return constants


def _valid(spec: SweepSpec, candidates: np.ndarray,
           constants: Mapping[str, np.ndarray]) -> np.ndarray:
    mask = np.ones(len(candidates), dtype=bool)
    if not spec.constraints or not len(candidates):
        return mask
    values = {name: column[candidates[:, 0]] for name, column in constants.items()}
    for position, axis in enumerate(spec.axes, start=1):
        values[axis.key] = _as_array(axis.values)[candidates[:, position]]
    for constraint in spec.constraints:
        try:
            result = constraint.evaluate(values)
        except (TypeError, ValueError) as err:
            raise SweepSpecError(
                f"{spec.source}: constraints: {constraint.text!r}: {err}") from None
        mask &= np.broadcast_to(result, mask.shape)
    return mask


def _as_array(values: Sequence[Scalar]) -> np.ndarray:
    """Numeric values as a numeric array (so arithmetic works), anything else as objects."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.float64 if any(isinstance(v, float) for v in values)
                          else np.int64)
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array


def count_points(spec: SweepSpec, base_value: BaseValueLookup | None = None) -> int:
    return len(hardware_combinations(spec, base_value)) * len(spec.traces)


__all__ = ["SPEC_VERSION", "Axis", "SweepSpec", "SweepPoint", "load_sweep_spec",
           "parse_sweep_spec", "resolve_spec_path", "bundled_sweeps_dir", "expand_points",
           "hardware_combinations", "count_points"]
