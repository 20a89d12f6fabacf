"""Value checks shared by every reader of user input: hardware configs, sweep specs, the traces
they name, trace files and the command line. One rule each, the same everywhere:

* a boolean is never a number (YAML's `yes` and Python's `True` are not 1);
* NaN and ±inf are never valid numbers (NaN passes every range comparison);
* integers must be ints (a YAML `32.0` is not a count of PE rows); numbers may be ints or
  floats and are returned as floats;
* a fraction lies in [0, 1] (or (0, 1] where zero is meaningless, e.g. a keep ratio).

Every check takes `where` (the file and key path, or the flag) and raises `error` (an
`InputError` kind, default `InputError`) with one line: ``{where}: must be ..., got {value!r}``.
Torch-free, so the simulator, the sweeps and the CLI's argument types all use it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sparsespikformer.simulator.errors import InputError

# numpy's seeds are 32-bit unsigned: every seed the tool takes lies in 0..SEED_LIMIT - 1.
SEED_LIMIT = 2**32


def is_number(value: Any) -> bool:
    """An int or float (not a bool), finite."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def is_int(value: Any) -> bool:
    """An int (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(value: Any, where: str, *, minimum: int | None = None,
              maximum: int | None = None, error: type[InputError] = InputError,
              note: str = "") -> int:
    """`value` as an int in [minimum, maximum] (either bound optional)."""
    if not is_int(value) or (minimum is not None and value < minimum) \
            or (maximum is not None and value > maximum):
        raise error(f"{where}: must be {_int_noun(minimum, maximum)}, got {value!r}{note}")
    return int(value)


def check_positive_int(value: Any, where: str, *, error: type[InputError] = InputError,
                       note: str = "") -> int:
    return check_int(value, where, minimum=1, error=error, note=note)


def check_non_negative_int(value: Any, where: str, *, error: type[InputError] = InputError,
                           note: str = "") -> int:
    return check_int(value, where, minimum=0, error=error, note=note)


def check_seed(value: Any, where: str, *, error: type[InputError] = InputError) -> int:
    return check_int(value, where, minimum=0, maximum=SEED_LIMIT - 1, error=error)


def check_number(value: Any, where: str, *, minimum: float | None = None,
                 positive: bool = False, maximum: float | None = None,
                 error: type[InputError] = InputError, note: str = "") -> float:
    """`value` as a finite float; `minimum`/`maximum` inclusive, `positive` excludes 0."""
    ok = is_number(value) and (minimum is None or value >= minimum) \
        and (maximum is None or value <= maximum) and (not positive or value > 0)
    if not ok:
        raise error(f"{where}: must be {_number_noun(minimum, maximum, positive)}, "
                    f"got {value!r}{note}")
    return float(value)


def check_fraction(value: Any, where: str, *, allow_zero: bool = True,
                   error: type[InputError] = InputError, note: str = "") -> float:
    """`value` as a float in [0, 1], or in (0, 1] when `allow_zero` is False."""
    low_ok = is_number(value) and (value >= 0 if allow_zero else value > 0)
    if not (low_ok and value <= 1):
        bound = "[0, 1]" if allow_zero else "(0, 1]"
        raise error(f"{where}: must be a number in {bound}, got {value!r}{note}")
    return float(value)


def check_choice(value: Any, choices: Sequence[str], where: str, *,
                 error: type[InputError] = InputError, note: str = "") -> str:
    if not isinstance(value, str) or value not in choices:
        raise error(f"{where}: must be one of {', '.join(choices)}, got {value!r}{note}")
    return value


def check_text(value: Any, where: str, *, allow_empty: bool = True,
               error: type[InputError] = InputError, note: str = "") -> str:
    """A string; stripped and non-empty unless `allow_empty`."""
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        noun = "text" if allow_empty else "a non-empty string"
        raise error(f"{where}: must be {noun}, got {value!r}{note}")
    return value if allow_empty else value.strip()


def _int_noun(minimum: int | None, maximum: int | None) -> str:
    if minimum == 1 and maximum is None:
        return "a positive integer"
    if minimum == 0 and maximum is None:
        return "a non-negative integer"
    if minimum is not None and maximum is not None:
        return f"an integer in {minimum}..{maximum}"
    if minimum is not None:
        return f"an integer >= {minimum}"
    return "an integer" if maximum is None else f"an integer <= {maximum}"


def _number_noun(minimum: float | None, maximum: float | None, positive: bool) -> str:
    if positive and maximum is None and (minimum is None or minimum <= 0):
        return "a positive number"
    if minimum == 0 and maximum is None:
        return "a non-negative number"
    if minimum is not None and maximum is not None:
        return f"a number in [{minimum:g}, {maximum:g}]"
    if minimum is not None:
        return f"a number >= {minimum:g}"
    return "a finite number" if maximum is None else f"a number <= {maximum:g}"


__all__ = ["SEED_LIMIT", "check_choice", "check_fraction", "check_int", "check_non_negative_int",
           "check_number", "check_positive_int", "check_seed", "check_text", "is_int",
           "is_number"]
