"""Trace recording: real inputs through a real model give the per-layer spike and sparsity
trace that `sparsespikformer.simulator` reads (`record_trace`), or its shapes alone
(`layer_shapes`). The recorder's hooks, exact event counts and tensor statistics live here."""

from sparsespikformer.model.tracing.record import layer_shapes, record_trace

__all__ = ["layer_shapes", "record_trace"]
