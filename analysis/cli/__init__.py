"""The `sparsespikformer` command line.

Each sub-command lives in `analysis/cli/commands/<name>.py` and exposes
`HELP` (one line), `add_arguments(parser)` and `run(args) -> int`. Modules are
imported only when their command runs, so `simulate` or `sweep` never pay for
importing torch.

Library code raises; only this module turns an input error into one line on
stderr and exit code 2. By project convention input errors are `ValueError`
(bad values, unknown keys, malformed files) or `OSError` (missing paths), and
their messages name the file, key or argument at fault.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Order is the order `--help` lists them in.
COMMANDS = (
    "demo",
    "train",
    "eval",
    "prune",
    "trace",
    "simulate",
    "sweep",
    "plot",
    "report",
    "list",
)

EXIT_INPUT_ERROR = 2
EXIT_INTERRUPTED = 130


class _OneLineParser(argparse.ArgumentParser):
    """argparse already exits 2 on bad arguments; keep its message to one line."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        self.exit(EXIT_INPUT_ERROR, f"{self.prog}: error: {message}\n")


def _load_command(name: str):
    return importlib.import_module(f"sparsespikformer.analysis.cli.commands.{name}")


def _command_help(name: str) -> str:
    try:
        return _load_command(name).HELP
    except ModuleNotFoundError:
        return "(not available in this build)"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Build the parser; only `command`'s module is imported (all of them for --help)."""
    parser = _OneLineParser(
        prog="sparsespikformer",
        description="SparseSpikformer co-design simulator: prune a spiking transformer, "
        "trace it, and estimate energy and latency on neuromorphic accelerators.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    for name in COMMANDS:
        if command is not None and name != command:
            sub.add_parser(name, help=None, add_help=False)
            continue
        module = _load_command(name) if command is not None else None
        help_text = module.HELP if module is not None else _command_help(name)
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if module is None:
            module = _load_command(name)
        module.add_arguments(sub_parser)
    return parser


def _requested_command(argv: list[str]) -> str | None:
    for token in argv:
        if token in COMMANDS:
            return token
        if not token.startswith("-"):
            return None
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _requested_command(argv)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return EXIT_INPUT_ERROR
    try:
        return int(_load_command(args.command).run(args) or 0)
    except (ValueError, OSError) as err:
        message = str(err).replace("\n", " ")
        print(f"sparsespikformer {args.command}: error: {message}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print(f"sparsespikformer {args.command}: interrupted; re-run the same command to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
