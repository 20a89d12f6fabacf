"""The trace: the one contract between `model/` (which records it) and `simulator/`.

A trace is a manifest (what was traced), a layer table (one row per compute layer, in
execution order) and small per-layer arrays. `docs/trace-format.md` documents every
field. On disk it is a directory that pandas, numpy and `json` read without this
package; it is written and read only through this module, which validates it.

No torch here: a trace recorded on a GPU box is simulated anywhere.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sparsespikformer.simulator.atomic import replace_directory
from sparsespikformer.simulator.errors import TraceError
from sparsespikformer.simulator.trace_schema import (  # noqa: F401  (re-exported: the schema)
    ARRAYS_FILE,
    CHANNEL_NNZ_ARRAY,
    COUNT_COLUMNS,
    EVENTS_ARRAY,
    LAYER_COLUMNS,
    LAYER_KINDS,
    LAYERS_FILE,
    MANIFEST_FILE,
    MANIFEST_TYPES,
    SAMPLE_EVENTS_ARRAY,
    SAMPLE_OPS_ARRAY,
    SAMPLE_ROW_EVENTS_ARRAY,
    SCHEMA_VERSION,
    SOURCES,
    VALUE_KINDS,
    WEIGHTED_KINDS,
    upgrade,
)
from sparsespikformer.simulator.trace_validation import (
    coerce_layers,
    validate_arrays,
    validate_manifest,
)

# What numpy raises on a damaged .npz: a bad zip directory, bad CRC, flipped bytes in a
# compressed member (zlib), a member cut short, a compression method flipped to an unknown one.
NPZ_READ_ERRORS = (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError,
                   NotImplementedError)


@dataclass(frozen=True)
class Trace:
    """A validated trace. Build one with `Trace(manifest, layers, arrays)` or `Trace.load`."""

    manifest: dict[str, Any]
    layers: pd.DataFrame
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    origin: str = "<memory>"  # where it was loaded from, for error messages

    def __post_init__(self) -> None:
        manifest, layers = upgrade(self.manifest, self.layers)
        validate_manifest(manifest, self.origin)
        layers = coerce_layers(layers, f"{self.origin}/{LAYERS_FILE}")
        object.__setattr__(self, "manifest", dict(manifest))
        object.__setattr__(self, "layers", layers)
        validate_arrays(self.arrays, layers, manifest, f"{self.origin}/{ARRAYS_FILE}")

    @property
    def timesteps(self) -> int:
        return int(self.manifest["timesteps"])

    @property
    def num_samples(self) -> int:
        return int(self.manifest["num_samples"])

    def layer_array(self, layer: str, name: str) -> np.ndarray:
        return self.arrays[layer][name]

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the trace to `directory`, replacing it as a whole (never half-written).

        Raises:
            FileExistsError: `directory` is a file, or a non-empty folder that is not a trace.
        """
        return replace_directory(Path(directory), self._write_files, _refuse_non_trace)

    def _write_files(self, directory: Path) -> None:
        text = json.dumps(_jsonable(self.manifest), indent=2, sort_keys=True)
        (directory / MANIFEST_FILE).write_text(text + "\n", encoding="utf-8")
        self.layers.to_csv(directory / LAYERS_FILE, index=False, lineterminator="\n")
        flat = {
            f"{layer}/{name}": array
            for layer in self.layers["layer"]
            for name, array in sorted(self.arrays[layer].items())
        }
        _write_npz_deterministic(directory / ARRAYS_FILE, flat)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Trace":
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory}: trace directory not found")
        manifest = _read_manifest(directory / MANIFEST_FILE)
        layers = _read_layers(directory / LAYERS_FILE)
        # Arrays are read whole and checked against the table only after the table is checked.
        arrays = _read_arrays(directory / ARRAYS_FILE)
        return cls(manifest=manifest, layers=layers, arrays=arrays, origin=str(directory))


# ----------------------------------------------------------------------------- reading


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing trace manifest")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TraceError(f"{path}: not valid JSON ({err.__class__.__name__}: {err})") from None
    if not isinstance(manifest, dict):
        raise TraceError(f"{path}: manifest must be a JSON object")
    return manifest


def _read_layers(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing trace layer table")
    try:
        return pd.read_csv(path, dtype={"layer": str, "kind": str, "in_shape": str,
                                        "out_shape": str, "in_value_kind": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise TraceError(f"{path}: unreadable CSV ({err})".replace("\n", " ")) from None


def _read_arrays(path: Path) -> dict[str, dict[str, np.ndarray]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing trace arrays")
    arrays: dict[str, dict[str, np.ndarray]] = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            for key in archive.files:
                layer, _, name = key.rpartition("/")
                arrays.setdefault(layer, {})[name] = archive[key]
    except NPZ_READ_ERRORS as err:
        raise TraceError(f"{path}: corrupt or truncated ({err})".replace("\n", " ")) from None
    return arrays


# ----------------------------------------------------------------------------- writing


def _jsonable(value: Any) -> Any:
    """Plain JSON types only, so the manifest never depends on numpy's repr."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    return value


def _write_npz_deterministic(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """`np.savez` stamps the current time into the zip; fix it so files are byte-identical."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())


# ----------------------------------------------------------------------------- building


def shape_string(shape: Iterable[int]) -> str:
    return "x".join(str(int(s)) for s in shape)


def base_manifest(*, source: str, preset: str = "", model_config: Mapping[str, Any] | None = None,
                  timesteps: int, input_shape: Iterable[int], dataset: str, num_samples: int,
                  weight_sparsity: float = 0.0, selector_scorer: str | None = None,
                  keep_ratios: Iterable[float] = (), accuracy: float | None = None, seed: int = 0,
                  neurobench: Mapping[str, Any] | None = None,
                  real_stats_samples: int | None = None) -> dict[str, Any]:
    """A complete manifest with every key the schema requires.

    `real_stats_samples` (optional key): how many samples the statistics of real-valued
    intermediates (LIF currents, pre-activation outputs) were measured on.
    """
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "source": source,
        "preset": preset,
        "model_config": dict(model_config or {}),
        "timesteps": int(timesteps),
        "input_shape": [int(s) for s in input_shape],
        "dataset": dataset,
        "num_samples": int(num_samples),
        "weight_sparsity": float(weight_sparsity),
        "selector_scorer": selector_scorer,
        "keep_ratios": [float(r) for r in keep_ratios],
        "accuracy": None if accuracy is None else float(accuracy),
        "seed": int(seed),
        "neurobench": dict(neurobench or {}),
    }
    if real_stats_samples is not None:
        manifest["real_stats_samples"] = int(real_stats_samples)
    return manifest


def _refuse_non_trace(target: Path) -> None:
    # Only an empty directory or a trace is ours to replace: a folder of other things there
    # (`--out runs`) is someone's data.
    if target.is_dir() and any(target.iterdir()) and not (target / MANIFEST_FILE).is_file():
        raise FileExistsError(f"{target}: a non-empty directory that is not a trace (no "
                              f"{MANIFEST_FILE}); not replacing it (choose another path)")


__all__ = [
    "SCHEMA_VERSION", "LAYER_KINDS", "VALUE_KINDS", "LAYER_COLUMNS", "COUNT_COLUMNS",
    "NPZ_READ_ERRORS", "Trace", "TraceError", "base_manifest", "shape_string",
]
