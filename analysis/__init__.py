"""sparsespikformer.analysis: design-space exploration on top of the model and the simulator.

Public API: `run_sweep` (a resumable sweep of hardware configs x model traces),
`pareto_front` (non-dominated rows of a result table), `build_report` (one self-contained
HTML page for a run folder) and `run_demo` (the whole story on the bundled digits data).
Subpackages: `cli` (the `sparsespikformer` command line), `sweeps` (specs, constraints,
evaluation, executors, the store) and `reporting` (result files, plot data, plots, report).

Names are imported lazily, so `import sparsespikformer.analysis.cli` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sparsespikformer.simulator.lazy import lazy_exports

_EXPORTS = {
    "run_sweep": "sweeps.run",
    "pareto_front": "pareto",
    "pareto_mask": "pareto",
    "build_report": "reporting.report",
    "run_demo": "demo",
    "DemoConfig": "demo",
}

if TYPE_CHECKING:
    from sparsespikformer.analysis.demo import DemoConfig, run_demo
    from sparsespikformer.analysis.pareto import pareto_front, pareto_mask
    from sparsespikformer.analysis.reporting.report import build_report
    from sparsespikformer.analysis.sweeps.run import run_sweep

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
