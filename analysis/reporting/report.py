"""One self-contained HTML page summarising a run directory.

`build_report(run_dir, out_path)` looks for every result file it knows (`discovery.py`:
summary.json, sweep results, LTH rounds, keep-ratio tables, traces, simulator layer tables
and totals, kept-token files), draws their plots, and writes one HTML file with the
figures embedded as base64 PNG and the tables inline: no external file, script or
stylesheet, so it can be mailed or archived as is. The same run directory gives the same
bytes (no timestamps).

The page opens with the answer (`headline.py`: the co-designed model against the dense one
on every accelerator, when a summary holds that comparison), then the details, one section
per kind of result (`sections.py`, `sweep_section.py`).
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Callable
from pathlib import Path

from sparsespikformer.analysis.reporting.discovery import RunContents, relative, scan_run_dir
from sparsespikformer.analysis.reporting.headline import headline_section
from sparsespikformer.analysis.reporting.html import (
    FIGURE_FILES,
    Section,
    figure_html,
    render_page,
    table_html,
)
from sparsespikformer.analysis.reporting.result_files import read_json_object
from sparsespikformer.analysis.reporting.sections import (
    keep_ratio_section,
    kept_tokens_section,
    layer_energy_section,
    rounds_section,
    summary_section,
    totals_section,
    traces_section,
)
from sparsespikformer.analysis.reporting.sweep_section import sweep_section
from sparsespikformer.simulator.atomic import atomic_write_text
from sparsespikformer.simulator.errors import InputError

log = logging.getLogger(__name__)


def _summaries(contents: RunContents) -> list[tuple[Path, dict]]:
    found = []
    for path in contents.summaries:
        try:
            found.append((path, read_json_object(path)))
        except (InputError, OSError) as err:
            log.warning("report: %s skipped (%s)", path, err)
    return found


def _test_samples(summaries: list[tuple[Path, dict]]) -> int | None:
    """The run's test-set size, when a summary states it (for tables that do not)."""
    for _, summary in summaries:
        samples = summary.get("test_samples")
        if isinstance(samples, int) and not isinstance(samples, bool) and samples > 0:
            return samples
    return None


def build_sections(run_dir: Path, contents: RunContents) -> list[Section]:
    summaries = _summaries(contents)
    samples = _test_samples(summaries)
    makers: list[tuple[str, Callable[[], list]]] = [
        ("summaries", lambda: [s for p, data in summaries
                               if (s := headline_section(data, relative(p, run_dir)))]),
        ("summaries", lambda: [summary_section(p, run_dir) for p, _ in summaries]),
        ("totals", lambda: [totals_section(contents.totals, run_dir)]),
        ("layer_energy_tables",
         lambda: [layer_energy_section(contents.layer_energy_tables, run_dir)]),
        ("sweeps", lambda: [sweep_section(p, run_dir) for p in contents.sweeps]),
        ("rounds", lambda: [rounds_section(contents.rounds, run_dir, samples)]),
        ("keep_ratio_tables",
         lambda: [keep_ratio_section(p, run_dir, samples) for p in contents.keep_ratio_tables]),
        ("kept_tokens", lambda: [kept_tokens_section(contents.kept_tokens, run_dir)]),
        ("traces", lambda: [traces_section(contents.traces, run_dir)]),
    ]
    sections = []
    for attribute, make in makers:
        if not getattr(contents, attribute):
            continue
        try:
            sections.extend(make())
        except (InputError, OSError) as err:  # one bad file must not sink the page
            log.warning("report: %s skipped (%s)", attribute, err)
            sections.append(Section(attribute.replace("_", " ").capitalize(),
                                    f"<p class='note'>Could not be shown: "
                                    f"{html.escape(str(err))}</p>"))
    return sections


def report_html(run_dir: str | os.PathLike, *, title: str | None = None,
                figures_dir: str | os.PathLike | None = None) -> str:
    """The HTML page of `run_dir` (see `build_report`)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: run directory not found")
    contents = scan_run_dir(run_dir)
    token = FIGURE_FILES.set(None if figures_dir is None else (Path(figures_dir), []))
    try:
        sections = build_sections(run_dir, contents)
    finally:
        FIGURE_FILES.reset(token)
    return render_page(title or f"SparseSpikformer run: {run_dir.resolve().name}", sections)


def build_report(run_dir: str | os.PathLike, out_path: str | os.PathLike, *,
                 title: str | None = None, figures_dir: str | os.PathLike | None = None
                 ) -> Path:
    """Write the HTML report of `run_dir` to `out_path` (atomically); return its path.

    With `figures_dir`, every figure of the page is also written there as PNG and PDF
    (`00_<caption>.png`, ...), for papers and slides."""
    page = report_html(run_dir, title=title, figures_dir=figures_dir)
    atomic_write_text(out_path, page)
    return Path(out_path)


__all__ = ["build_report", "report_html", "scan_run_dir", "RunContents", "Section", "render_page",
           "figure_html", "table_html"]
