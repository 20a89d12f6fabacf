"""Design-space sweeps: a YAML sweep spec (`spec`), its constraints, the traces it names
(`traces`), the evaluation of one point (`evaluate`), local and Dask executors, and the
resumable result store (`store`). `run_sweep` ties them together. Never imports torch unless
a spec asks for a trace recorded from a checkpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sparsespikformer.simulator.lazy import lazy_exports

_EXPORTS = {
    "run_sweep": "run",
    "plan_sweep": "run",
    "load_sweep_spec": "spec",
    "SweepSpec": "spec",
    "SweepStore": "store",
    "read_results": "store",
}

if TYPE_CHECKING:
    from sparsespikformer.analysis.sweeps.run import plan_sweep, run_sweep
    from sparsespikformer.analysis.sweeps.spec import SweepSpec, load_sweep_spec
    from sparsespikformer.analysis.sweeps.store import SweepStore, read_results

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
