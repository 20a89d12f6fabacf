"""Running the CLI in-process as a shell would see it."""

from __future__ import annotations

from sparsespikformer.analysis.cli import main


def exit_code(argv: list[str]) -> int:
    """main()'s return value, or the code argparse exits with on a bad argument."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code
