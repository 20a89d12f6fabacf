"""Raw event recordings from local files: (t, x, y, p) arrays, by file type.

Readers (chosen by the file's suffix):

    .npz     spikingjelly's `events_np` files (the reference DVS pipeline's intermediate):
             arrays t, x, y, p                                   (numpy)
    .npy     a structured array with fields t, x, y, p (tonic's event arrays), or
             tonic's DVS Gesture files: (N, 4) columns x, y, p, t in ms (tonic converts
             them to µs, as here)                                (numpy)
    .aedat   AEDAT 2 (jAER DVS128: CIFAR10-DVS, DVS128 recordings) and AEDAT 3.1 (DVS128
             Gesture) via tonic.io's header and record readers, decoded as
             tonic.io.read_dvs_128 / read_dvs_ibm do
    .aedat4  DV's AEDAT 4 via tonic.io.read_aedat4 (needs the `aedat` package)
    .bin     N-MNIST / N-Caltech101 via tonic.io.read_mnist_file

The tonic readers are the optional extra `sparsespikformer[events]` (tonic's core needs
neither torch nor torchvision). Nothing here downloads: a missing file is a DataError.
Coordinates and polarity follow each reader's convention.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from sparsespikformer.simulator.errors import DataError
from sparsespikformer.simulator.trace import NPZ_READ_ERRORS

EVENT_SUFFIXES = (".npz", ".npy", ".aedat", ".aedat4", ".bin")
FIELDS = ("t", "x", "y", "p")
EVENTS_EXTRA = "pip install 'sparsespikformer[events]'"


def read_events(path: Path) -> tuple[np.ndarray, ...]:
    """(t, x, y, p) arrays (N,) of the recording at `path`.

    Raises:
        DataError: missing or unreadable file, unknown type, or the extra is not installed.
    """
    if not path.is_file():
        raise DataError(f"event file not found: {path}")
    suffix = path.name.lower().rsplit(".", 1)[-1]
    readers = {"npz": _read_npz, "npy": _read_npy, "aedat": _read_aedat,
               "aedat4": _read_aedat4, "bin": _read_bin}
    if suffix not in readers:
        raise DataError(f"{path}: unknown event file type (readable: "
                        f"{', '.join(EVENT_SUFFIXES)})")
    try:
        events = readers[suffix](path)
    except DataError:
        raise
    except Exception as err:    # a truncated or foreign file breaks the readers any way
        raise DataError(f"{path}: not a readable .{suffix} event file "
                        f"({type(err).__name__}: {err})") from err
    return tuple(np.asarray(events[name]) for name in FIELDS)


def _read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except NPZ_READ_ERRORS as err:
        raise DataError(f"{path}: not a readable .npz file ({err})") from err
    missing = [name for name in FIELDS if name not in arrays]
    if missing:
        raise DataError(f"{path}: no array(s) {', '.join(map(repr, missing))} (has "
                        f"{sorted(arrays)}; expected spikingjelly's t, x, y, p)")
    return arrays


def _read_npy(path: Path) -> dict:
    array = np.load(path, allow_pickle=False)
    if array.dtype.names and set(FIELDS) <= set(array.dtype.names):
        return {name: array[name] for name in FIELDS}
    if array.ndim == 2 and array.shape[1] == 4:          # tonic's DVS Gesture .npy
        return {"x": array[:, 0], "y": array[:, 1], "p": array[:, 2],
                "t": array[:, 3].astype(np.float64) * 1000}
    raise DataError(f"{path}: expected a structured array with fields t, x, y, p or an "
                    f"(N, 4) array x, y, p, t; got {array.dtype} of shape {array.shape}")


def _tonic_io(path: Path):
    try:
        return importlib.import_module("tonic.io")
    except ImportError as err:
        raise DataError(f"{path}: reading this file type needs tonic: {EVENTS_EXTRA}") from err


# tonic's read_dvs_128 / read_dvs_ibm unpack read_aedat_header_from_file's three values
# into two and fail on every file (neuromorphs/tonic#302, open in tonic 1.7): read the header
# and the AER records with tonic's own functions, then decode the addresses with the bit
# layouts of those two readers.
def _read_aedat(path: Path) -> dict:
    io = _tonic_io(path)
    version, start = io.read_aedat_header_from_file(str(path))[:2]
    records = io.get_aer_events_from_file(str(path), version, start)
    address = records["address"].astype(np.int64)
    if version >= 3:     # read_dvs_ibm: DVS128 Gesture (AEDAT 3.1)
        x, y, p = (address >> 17) & 0x1FFF, (address >> 2) & 0x1FFF, (address >> 1) & 1
    else:                # read_dvs_128: jAER DVS128 (AEDAT 1 / 2)
        x, y, p = (address >> 8) & 0x7F, (address >> 1) & 0x7F, address & 1
    return {"t": records["timeStamp"].astype(np.int64), "x": x, "y": y, "p": p}


def _read_aedat4(path: Path):
    io = _tonic_io(path)
    try:
        importlib.import_module("aedat")
    except ImportError as err:
        raise DataError(f"{path}: reading .aedat4 needs the aedat package "
                        f"(pip install aedat)") from err
    return io.read_aedat4(str(path))


def _read_bin(path: Path):
    io = _tonic_io(path)
    return io.read_mnist_file(str(path), dtype=io.events_struct)
