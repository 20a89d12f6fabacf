"""The trace schema: file names, layer columns and their dtypes, manifest keys, array names,
and the upgrade of traces written by older versions of the schema.

`docs/trace-format.md` documents every field. Version history:

* 1: first version.
* 2: `in_firing_rate` / `out_firing_rate` renamed `in_nonzero_fraction` /
  `out_nonzero_fraction`. They always were the fraction of non-zero elements, which is the
  firing rate only for 0/1 spikes; on the integer residual stream it differs from the mean
  input value (`in_value_mean`, spike events per element). Version-1 traces load unchanged
  otherwise.
* 3: optional per-sample array `sample_row_events` on GEMM rows: each traced sample's events
  per (timestep, group, GEMM row), the work one PE row of an output- or input-stationary
  array streams (a conv's im2col row: its receptive field, border padding included; per
  head for attention), so load imbalance is taken per inference. Versions 1 and 2 load
  unchanged; without the array the simulator falls back to `events_per_step_token`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

SCHEMA_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)

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
    "in_nonzero_fraction": "float",
    "out_nonzero_fraction": "float",
    "dense_macs": "float",
    "sops": "float",
    "effective_ops": "float",
    "nonzero_pairs": "float",
}
COUNT_COLUMNS = ("dense_macs", "sops", "effective_ops", "nonzero_pairs")
FRACTION_COLUMNS = ("in_nonzero_fraction", "out_nonzero_fraction", "operand_density")

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
# Optional (version 3), GEMM rows only: (samples kept, timesteps, gemm_groups, gemm_m).
SAMPLE_ROW_EVENTS_ARRAY = "sample_row_events"

# Layer columns renamed in version 2: old name -> new name.
V1_RENAMED_COLUMNS = {"in_firing_rate": "in_nonzero_fraction",
                      "out_firing_rate": "out_nonzero_fraction"}


def upgrade(manifest: Mapping[str, Any], layers: pd.DataFrame
            ) -> tuple[Mapping[str, Any], pd.DataFrame]:
    """A trace of an older readable schema version in the current one (others unchanged).

    1 -> 2 renames two columns; 2 -> 3 adds only an optional array (nothing to change).
    """
    version = manifest.get("schema_version") if isinstance(manifest, Mapping) else None
    if version not in (1, 2) or not isinstance(layers, pd.DataFrame):
        return manifest, layers
    if version == 1:
        layers = layers.rename(columns=V1_RENAMED_COLUMNS)
    return {**manifest, "schema_version": SCHEMA_VERSION}, layers
