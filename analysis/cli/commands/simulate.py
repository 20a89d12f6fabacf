"""`sparsespikformer simulate TRACE --hw NAME|PATH`: one trace on one accelerator config."""

from __future__ import annotations

import argparse
import json
import math

from sparsespikformer.analysis.cli.arg_types import positive_int

HELP = "simulate a recorded trace on a hardware config: energy, latency, EDP, GFLOPs"
FORMATS = ("table", "csv", "json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace", help="trace directory (written by `sparsespikformer trace`)")
    parser.add_argument("--hw", default="sparse_int8_45nm", metavar="NAME|PATH",
                        help="bundled hardware config name or a YAML file "
                             "(default: sparse_int8_45nm)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a dotted config key, e.g. --set pe_array.rows=32 "
                             "(repeatable)")
    parser.add_argument("--batch", type=positive_int, default=None, metavar="N",
                        help="inferences per weight load (schedule.batch; results stay per "
                             "inference, cold-start energy beside them)")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="output format (default: table)")
    detail = parser.add_mutually_exclusive_group()
    detail.add_argument("--per-layer", action="store_true",
                        help="one row per layer: energy, cycles, compute/memory bound")
    detail.add_argument("--breakdown", action="store_true",
                        help="one row per layer x component x action, and the weight "
                             "residency plan (the weight memory's stored_bits and "
                             "resident_bits rows; json: a `residency` table)")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="write to FILE (atomically) instead of standard output "
                             "('-' means standard output)")


def run(args: argparse.Namespace) -> int:
    from sparsespikformer.simulator import Trace, load_hwconfig, parse_override, simulate
    from sparsespikformer.simulator.atomic import atomic_write_text

    overrides = dict(parse_override(text) for text in args.overrides)
    if args.batch is not None:
        overrides["schedule.batch"] = args.batch
    hw = load_hwconfig(args.hw, overrides)
    trace = Trace.load(args.trace)
    result = simulate(trace, hw)
    table = result.per_layer if args.per_layer else result.layers if args.breakdown else None
    text = render(result, table, args.format, residency=args.breakdown)
    if args.output and args.output != "-":
        atomic_write_text(args.output, text)
    else:
        print(text, end="")
    return 0


def render(result, table, fmt: str, *, residency: bool = False) -> str:
    """Totals (or a per-layer table when given) as text in `fmt`; with `residency` the
    weight residency plan too (json: its own table; table: printed after the breakdown;
    csv: already in the breakdown as the weight memory's stored/resident bits rows)."""
    if fmt == "json":
        data = {"hw": result.hw_name, "trace": result.trace_origin,
                "totals": _finite_or_none(result.totals)}
        if table is not None:
            data["layers"] = [_finite_or_none(row) for row in table.to_dict(orient="records")]
        if residency:
            data["residency"] = result.residency.to_dict(orient="records")
        return json.dumps(data, indent=2) + "\n"
    if table is not None:
        if fmt == "csv":
            return table.to_csv(index=False, lineterminator="\n")
        text = table.to_string(index=False) + "\n"
        if residency and not result.residency.empty:
            text += "\nweight residency (bits):\n" + result.residency.to_string(index=False) + "\n"
        return text
    if fmt == "csv":
        keys = list(result.totals)
        return ",".join(keys) + "\n" + ",".join(repr(float(result.totals[k])) for k in keys) + "\n"
    width = max(len(key) for key in result.totals)
    lines = [f"hw: {result.hw_name}", f"trace: {result.trace_origin}"]
    lines += [f"{key:<{width}}  {value:.6g}" for key, value in result.totals.items()]
    return "\n".join(lines) + "\n"


def _finite_or_none(mapping: dict) -> dict:
    """JSON has no NaN: an unknown value (e.g. area with no areas given) becomes null."""
    out = {}
    for key, value in mapping.items():
        if hasattr(value, "item"):
            value = value.item()
        out[key] = None if isinstance(value, float) and not math.isfinite(value) else value
    return out
