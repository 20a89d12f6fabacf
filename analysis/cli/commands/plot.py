"""`sparsespikformer plot KIND --input FILE [FILE ...] --out PATH`: one figure from result files.

| KIND | --input |
|---|---|
| `energy-breakdown` | a simulator layer table CSV (layer, component, energy_pj, ...) |
| `pareto` | a sweep folder or its results.csv / results.jsonl |
| `lth` | one or more LTH rounds.csv (round, weight_sparsity, test_accuracy[, baseline]) |
| `keep-ratio` | a CSV with scorer, keep_ratio, accuracy, gflops |
| `input-events` | a trace folder (`firing-rate` is an old alias) |

`input-events` draws the mean input value (spike events) per element, per layer and
timestep: the firing rate where inputs are 0/1 spikes, more than the non-zero fraction on the
integer residual stream.
| `kept-tokens` | an .npz with images, num_tokens and kept/<selector> index arrays |

Writes PATH as PNG and PDF (PATH.png and PATH.pdf; a .png or .pdf suffix is replaced);
`--out - --format png` writes the one figure to standard output.
"""

from __future__ import annotations

import argparse
import sys

from sparsespikformer.analysis.cli.arg_types import STDOUT, output_file
from sparsespikformer.simulator.errors import InputError

HELP = "draw one figure (PNG + PDF) from result files: energy, Pareto, LTH, tokens, ..."

KINDS = ("energy-breakdown", "pareto", "lth", "keep-ratio", "input-events", "kept-tokens",
         "firing-rate")  # firing-rate: the old name of input-events


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=KINDS, help="which figure")
    parser.add_argument("--input", nargs="+", required=True, metavar="FILE",
                        help="result file(s) or folder (see `plot --help` table in the docs)")
    parser.add_argument("--out", required=True, type=output_file,
                        help="output path (PATH.png and PATH.pdf written), or '-' for "
                             "standard output with one --format")
    parser.add_argument("--format", nargs="+", choices=("png", "pdf"), default=["png", "pdf"],
                        help="formats to write (default: png pdf)")
    parser.add_argument("--title", help="figure title")
    parser.add_argument("--group", default=None,
                        help="energy-breakdown: layer | block | kind (default layer); "
                             "pareto: column that colours points (default trace)")
    parser.add_argument("--x", default="energy_pj", help="pareto: x column (default energy_pj)")
    parser.add_argument("--y", default="accuracy", help="pareto: y column (default accuracy)")
    parser.add_argument("--x-dir", choices=("min", "max"), default="min",
                        help="pareto: is a smaller or larger x better (default min)")
    parser.add_argument("--y-dir", choices=("min", "max"), default=None,
                        help="pareto: is a smaller or larger y better (default: max for "
                             "accuracy, min otherwise)")
    parser.add_argument("--labels", nargs="+", help="lth: one label per input file")
    parser.add_argument("--images", type=int, default=4,
                        help="kept-tokens: images to draw (default %(default)s)")


def _single(args: argparse.Namespace) -> str:
    if len(args.input) != 1:
        raise InputError(f"--input: {args.kind} takes one input, got {len(args.input)}")
    return args.input[0]


def make_figure(args: argparse.Namespace):
    from sparsespikformer.analysis.reporting import plot_data, plots, result_files

    title = {"title": args.title} if args.title else {}
    if args.kind == "energy-breakdown":
        table = result_files.read_table(_single(args))
        energy = plot_data.layer_energy_by_component(table, group=args.group or "layer")
        return plots.draw_layer_energy(energy, **title)
    if args.kind == "pareto":
        from sparsespikformer.analysis.sweeps.store import read_results

        y_dir = args.y_dir or ("max" if args.y == "accuracy" else "min")
        data = plot_data.pareto_plot_data(read_results(_single(args)), x=args.x, y=args.y,
                                          x_direction=args.x_dir, y_direction=y_dir,
                                          group=args.group or "trace")
        return plots.draw_pareto(data, title=args.title)
    if args.kind == "lth":
        rounds = result_files.read_rounds(args.input, args.labels)
        return plots.draw_lth(plot_data.lth_curve_data(rounds), **title)
    if args.kind == "keep-ratio":
        table = result_files.read_table(_single(args))
        return plots.draw_keep_ratio(plot_data.keep_ratio_data(table), **title)
    if args.kind in ("input-events", "firing-rate"):
        from sparsespikformer.simulator.trace import Trace

        return plots.draw_input_events(plot_data.input_events_matrix(Trace.load(_single(args))),
                                      **title)
    images, kept, num_tokens = result_files.read_kept_tokens(_single(args))
    data = plot_data.kept_tokens_data(images, kept, num_tokens, max_images=args.images)
    return plots.draw_kept_tokens(data, **title)


def run(args: argparse.Namespace) -> int:
    from sparsespikformer.analysis.reporting.plots import figure_bytes, save_figure

    if args.out == STDOUT:
        formats = list(dict.fromkeys(args.format))
        if len(formats) != 1:
            raise InputError("--out -: standard output takes one file; give one --format "
                             "(png or pdf)")
        sys.stdout.flush()
        sys.stdout.buffer.write(figure_bytes(make_figure(args), formats[0]))
        return 0
    for path in save_figure(make_figure(args), args.out, formats=args.format):
        print(path)
    return 0
