"""The one base class for errors in the user's input, and its kinds.

Bad input (a trace, a hardware config, a sweep spec, a checkpoint, a data set, an argument)
raises an `InputError`; the command line prints it on one line and exits with code 2. Any
other exception is a bug and keeps its traceback (exit 1). `InputError` is a `ValueError`, so
code that catches `ValueError` keeps working. Torch-free: every package may import it.
"""

from __future__ import annotations


class InputError(ValueError):
    """The user's input is wrong; the message names the file, key or argument at fault."""


class TraceError(InputError):
    """A trace that cannot be used; the message names the file and the field."""


class HwConfigError(InputError):
    """A hardware config that cannot be used; the message names the file and the key path."""


class SweepSpecError(InputError):
    """A sweep spec (or a sweep's stored results) that cannot be used."""


class CheckpointError(InputError):
    """A checkpoint, mask or round file that cannot be loaded into the model at hand."""


class DataError(InputError):
    """A data set (path, format, shape) that cannot be read."""


__all__ = ["CheckpointError", "DataError", "HwConfigError", "InputError", "SweepSpecError",
           "TraceError"]
