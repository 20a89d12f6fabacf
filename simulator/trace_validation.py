"""Validation of a trace: its manifest, its layer table (coerced column by column to the
schema's dtypes) and its arrays. Every error is a `TraceError` naming the file and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sparsespikformer.simulator.errors import TraceError
from sparsespikformer.simulator.trace_schema import (
    CHANNEL_NNZ_ARRAY,
    EVENTS_ARRAY,
    FRACTION_COLUMNS,
    LAYER_COLUMNS,
    LAYER_KINDS,
    LAYERS_FILE,
    MANIFEST_FILE,
    MANIFEST_TYPES,
    READABLE_VERSIONS,
    SAMPLE_EVENTS_ARRAY,
    SAMPLE_OPS_ARRAY,
    SAMPLE_ROW_EVENTS_ARRAY,
    SCHEMA_VERSION,
    SOURCES,
    V1_RENAMED_COLUMNS,
    VALUE_KINDS,
    WEIGHTED_KINDS,
)


def validate_manifest(manifest: Mapping[str, Any], origin: str) -> None:
    where = f"{origin}/{MANIFEST_FILE}"
    if not isinstance(manifest, Mapping):
        raise TraceError(f"{where}: manifest must be a JSON object")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:  # older readable versions were upgraded before
        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise TraceError(f"{where}: schema_version: unsupported version {version!r} "
                         f"(this build reads versions {readable})")
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


def _renamed_hint(columns) -> str:
    """Old column names in a table that claims the current schema (built in code, say)."""
    old = [name for name in V1_RENAMED_COLUMNS if name in columns]
    if not old:
        return ""
    renames = ", ".join(f"{name} -> {V1_RENAMED_COLUMNS[name]}" for name in old)
    return (f" (renamed in trace schema 2: {renames}; docs/trace-format.md; a manifest with "
            "schema_version 1 is upgraded on load)")


def coerce_layers(layers: pd.DataFrame, where: str) -> pd.DataFrame:
    if not isinstance(layers, pd.DataFrame):
        raise TraceError(f"{where}: layer table must be a pandas DataFrame")
    missing = [c for c in LAYER_COLUMNS if c not in layers.columns]
    if missing:
        raise TraceError(f"{where}: missing columns: {', '.join(missing)}"
                         + _renamed_hint(layers.columns))
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


def validate_arrays(arrays: Mapping[str, Mapping[str, np.ndarray]], layers: pd.DataFrame,
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
        _check_row_events(per_layer.get(SAMPLE_ROW_EVENTS_ARRAY), row, samples, where)


def _check_row_events(array: Any, row: Any, samples: int, where: str) -> None:
    """The optional per-sample row events: (kept samples <= num_samples, T, groups, gemm_m)."""
    if array is None:
        return
    name = f"{where}: {row.layer}/{SAMPLE_ROW_EVENTS_ARRAY}"
    array = np.asarray(array)
    expected = (row.timesteps, row.gemm_groups, row.gemm_m)
    if array.dtype.kind not in "biuf" or array.ndim != 4 or tuple(array.shape[1:]) != expected \
            or not 1 <= array.shape[0] <= samples:
        raise TraceError(f"{name}: expected numbers of shape (1..{samples}, "
                         f"{', '.join(map(str, expected))}), got {array.dtype} "
                         f"{tuple(array.shape)}")
    if not np.all(np.isfinite(array)) or (array < 0).any():
        raise TraceError(f"{name}: negative, NaN or infinite values")
