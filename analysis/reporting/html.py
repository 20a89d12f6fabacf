"""HTML building blocks of the report: a page with a table of contents, sections, tables and
figures embedded as base64 PNG (no external file, script or stylesheet). Every piece of user
text (file names, captions, table cells) is escaped, so it shows literally."""

from __future__ import annotations

import base64
import contextvars
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from sparsespikformer.analysis.reporting import plots
from sparsespikformer.analysis.reporting.display import format_number, human_columns
from sparsespikformer.simulator.atomic import atomic_write_bytes

MAX_TABLE_ROWS = 25


@dataclass(frozen=True)
class Section:
    title: str
    body: str  # HTML


# Set by `build_report(figures_dir=...)`: every embedded figure is also saved there.
FIGURE_FILES: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "report_figure_files", default=None)


def figure_html(figure, caption: str) -> str:
    png = plots.png_bytes(figure)  # first: a PDF render can shift the layout a little
    saved = FIGURE_FILES.get()
    if saved is not None:
        directory, written = saved
        slug = re.sub(r"[^a-z0-9]+", "_", caption.lower()).strip("_")[:60]
        stem = directory / f"{len(written) // 2:02d}_{slug}"
        atomic_write_bytes(stem.with_name(f"{stem.name}.png"), png)
        written.append(stem.with_name(f"{stem.name}.png"))
        written.extend(plots.save_figure(figure, stem, formats=("pdf",)))
    encoded = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,'
            f'{encoded}"><figcaption>{html.escape(caption)}</figcaption></figure>')


def table_html(table: pd.DataFrame, *, max_rows: int = MAX_TABLE_ROWS, human: bool = True
               ) -> str:
    """An HTML table; with `human`, energies and times in human units (`human_columns`).
    A nested value (mapping or list) is never dumped into a cell: it shows as its size."""
    shown = table.head(max_rows)
    if human:
        shown = human_columns(shown)
    shown = shown.map(_cell) if len(shown.columns) else shown
    text = shown.to_html(index=False, border=0, classes="table", na_rep="–",
                         float_format=format_number, escape=True)
    text = f"<div class='wide'>{text}</div>"  # a wide table scrolls, not the page
    if len(table) > max_rows:
        text += f"<p class='note'>… {len(table) - max_rows} more rows not shown.</p>"
    return text


def _cell(value):
    if isinstance(value, Mapping):
        return f"({len(value)} entries)"
    if isinstance(value, (list, tuple)):
        return f"({len(value)} items)"
    return value


_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.4; padding: 0 1em; }
h1 { border-bottom: 2px solid #1f77b4; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
nav ul { columns: 2; }
table.table { border-collapse: collapse; font-size: 13px; margin: .8em 0; }
table.table th, table.table td { padding: 3px 8px; border-bottom: 1px solid #e3e3e3;
       text-align: right; }
table.table td:first-child, table.table th:first-child { text-align: left; }
table.table th { background: #f3f6fa; }
div.wide { overflow-x: auto; max-width: 100%; }
p.answer { font-size: 17px; background: #f3f6fa; border-left: 4px solid #1f77b4;
           padding: .6em 1em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption, .note { color: #666; font-size: 13px; }
code { background: #f3f3f3; padding: 0 .3em; }
"""


def render_page(title: str, sections: Sequence[Section]) -> str:
    anchors = [f"s{index}" for index in range(len(sections))]
    toc = "".join(f'<li><a href="#{a}">{html.escape(s.title)}</a></li>'
                  for a, s in zip(anchors, sections, strict=True))
    body = "".join(f'<section id="{a}"><h2>{html.escape(s.title)}</h2>{s.body}</section>'
                   for a, s in zip(anchors, sections, strict=True))
    if not sections:
        body = "<p>No result files found in this directory.</p>"
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><nav><ul>{toc}</ul></nav>{body}</body></html>\n")


