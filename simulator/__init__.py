"""Cycle-approximate neuromorphic accelerator model: a trace plus a hw config in, energy and
latency out. numpy, pandas and yaml only (never torch).

Public API: the trace contract (`Trace`, `SCHEMA_VERSION`), traces that are not recorded
(`synthetic_trace`, `gemm_trace`), hardware configs (`load_hwconfig`, `HwConfig`,
`apply_overrides`, `parse_override`), the engine (`simulate` -> `SimResult`), token counts
after selectors (`kept_token_count`) and the input-error types (`InputError` and its kinds).
"""

from sparsespikformer.simulator.config import (
    HwConfig,
    apply_overrides,
    load_hwconfig,
    parse_override,
)
from sparsespikformer.simulator.engine import simulate
from sparsespikformer.simulator.errors import (
    CheckpointError,
    DataError,
    HwConfigError,
    InputError,
    SweepSpecError,
    TraceError,
)
from sparsespikformer.simulator.result import SimResult
from sparsespikformer.simulator.synthetic import gemm_trace, synthetic_trace
from sparsespikformer.simulator.tokens import kept_token_count
from sparsespikformer.simulator.trace import SCHEMA_VERSION, Trace

__all__ = [
    "SCHEMA_VERSION", "Trace", "TraceError", "gemm_trace", "synthetic_trace",
    "HwConfig", "load_hwconfig", "apply_overrides", "parse_override",
    "simulate", "SimResult", "kept_token_count",
    "InputError", "TraceError", "HwConfigError", "SweepSpecError", "CheckpointError",
    "DataError",
]
