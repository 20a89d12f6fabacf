"""argparse `type=` functions: a bad value fails at parsing, and the message names the flag.

argparse puts "argument --x:" in front of an `ArgumentTypeError`'s message; a
`ValueError` from a type function becomes "invalid <function name> value: '...'"
and loses our text, so these raise `ArgumentTypeError`. No torch import here:
every command's parser is built for `--help`.
"""

from __future__ import annotations

import argparse
import math

from sparsespikformer.simulator.checks import SEED_LIMIT

STDOUT = "-"


def finite_float(text: str) -> float:
    """A float other than nan and ±inf (NaN passes every range check; inf trains to NaN)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def rng_seed(text: str) -> int:
    value = _integer(text)
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"expected an integer in 0..{SEED_LIMIT - 1}, "
                                         f"got {text!r}")
    return value


def output_folder(text: str) -> str:
    """A folder to write into; `-` (standard output) cannot hold a folder."""
    if text == STDOUT:
        raise argparse.ArgumentTypeError("'-' means standard output, which cannot hold a "
                                         "folder of results; give a folder path")
    if not text:
        raise argparse.ArgumentTypeError("expected a folder path, got an empty string")
    return text


def output_file(text: str) -> str:
    """A file to write, or `-` for standard output."""
    if not text:
        raise argparse.ArgumentTypeError("expected a file path or '-', got an empty string")
    return text
