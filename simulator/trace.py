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

SCHEMA_VERSION = 1

MANIFEST_FILE = "manifest.json"
LAYERS_FILE = "layers.csv"
ARRAYS_FILE = "arrays.npz"

LAYER_KINDS = ("conv", "linear", "attn_qk", "attn_v", "lif", "pool", "selector", "head")
VALUE_KINDS = ("spike", "integer", "rate", "real")
SOURCES = ("recorded", "synthetic", "gemm")
# Layers that hold a static weight tensor (and so `nnz_per_out_channel`).
WEIGHTED_KINDS = ("conv", "linear", "selector", "head")

# Column name -> dtype, in file order. See docs/trace-format.md for units.
LAYER_COLUMNS: dict[str, str] = {
    "layer": "str",
    "kind": "str",
    "block": "int",
    "in_shape": "str",
    "out_shape": "str",
    "timesteps": "int",
    "tokens_in": "int",
    "tokens_out": "int",
    "in_numel": "int",
    "out_numel": "int",
    "gemm_m": "int",
    "gemm_n": "int",
    "gemm_k": "int",
    "gemm_groups": "int",
    "weight_numel": "int",
    "weight_nnz": "int",
    "operand_density": "float",
    "in_value_kind": "str",
    "input_is_spike": "bool",
    "in_value_min": "float",
    "in_value_max": "float",
    "in_value_mean": "float",
    "in_firing_rate": "float",
    "out_firing_rate": "float",
    "dense_macs": "float",
    "sops": "float",
    "effective_ops": "float",
    "nonzero_pairs": "float",
}
COUNT_COLUMNS = ("dense_macs", "sops", "effective_ops", "nonzero_pairs")

# Manifest key -> accepted Python types (None allowed where listed).
MANIFEST_TYPES: dict[str, tuple[type, ...]] = {
    "schema_version": (int,),
    "source": (str,),
    "preset": (str,),
    "model_config": (dict,),
    "timesteps": (int,),
    "input_shape": (list,),
    "dataset": (str,),
    "num_samples": (int,),
    "weight_sparsity": (float, int),
    "selector_scorer": (str, type(None)),
    "keep_ratios": (list,),
    "accuracy": (float, int, type(None)),
    "seed": (int,),
    "neurobench": (dict,),
}

EVENTS_ARRAY = "events_per_step_token"
SAMPLE_OPS_ARRAY = "sample_effective_ops"
SAMPLE_EVENTS_ARRAY = "sample_in_events"
CHANNEL_NNZ_ARRAY = "nnz_per_out_channel"


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
        _validate_manifest(self.manifest, self.origin)
        layers = _coerce_layers(self.layers, f"{self.origin}/{LAYERS_FILE}")
        object.__setattr__(self, "layers", layers)
        _validate_arrays(self.arrays, layers, self.manifest, f"{self.origin}/{ARRAYS_FILE}")

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


# ----------------------------------------------------------------------------- validation


def _validate_manifest(manifest: Mapping[str, Any], origin: str) -> None:
    where = f"{origin}/{MANIFEST_FILE}"
    if not isinstance(manifest, Mapping):
        raise TraceError(f"{where}: manifest must be a JSON object")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise TraceError(
            f"{where}: schema_version: unsupported version {version!r} "
            f"(this build reads version {SCHEMA_VERSION})"
        )
    for key, types in MANIFEST_TYPES.items():
        if key not in manifest:
            raise TraceError(f"{where}: {key}: missing")
        value = manifest[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise TraceError(f"{where}: {key}: wrong type {type(value).__name__}")
    if manifest["source"] not in SOURCES:
        raise TraceError(f"{where}: source: must be one of {SOURCES}, got {manifest['source']!r}")
    if manifest["timesteps"] < 1 or manifest["num_samples"] < 1:
        raise TraceError(f"{where}: timesteps and num_samples must be >= 1")
    sparsity = manifest["weight_sparsity"]
    if not (0.0 <= sparsity <= 1.0):
        raise TraceError(f"{where}: weight_sparsity: must be in [0, 1], got {sparsity}")
    accuracy = manifest["accuracy"]
    if accuracy is not None and not (0.0 <= accuracy <= 1.0):  # NaN fails too
        raise TraceError(f"{where}: accuracy: must be null or in [0, 1], got {accuracy}")
    for ratio in manifest["keep_ratios"]:
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) \
                or not (0.0 < ratio <= 1.0):
            raise TraceError(f"{where}: keep_ratios: must be numbers in (0, 1], got {ratio!r}")


def _coerce_layers(layers: pd.DataFrame, where: str) -> pd.DataFrame:
    if not isinstance(layers, pd.DataFrame):
        raise TraceError(f"{where}: layer table must be a pandas DataFrame")
    missing = [c for c in LAYER_COLUMNS if c not in layers.columns]
    if missing:
        raise TraceError(f"{where}: missing columns: {', '.join(missing)}")
    if layers.empty:
        raise TraceError(f"{where}: no layers")
    # One DataFrame from all columns: inserting them one by one costs ~0.3 ms each.
    out = pd.DataFrame({column: _coerce_column(layers[column], column, dtype, where)
                        for column, dtype in LAYER_COLUMNS.items()})
    _check_layer_values(out, where)
    return out


def _coerce_column(values: pd.Series, column: str, dtype: str, where: str) -> np.ndarray:
    # numpy, not pandas, per column: pandas costs ~0.2 ms a call, a recorded trace ~30 calls.
    array = values.to_numpy()
    missing = pd.isna(array)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise TraceError(f"{where}: {column}: missing or NaN value in row {row}")
    try:
        if dtype == "str":
            return np.array([str(value) for value in array], dtype=object)
        if dtype == "bool":
            return array if array.dtype == bool else \
                np.array([_parse_bool(value) for value in array], dtype=bool)
        # Columns built in memory are numeric already; text from a CSV needs parsing.
        numeric = array if array.dtype.kind in "iuf" else \
            pd.to_numeric(values, errors="raise").to_numpy()
        if dtype == "int":
            if not np.all(np.equal(np.mod(numeric, 1), 0)):
                raise TraceError("not an integer")
            return numeric.astype(np.int64)
        numeric = numeric.astype(np.float64)
        if not np.all(np.isfinite(numeric)):
            raise TraceError("not finite")
        return numeric
    except (ValueError, TypeError) as err:
        raise TraceError(f"{where}: {column}: expected {dtype} values ({err})") from None


def _parse_bool(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise TraceError(f"not a boolean: {value!r}")


FRACTION_COLUMNS = ("in_firing_rate", "out_firing_rate", "operand_density")


def _check_layer_values(layers: pd.DataFrame, where: str) -> None:
    bad_kind = ~layers["kind"].isin(LAYER_KINDS)
    if bad_kind.any():
        raise TraceError(f"{where}: kind: unknown {layers['kind'][bad_kind].iloc[0]!r} "
                         f"(expected one of {LAYER_KINDS})")
    bad_value_kind = ~layers["in_value_kind"].isin(VALUE_KINDS)
    if bad_value_kind.any():
        raise TraceError(f"{where}: in_value_kind: unknown "
                         f"{layers['in_value_kind'][bad_value_kind].iloc[0]!r}")
    if layers["layer"].duplicated().any():
        raise TraceError(f"{where}: layer: duplicate name "
                         f"{layers['layer'][layers['layer'].duplicated()].iloc[0]!r}")
    signed = ("block", "in_value_min", "in_value_max", "in_value_mean")  # currents may be < 0
    numeric = [c for c, t in LAYER_COLUMNS.items() if t in ("int", "float") and c not in signed]
    negative = (layers[numeric] < 0).any()
    if negative.any():
        raise TraceError(f"{where}: {negative[negative].index[0]}: negative value")
    if (layers["weight_nnz"] > layers["weight_numel"]).any():
        raise TraceError(f"{where}: weight_nnz: exceeds weight_numel")
    for column in FRACTION_COLUMNS:  # > 1 would turn the simulator's zero counts negative
        above = layers[column] > 1.0
        if above.any():
            raise TraceError(f"{where}: {column}: must be a fraction in [0, 1], got "
                             f"{layers[column][above].iloc[0]} in row {int(above.idxmax())}")
    if (layers["timesteps"] < 1).any():
        raise TraceError(f"{where}: timesteps: must be >= 1 in every row")


def _validate_arrays(arrays: Mapping[str, Mapping[str, np.ndarray]], layers: pd.DataFrame,
                     manifest: Mapping[str, Any], where: str) -> None:
    samples = int(manifest["num_samples"])
    known = set(layers["layer"])
    extra = [name for name in arrays if name not in known]
    if extra:  # e.g. a layer table cut short at a row boundary
        raise TraceError(f"{where}: arrays for layer {extra[0]!r}, which is not in "
                         f"{LAYERS_FILE} ({len(extra)} such layers)")
    for row in layers.itertuples(index=False):
        per_layer = arrays.get(row.layer)
        if per_layer is None:
            raise TraceError(f"{where}: {row.layer}: arrays missing")
        expected = {
            EVENTS_ARRAY: (row.timesteps, row.tokens_in),
            SAMPLE_OPS_ARRAY: (samples,),
            SAMPLE_EVENTS_ARRAY: (samples,),
        }
        if row.kind in WEIGHTED_KINDS:
            expected[CHANNEL_NNZ_ARRAY] = (row.gemm_n,)
        for name, shape in expected.items():
            array = per_layer.get(name)
            if array is None:
                raise TraceError(f"{where}: {row.layer}/{name}: missing")
            dtype = np.asarray(array).dtype
            if dtype.kind not in "biuf":  # strings, records: not counts
                raise TraceError(f"{where}: {row.layer}/{name}: expected numbers, "
                                 f"got dtype {dtype}")
            if tuple(array.shape) != tuple(shape):
                raise TraceError(f"{where}: {row.layer}/{name}: shape {tuple(array.shape)}, "
                                 f"expected {tuple(shape)}")
            if not np.all(np.isfinite(array)):
                raise TraceError(f"{where}: {row.layer}/{name}: NaN or infinite values")


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
