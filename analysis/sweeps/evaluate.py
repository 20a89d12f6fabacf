"""What a sweep evaluates by default: the simulator, on a chunk of points of one trace.

This module runs inside sweep workers, so it imports only the simulator (numpy, pandas,
yaml), never torch. Each base config is loaded and validated once in the parent and shipped
to the workers as a plain dict of its resolved values; a point is that dict with its dotted
overrides applied and validated again (no YAML is re-read per point).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sparsespikformer.analysis.sweeps.traces import canonical_json
from sparsespikformer.simulator.errors import InputError, SweepSpecError
from sparsespikformer.simulator.trace import Trace

# Totals every results table has, in this order (the simulator's names and units).
METRIC_COLUMNS = ("energy_pj", "latency_s", "cycles", "edp_pj_s", "area_mm2", "utilization",
                  "dense_gflops", "effective_gflops", "sops")
STATUS_OK = "ok"
STATUS_ERROR = "error"

# One point in a chunk: (key, base label, ((dotted key, value), ...)).
PointTask = tuple[str, str, tuple[tuple[str, Any], ...]]
# A chunk: every point shares the trace, so a worker looks it up once per chunk.
ChunkTask = tuple[str, tuple[PointTask, ...]]


@dataclass(frozen=True)
class SweepContext:
    """Shipped to each worker once: the resolved bases and the traces, by name."""

    bases: Mapping[str, Any]
    traces: Mapping[str, Trace]


@dataclass(frozen=True)
class ResolvedBase:
    """A validated base config as plain values, ready for per-point overrides."""

    source: str
    values: Mapping[str, Any]  # HwConfig.to_dict()


def load_base(name_or_path: str) -> ResolvedBase:
    from sparsespikformer.simulator.config import load_hwconfig

    hw = load_hwconfig(name_or_path)
    return ResolvedBase(source=hw.source, values=hw.to_dict())


def base_identity(base: ResolvedBase) -> str:
    """Content hash of the resolved values: comments and key order do not matter."""
    return hashlib.sha256(canonical_json(base.values).encode("utf-8")).hexdigest()


def base_value(base: ResolvedBase, dotted: str) -> Any:
    """The value at a dotted key of a base config (for constraints on unswept keys)."""
    node: Any = base.values
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    if isinstance(node, Mapping):
        raise KeyError(f"{dotted} is a section, not a value")
    return node


def check_axis_key(base: ResolvedBase, dotted: str) -> None:
    """Raise ValueError unless `dotted` names a value of the base config. Values are checked
    per point, since one can be valid or not depending on the others (cross-field rules)."""
    try:
        base_value(base, dotted)
    except KeyError as err:
        raise SweepSpecError(f"{base.source}: {dotted}: not a key of this config "
                         f"({err.args[0]})") from None


def hardware_values(base: ResolvedBase) -> Mapping[str, Any]:
    """The base's validated values (what a point's hardware identity starts from)."""
    return base.values


def normalise_value(base: ResolvedBase, dotted: str, value: Any) -> Any:
    """`value` at `dotted` as the validated config holds it (`clock_mhz: 500` -> 500.0, a
    string parsed as YAML); raises `HwConfigError` when the config rejects it."""
    config = resolve_config(base, ((dotted, value),))
    return base_value(ResolvedBase(source=base.source, values=config.to_dict()), dotted)


def resolve_config(base: ResolvedBase, overrides: Sequence[tuple[str, Any]]):
    from sparsespikformer.simulator.config import hwconfig_from_dict

    return hwconfig_from_dict(base.values, source=base.source, overrides=dict(overrides))


def evaluate_chunk(context: SweepContext, task: ChunkTask) -> list[dict[str, Any]]:
    """Simulate every point of a chunk; a config the simulator rejects is an error row."""
    from sparsespikformer.simulator.engine import simulate

    trace_name, points = task
    trace = context.traces[trace_name]
    rows = []
    for key, base_name, overrides in points:
        try:
            hw = resolve_config(context.bases[base_name], overrides)
            row = totals_row(simulate(trace, hw).totals)
            row.update(status=STATUS_OK, error="")
        except InputError as err:  # e.g. a combination the config's cross-checks reject
            row = {name: math.nan for name in METRIC_COLUMNS}
            row.update(status=STATUS_ERROR, error=str(err).replace("\n", " "))
        row["key"] = key
        rows.append(row)
    return rows


def totals_row(totals: Any) -> dict[str, Any]:
    """Every scalar total of a result (mapping, Series or dataclass) as plain numbers."""
    if dataclasses.is_dataclass(totals):
        totals = dataclasses.asdict(totals)
    elif hasattr(totals, "to_dict"):
        totals = totals.to_dict()
    row: dict[str, Any] = {name: math.nan for name in METRIC_COLUMNS}
    for name, value in dict(totals).items():
        if isinstance(value, bool):
            row[name] = value
        elif isinstance(value, (int, float)) or hasattr(value, "item"):
            try:
                number = value.item() if hasattr(value, "item") else value
            except ValueError:  # a non-scalar array: not a table column
                continue
            row[name] = int(number) if isinstance(number, int) else float(number)
        elif isinstance(value, str):
            row[name] = value
    return row


__all__ = ["METRIC_COLUMNS", "STATUS_OK", "STATUS_ERROR", "SweepContext", "ResolvedBase",
           "ChunkTask", "PointTask", "load_base", "base_identity", "base_value",
           "check_axis_key", "hardware_values", "normalise_value", "resolve_config",
           "evaluate_chunk", "totals_row"]
