"""Running the CLI in-process as a shell would see it."""

from __future__ import annotations

from sparsespikformer.analysis.cli import main


def exit_code(argv: list[str]) -> int:
    """main()'s return value, or the code argparse exits with on a bad argument."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


def with_paths(argv: list[str], folder) -> list[str]:
    """argv with each placeholder "X" replaced by a path inside `folder`."""
    return [str(folder / arg) if arg == "X" else arg for arg in argv]


def assert_one_line_error(argv: list[str], message: str, capsys) -> None:
    """The command exits 2 with `message` in one line of standard error, no traceback."""
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
