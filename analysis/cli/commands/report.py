"""`sparsespikformer report DIR --out report.html`: one self-contained HTML summary of a run.

Finds whatever result files DIR holds (summary.json, sweep results, LTH rounds.csv,
keep-ratio tables, traces, simulator tables, kept-token files), draws their plots and
embeds them, with the tables, in a single HTML file.
"""

from __future__ import annotations

import argparse
import sys

from sparsespikformer.analysis.cli.arg_types import STDOUT, output_file

HELP = "write one self-contained HTML report (figures and tables) of a run folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="DIR", help="run folder to summarise")
    parser.add_argument("--out", type=output_file,
                        help="HTML file to write, '-' for standard output "
                             "(default: DIR/report.html)")
    parser.add_argument("--title", help="page title (default: from the folder name)")
    parser.add_argument("--figures", metavar="FOLDER",
                        help="also write every figure there as PNG and PDF")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sparsespikformer.analysis.reporting.report import build_report, report_html

    if args.out == STDOUT:  # the page alone on standard output
        sys.stdout.write(report_html(args.run_dir, title=args.title, figures_dir=args.figures))
        return 0
    out = Path(args.out) if args.out else Path(args.run_dir) / "report.html"
    path = build_report(args.run_dir, out, title=args.title, figures_dir=args.figures)
    print(f"report: {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return 0
