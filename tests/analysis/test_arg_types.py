"""argparse type functions: the message reaches the user prefixed with the flag's name."""

from __future__ import annotations

import argparse

import pytest

from sparsespikformer.analysis.cli import arg_types
from sparsespikformer.simulator.checks import SEED_LIMIT


def _parse(kind, text: str, capsys):
    parser = argparse.ArgumentParser(prog="p")
    parser.add_argument("--x", type=kind)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args([f"--x={text}"])        # "-inf" would look like a flag
    assert exit_.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("kind, text, message", [
    (arg_types.finite_float, "nan", "expected a finite number, got 'nan'"),
    (arg_types.finite_float, "-inf", "expected a finite number, got '-inf'"),
    (arg_types.finite_float, "1e999", "expected a finite number, got '1e999'"),
    (arg_types.finite_float, "x", "expected a number, got 'x'"),
    (arg_types.positive_int, "0", "expected a positive integer, got '0'"),
    (arg_types.positive_int, "1.5", "expected an integer, got '1.5'"),
    (arg_types.non_negative_int, "-2", "expected a non-negative integer, got '-2'"),
    (arg_types.rng_seed, "-1", "expected an integer in 0..4294967295, got '-1'"),
    (arg_types.rng_seed, "4294967296", "expected an integer in 0..4294967295, got '4294967296'"),
])
def test_bad_values_name_the_argument(kind, text, message, capsys):
    assert _parse(kind, text, capsys) == f"p: error: argument --x: {message}"


def test_good_values_pass():
    assert arg_types.finite_float("1e-3") == 1e-3
    assert arg_types.positive_int("3") == 3
    assert arg_types.non_negative_int("0") == 0
    assert arg_types.rng_seed(str(2**32 - 1)) == 2**32 - 1


def test_seed_limit_is_defined_once():
    assert arg_types.SEED_LIMIT is SEED_LIMIT == 2**32


def test_train_config_takes_the_same_seed_range():
    pytest.importorskip("torch")
    from sparsespikformer.model.training.loop import TrainConfig
    assert TrainConfig(seed=SEED_LIMIT - 1).seed == SEED_LIMIT - 1
    with pytest.raises(ValueError, match="seed"):
        TrainConfig(seed=SEED_LIMIT)
