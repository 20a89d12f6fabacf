"""How a sweep spec names its traces (model variants), and how they are built once.

A spec's `traces:` list holds entries of three forms:

```yaml
traces:
  - runs/demo/traces/dense                 # a recorded trace directory (relative to the spec)
  - name: pruned
    path: runs/demo/traces/pruned
    accuracy: 0.93                         # optional: overrides the manifest's accuracy
  - name: codesigned
    synthetic:
      preset: spikformer_4_384_cifar10     # shapes of a model preset (meta-device forward)
      # or layer_shapes: shapes.csv        # a CSV (or inline list) of trace.SHAPE_COLUMNS
      firing_rate: 0.15                    # each of these three may be a list: one trace per
      weight_density: [1.0, 0.25, 0.1]     # combination, named e.g. `codesigned/wd0.25`
      keep_ratio: 0.7
      timesteps: 4                         # optional
      num_samples: 8                       # optional
      seed: 0                              # optional
    accuracy: 0.949                        # optional, for Pareto plots of synthetic variants
```

Every trace is built (or loaded) once in the main process and shipped to each worker once;
its identity in a point's key is the sha256 of its content, so a re-recorded trace is a new
point and an unchanged one resumes.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sparsespikformer.simulator.checks import check_fraction, check_int, check_text
from sparsespikformer.simulator.errors import InputError, SweepSpecError
from sparsespikformer.simulator.synthetic import SHAPE_COLUMNS, synthetic_trace
from sparsespikformer.simulator.trace import Trace

_ENTRY_KEYS = {"name", "path", "synthetic", "accuracy"}
_SYNTHETIC_KEYS = {"preset", "layer_shapes", "firing_rate", "weight_density", "keep_ratio",
                   "timesteps", "num_samples", "seed"}
_LISTABLE = (("firing_rate", "fr"), ("weight_density", "wd"), ("keep_ratio", "kr"))


@dataclass(frozen=True)
class TraceEntry:
    """One model variant of a sweep: a recorded trace directory or synthetic statistics."""

    name: str
    where: str  # "<spec file>: traces[i]" for error messages
    path: Path | None = None
    preset: str | None = None
    layer_shapes: tuple[Mapping[str, Any], ...] | Path | None = None
    firing_rate: float = 0.15
    weight_density: float = 1.0
    keep_ratio: float = 1.0
    timesteps: int | None = None
    num_samples: int = 8
    seed: int = 0
    accuracy: float | None = None


# ----------------------------------------------------------------------------- parsing


def parse_trace_entries(entries: Any, spec_path: Path) -> tuple[TraceEntry, ...]:
    """Validate a spec's `traces:` list; relative paths are taken from the spec's folder."""
    if not isinstance(entries, list) or not entries:
        raise SweepSpecError(f"{spec_path}: traces: expected a non-empty list")
    parsed: list[TraceEntry] = []
    for index, entry in enumerate(entries):
        parsed.extend(_parse_entry(entry, spec_path, f"{spec_path}: traces[{index}]"))
    seen: set[str] = set()
    for entry in parsed:
        if entry.name in seen:
            raise SweepSpecError(f"{entry.where}.name: duplicate trace name {entry.name!r}")
        seen.add(entry.name)
    return tuple(parsed)


def _parse_entry(entry: Any, spec_path: Path, where: str) -> list[TraceEntry]:
    if isinstance(entry, str):
        entry = {"path": entry}
    if not isinstance(entry, Mapping):
        raise SweepSpecError(f"{where}: expected a path or a mapping with `path` or `synthetic`")
    _check_keys(entry, _ENTRY_KEYS, "path", "synthetic", where)
    accuracy = _optional_fraction(entry.get("accuracy"), f"{where}.accuracy")
    if "path" in entry:
        path = _resolve_path(entry["path"], spec_path, f"{where}.path")
        name = _name(entry.get("name", path.name), f"{where}.name")
        return [TraceEntry(name=name, where=where, path=path, accuracy=accuracy)]
    return _parse_synthetic(entry, spec_path, where, accuracy)


def _check_keys(mapping: Mapping[str, Any], allowed: set[str], one: str, other: str,
                where: str) -> None:
    """Only `allowed` keys, and exactly one of `one` and `other`."""
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise SweepSpecError(f"{where}.{unknown[0]}: unknown key (allowed: {sorted(allowed)})")
    if (one in mapping) == (other in mapping):
        raise SweepSpecError(f"{where}: give exactly one of `{one}` or `{other}`")


def _parse_synthetic(entry: Mapping[str, Any], spec_path: Path, where: str,
                     accuracy: float | None) -> list[TraceEntry]:
    params = entry["synthetic"]
    here = f"{where}.synthetic"
    if not isinstance(params, Mapping):
        raise SweepSpecError(f"{here}: expected a mapping")
    _check_keys(params, _SYNTHETIC_KEYS, "preset", "layer_shapes", here)
    preset = params.get("preset")
    if preset is not None and (not isinstance(preset, str) or not preset):
        raise SweepSpecError(f"{here}.preset: expected a preset name")
    shapes = _parse_layer_shapes(params.get("layer_shapes"), spec_path, f"{here}.layer_shapes")
    common = {
        "preset": preset,
        "layer_shapes": shapes,
        "timesteps": _optional_int(params.get("timesteps"), f"{here}.timesteps", minimum=1),
        "num_samples": _optional_int(params.get("num_samples", 8), f"{here}.num_samples",
                                     minimum=1),
        "seed": _optional_int(params.get("seed", 0), f"{here}.seed", minimum=0),
        "accuracy": accuracy,
    }
    value_lists = []
    for key, _ in _LISTABLE:
        default = TraceEntry.__dataclass_fields__[key].default
        values = params.get(key, default)
        values = values if isinstance(values, list) else [values]
        if not values:
            raise SweepSpecError(f"{here}.{key}: empty list")
        allow_zero = key != "keep_ratio"
        value_lists.append([_fraction(v, f"{here}.{key}", allow_zero=allow_zero)
                            for v in values])
    base_name = _name(entry.get("name", preset or "synthetic"), f"{where}.name")
    varied = [len(values) > 1 for values in value_lists]
    entries = []
    for combo in itertools.product(*value_lists):
        suffix = "-".join(f"{short}{value:g}" for (_, short), value, vary
                          in zip(_LISTABLE, combo, varied, strict=True) if vary)
        name = f"{base_name}/{suffix}" if suffix else base_name
        entries.append(TraceEntry(name=name, where=where, firing_rate=combo[0],
                                  weight_density=combo[1], keep_ratio=combo[2], **common))
    return entries


def _parse_layer_shapes(value: Any, spec_path: Path, where: str):
    if value is None:
        return None
    if isinstance(value, str):
        return _resolve_path(value, spec_path, where)
    if isinstance(value, list) and value and all(isinstance(row, Mapping) for row in value):
        missing = [c for c in SHAPE_COLUMNS if c not in value[0]]
        if missing:
            raise SweepSpecError(f"{where}[0]: missing columns {missing}")
        return tuple(dict(row) for row in value)
    raise SweepSpecError(f"{where}: expected a CSV path or a list of layer mappings")


def _resolve_path(value: Any, spec_path: Path, where: str) -> Path:
    if not isinstance(value, str) or not value:
        raise SweepSpecError(f"{where}: expected a path string")
    path = Path(value).expanduser()
    return path if path.is_absolute() else (spec_path.parent / path)


def _name(value: Any, where: str) -> str:
    return check_text(value, where, allow_empty=False, error=SweepSpecError)


def _fraction(value: Any, where: str, *, allow_zero: bool) -> float:
    return check_fraction(value, where, allow_zero=allow_zero, error=SweepSpecError)


def _optional_fraction(value: Any, where: str) -> float | None:
    return None if value is None else _fraction(value, where, allow_zero=True)


def _optional_int(value: Any, where: str, *, minimum: int) -> int | None:
    return None if value is None else check_int(value, where, minimum=minimum,
                                                 error=SweepSpecError)


# ----------------------------------------------------------------------------- building


def build_trace(entry: TraceEntry) -> Trace:
    """Load or synthesise the trace an entry names (call once per entry, not per point)."""
    if entry.path is not None:
        try:
            trace = Trace.load(entry.path)
        except (InputError, OSError) as err:
            raise type(err)(f"{entry.where}.path: {err}") from None
    else:
        shapes, details = _layer_shapes(entry)
        if entry.keep_ratio < 1.0 and "kind" in shapes and (shapes["kind"] == "selector").any():
            # the shapes already have the selectors' token counts: do not drop tokens twice
            raise SweepSpecError(f"{entry.where}.synthetic.keep_ratio: these layer shapes already "
                             "contain token selectors; give keep_ratio with a model without "
                             "them (e.g. spikformer_* instead of sparsespikformer_*)")
        timesteps = entry.timesteps
        if timesteps is None:
            timesteps = int(shapes["timesteps"].max()) if "timesteps" in shapes else 4
        try:
            trace = synthetic_trace(
                shapes, firing_rate=entry.firing_rate, weight_density=entry.weight_density,
                keep_ratio=entry.keep_ratio, timesteps=timesteps,
                num_samples=entry.num_samples, seed=entry.seed, preset=entry.preset or "",
                input_shape=details.get("input_shape", ()),
                model_config=details.get("model_config"))
        except InputError as err:
            raise SweepSpecError(f"{entry.where}.synthetic: {err}") from None
    if entry.accuracy is not None:
        trace = replace(trace, manifest={**trace.manifest, "accuracy": entry.accuracy})
    return trace


def _layer_shapes(entry: TraceEntry) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Shape columns, plus the manifest details a preset provides (model config, input)."""
    if entry.preset is not None:
        return preset_layer_shapes(entry.preset, f"{entry.where}.synthetic.preset")
    if isinstance(entry.layer_shapes, Path):
        try:
            return pd.read_csv(entry.layer_shapes), {}
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise SweepSpecError(f"{entry.where}.synthetic.layer_shapes: {entry.layer_shapes}: "
                             f"unreadable CSV ({err})".replace("\n", " ")) from None
    return pd.DataFrame(list(entry.layer_shapes or ())), {}


@functools.lru_cache(maxsize=32)
def _cached_preset_shapes(preset: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    import torch

    from sparsespikformer.model import create_model
    from sparsespikformer.model.tracing.record import layer_shapes

    with torch.device("meta"):  # shapes only: no weights allocated or initialised
        model = create_model(preset)
    config = model.config
    input_shape = (int(config.in_channels), int(config.img_size), int(config.img_size))
    details = {"model_config": dataclasses.asdict(config), "input_shape": list(input_shape)}
    return layer_shapes(model, input_shape), details


def preset_layer_shapes(preset: str, where: str = "preset") -> tuple[pd.DataFrame, dict]:
    """A preset's layer shapes from a forward pass on the meta device (imports torch, once
    per preset: only specs that name a preset pay for it)."""
    try:
        shapes, details = _cached_preset_shapes(preset)
    except ImportError as err:
        raise SweepSpecError(f"{where}: presets need the model package ({err}); "
                         "use `layer_shapes:` instead") from None
    except (KeyError, ValueError) as err:
        raise SweepSpecError(f"{where}: {err}") from None
    return shapes.copy(), dict(details)


# ----------------------------------------------------------------------------- identity


def trace_content_hash(trace: Trace) -> str:
    """sha256 of everything the simulator can see: manifest, layer table and arrays."""
    digest = hashlib.sha256()
    digest.update(canonical_json(trace.manifest).encode("utf-8"))
    digest.update(trace.layers.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    for layer in sorted(trace.arrays):
        for name in sorted(trace.arrays[layer]):
            array = np.ascontiguousarray(trace.arrays[layer][name])
            digest.update(f"{layer}/{name}|{array.dtype.str}|{array.shape}".encode("utf-8"))
            digest.update(array.tobytes())
    return digest.hexdigest()


def trace_metadata(trace: Trace, *, accuracy_given: bool = False) -> dict[str, Any]:
    """The trace columns of a sweep's results table. `accuracy_samples` is the number of
    images the manifest's accuracy was measured on (NaN when the spec gave the accuracy by
    hand, `accuracy_given`, or there is none)."""
    manifest = trace.manifest
    keep_ratios = manifest.get("keep_ratios") or []
    accuracy = manifest.get("accuracy")
    measured = accuracy is not None and not accuracy_given
    return {
        "preset": manifest.get("preset", ""),
        "trace_source": manifest.get("source", ""),
        "accuracy": float("nan") if accuracy is None else float(accuracy),
        "accuracy_samples": int(manifest.get("num_samples", 0)) if measured else float("nan"),
        "weight_sparsity": float(manifest.get("weight_sparsity", 0.0)),
        "keep_ratio": float(keep_ratios[0]) if keep_ratios else 1.0,
        "selector_scorer": manifest.get("selector_scorer") or "",
        "mean_in_nonzero_fraction": mean_in_nonzero_fraction(trace.layers),
        "timesteps": int(manifest.get("timesteps", 0)),
    }


def mean_in_nonzero_fraction(layers: pd.DataFrame) -> float:
    """Fraction of non-zero inputs of the spike and spike-sum layers, weighted by their input
    elements over all timesteps (the sweep column `mean_in_nonzero_fraction`)."""
    spiking = layers[layers["in_value_kind"].isin(("spike", "integer"))]
    weights = spiking["in_numel"] * spiking["timesteps"]
    total = float(weights.sum())
    weighted = float((spiking["in_nonzero_fraction"] * weights).sum())
    return weighted / total if total else float("nan")


def canonical_json(value: Any) -> str:
    """One byte string per value: sorted keys, no spaces, plain Python scalars."""
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=True)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


__all__ = ["TraceEntry", "parse_trace_entries", "build_trace", "trace_content_hash",
           "trace_metadata", "mean_in_nonzero_fraction", "canonical_json"]
