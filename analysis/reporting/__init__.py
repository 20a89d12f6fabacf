"""Reporting: reading result files (`result_files`), preparing plot data apart from drawing it
(`plot_data`), drawing with headless matplotlib (`plots`) and the self-contained HTML report
(`report`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sparsespikformer.simulator.lazy import lazy_exports

_EXPORTS = {
    "build_report": "report",
    "read_table": "result_files",
}

if TYPE_CHECKING:
    from sparsespikformer.analysis.reporting.report import build_report
    from sparsespikformer.analysis.reporting.result_files import read_table

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
