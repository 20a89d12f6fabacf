"""Cycle-approximate neuromorphic accelerator model (numpy and pandas only, never torch)."""

from .trace import SCHEMA_VERSION, Trace, TraceError, gemm_trace, synthetic_trace

__all__ = ["SCHEMA_VERSION", "Trace", "TraceError", "gemm_trace", "synthetic_trace"]
