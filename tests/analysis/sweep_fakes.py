"""Helpers for the sweep tests: tiny layer shapes, spec files and fake evaluators.

The fake evaluator's "energy" and "latency" are closed-form functions of the overrides
and the trace, so tests know every expected value without the simulator. It lives in an
importable module (not a test file) so process-pool workers can import it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import yaml

from sparsespikformer.analysis.sweeps.run import Evaluator

FAKE_BASES: dict[str, dict[str, Any]] = {
    "tiny_a": {"pe_array": {"rows": 16, "cols": 16}, "clock_mhz": 500.0, "leakage_mw": 0.0,
               "weight_memory": {"size_kib": 256}},
    "tiny_b": {"pe_array": {"rows": 8, "cols": 32}, "clock_mhz": 250.0, "leakage_mw": 0.0,
               "weight_memory": {"size_kib": 64}},
}


def tiny_layer_shapes() -> list[dict[str, Any]]:
    """A real-input conv, then two spiking linears in blocks 0 and 1 (64 tokens)."""
    rows = [dict(layer="conv0", kind="conv", block=-1, tokens_in=64, tokens_out=64,
                 in_numel=3 * 64, out_numel=16 * 64, gemm_m=64, gemm_n=16, gemm_k=27,
                 gemm_groups=1, weight_numel=16 * 27, in_value_kind="real")]
    for block in range(2):
        rows.append(dict(layer=f"block.{block}.fc", kind="linear", block=block, tokens_in=64,
                         tokens_out=64, in_numel=64 * 16, out_numel=64 * 16, gemm_m=64,
                         gemm_n=16, gemm_k=16, gemm_groups=1, weight_numel=256,
                         in_value_kind="spike"))
    return rows


def write_spec(directory: Path, **changes: Any) -> Path:
    """A small valid spec (2 bases x 3 x 2 axis values x 2 traces = 24 points), changed."""
    spec: dict[str, Any] = {
        "version": 1,
        "name": "tiny",
        "base": ["tiny_a", "tiny_b"],
        "mode": "grid",
        "axes": {"pe_array.rows": [8, 16, 32], "clock_mhz": [100, 200]},
        "traces": [
            {"name": "dense", "accuracy": 0.9,
             "synthetic": {"layer_shapes": tiny_layer_shapes(), "firing_rate": 0.2}},
            {"name": "sparse", "accuracy": 0.85,
             "synthetic": {"layer_shapes": tiny_layer_shapes(), "firing_rate": 0.2,
                           "weight_density": 0.25}},
        ],
    }
    for key, value in changes.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    path = directory / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- fake evaluator


def load_base(name: str) -> dict[str, Any]:
    if name not in FAKE_BASES:
        raise ValueError(f"{name}: no such fake base")
    return copy.deepcopy(FAKE_BASES[name])


def base_identity(base: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(base, sort_keys=True).encode()).hexdigest()


def base_value(base: dict[str, Any], dotted: str) -> Any:
    node: Any = base
    for part in dotted.split("."):
        node = node[part]
    return node


def check_axis_key(base: dict[str, Any], dotted: str) -> None:
    try:
        base_value(base, dotted)
    except (KeyError, TypeError):
        raise ValueError(f"{dotted}: unknown key") from None


def hardware_values(base: dict[str, Any]) -> dict[str, Any]:
    return base


def normalise_value(base: dict[str, Any], dotted: str, value: Any) -> Any:
    """Like the config: a float key holds a float (500 -> 500.0); other values as given."""
    current = base_value(base, dotted)
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def resolved(base: dict[str, Any], overrides) -> dict[str, Any]:
    config = copy.deepcopy(base)
    for dotted, value in overrides:
        *parents, last = dotted.split(".")
        node = config
        for part in parents:
            node = node[part]
        node[last] = value
    return config


def fake_metrics(trace, config: dict[str, Any]) -> dict[str, Any]:
    """energy = dense MACs x weight density / PEs + memory KiB; latency = MACs / (PEs x f)."""
    pes = config["pe_array"]["rows"] * config["pe_array"]["cols"]
    macs = float(trace.layers["dense_macs"].sum())
    density = 1.0 - float(trace.manifest["weight_sparsity"])
    return {
        "energy_pj": macs * density / pes + config["weight_memory"]["size_kib"],
        "latency_s": macs / (pes * config["clock_mhz"] * 1e6),
        "area_mm2": 0.01 * pes,
        "status": "ok",
        "error": "",
    }


def evaluate_chunk(context, task) -> list[dict[str, Any]]:
    trace_name, points = task
    trace = context.traces[trace_name]
    return [{"key": key, **fake_metrics(trace, resolved(context.bases[base], overrides))}
            for key, base, overrides in points]


INTERRUPT = {"after": None, "count": 0}


def interrupting_evaluate_chunk(context, task) -> list[dict[str, Any]]:
    """Like `evaluate_chunk`, but Ctrl-C arrives after INTERRUPT['after'] points (in-process)."""
    trace_name, points = task
    rows = []
    for point in points:
        if INTERRUPT["after"] is not None and INTERRUPT["count"] >= INTERRUPT["after"]:
            raise KeyboardInterrupt
        INTERRUPT["count"] += 1
        rows.extend(evaluate_chunk(context, (trace_name, (point,))))
    return rows


def slow_evaluate_chunk(context, task) -> list[dict[str, Any]]:
    """20 ms per point, so a test can kill the sweep part-way; logs the worker's pid to
    $SWEEP_PID_LOG when set."""
    log = os.environ.get("SWEEP_PID_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")
    time.sleep(0.02 * len(task[1]))
    return evaluate_chunk(context, task)


_FAKE_BASES = {"load_base": load_base, "base_identity": base_identity, "base_value": base_value,
               "check_axis_key": check_axis_key, "hardware_values": hardware_values,
               "normalise_value": normalise_value}
FAKE = Evaluator(**_FAKE_BASES, evaluate_chunk=evaluate_chunk)
INTERRUPTING = Evaluator(**_FAKE_BASES, evaluate_chunk=interrupting_evaluate_chunk)
SLOW = Evaluator(**_FAKE_BASES, evaluate_chunk=slow_evaluate_chunk)
