"""The `sparsespikformer` command line.

Each sub-command lives in `analysis/cli/commands/<name>.py` and exposes
`HELP` (one line), `add_arguments(parser)` and `run(args) -> int`. Modules are
imported only when their command runs, so `simulate` or `sweep` never pay for
importing torch.

Library code raises; only this module turns an input error into one line on stderr and exit
code 2. Input errors are `InputError` (bad values, unknown keys, malformed files; see
`sparsespikformer.simulator.errors`) and `OSError`s about a path the user gave (missing,
unreadable, in the way). Anything else is a bug: its traceback is printed and the exit code
is 1. `-v` shows the traceback of input errors too. A reader that closes the pipe
(`sparsespikformer list | head -1`) ends the command quietly with exit code 0.

Exit codes: 0 done, 1 a bug, 2 bad input, 130 interrupted (re-run to resume).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from importlib import metadata

from sparsespikformer.simulator.errors import InputError

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

EXIT_OK = 0
EXIT_BUG = 1
EXIT_INPUT_ERROR = 2
EXIT_INTERRUPTED = 130
# OSErrors that are about a path the user gave, even when raised without a filename.
_PATH_ERRORS = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError,
                NotADirectoryError)


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
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log debug messages; show the traceback of input errors too")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
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


def _version() -> str:
    try:
        return metadata.version("sparsespikformer")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown (not installed)"


def is_input_error(err: BaseException) -> bool:
    """True for the user's input at fault: an `InputError`, or an `OSError` on a path."""
    if isinstance(err, InputError):
        return True
    return isinstance(err, OSError) and (
        isinstance(err, _PATH_ERRORS) or getattr(err, "filename", None) is not None)


def _report_input_error(command: str, err: BaseException, verbose: bool) -> int:
    if verbose:
        traceback.print_exception(err, file=sys.stderr)
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        message = f"{err.filename}: {err.strerror}"  # not "[Errno 2] ...: 'path'"
    else:
        message = " ".join(str(err).split("\n"))
    print(f"sparsespikformer {command}: error: {message}", file=sys.stderr)
    return EXIT_INPUT_ERROR


def _quiet_broken_pipe() -> int:
    """The reader closed stdout (`| head`): not a failure of ours. Point stdout at devnull so
    that the interpreter's final flush does not raise again, and end quietly."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (e.g. captured in tests)
        pass
    return EXIT_OK


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
    # Under torchrun only rank 0 reports progress; the other ranks log warnings and errors.
    rank0 = os.environ.get("RANK", "0") == "0"
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO if rank0 else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return EXIT_INPUT_ERROR
    try:
        code = int(_load_command(args.command).run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except (InputError, OSError) as err:
        if not is_input_error(err):
            raise  # a bug: keep its traceback (exit 1)
        return _report_input_error(args.command, err, args.verbose)
    except KeyboardInterrupt:
        print(f"sparsespikformer {args.command}: interrupted; re-run the same command to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
