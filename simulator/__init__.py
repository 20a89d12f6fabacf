"""Cycle-approximate neuromorphic accelerator model: a trace plus a hw config in, energy and
latency out. numpy, pandas and yaml only (never torch)."""

from .trace import SCHEMA_VERSION, Trace, TraceError, gemm_trace, synthetic_trace
from .config import HwConfig, apply_overrides, load_hwconfig, parse_override
from .engine import simulate
from .result import SimResult

__all__ = [
    "SCHEMA_VERSION", "Trace", "TraceError", "gemm_trace", "synthetic_trace",
    "HwConfig", "load_hwconfig", "apply_overrides", "parse_override",
    "simulate", "SimResult",
]
