"""What makes two sweep points the same point: the key each result is stored under.

A point's key is the sha256 of the hardware it runs on, written as the complete validated
config (every key of the base config, the swept values put in, each value as the config
validates it), and of the trace's content. So two spellings of one hardware point share one
key: `clock_mhz: 500` and `500.0` (the config stores a float either way), a value reached
by a `range`, a `log2` or a list, a value swept that the base already has, or two bases
that differ only in their `name` or `description`. Each swept value is validated once per
base (`normalise_value`); a point is then a dictionary merge, not a full validation.

Key versions: sweep folders written before version 2 keyed a point by the base's name, the
hash of the base and the overrides *as written*. `migrate_legacy_keys` re-keys such rows
the first time the folder is resumed, so none of them runs again.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sparsespikformer.analysis.sweeps.traces import canonical_json

POINT_KEY_VERSION = 2
# Documentation, not hardware: bases that differ only here are the same hardware point.
DOCUMENTATION_KEYS = ("name", "description")

Overrides = Sequence[tuple[str, Any]]


def number_identity(value: Any) -> Any:
    """The value as it compares: every non-bool number as a float (500 and 500.0 are one
    value), `True` apart from `1`, anything else unchanged. Only for identities, never for
    what a config receives."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return float(value)


def hardware_config(base_values: Mapping[str, Any], overrides: Overrides) -> dict[str, Any]:
    """The base's resolved values with each dotted override set (already normalised)."""
    config = copy.deepcopy(dict(base_values))
    for dotted, value in overrides:
        *parents, last = dotted.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    for key in DOCUMENTATION_KEYS:
        config.pop(key, None)
    return config


def hardware_identity(config: Mapping[str, Any]) -> str:
    """sha256 of a hardware config's canonical JSON, numbers compared as numbers."""
    return _sha256({"hardware": _numbers_as_values(config)})


def point_key(*, hardware: str, trace_identity: str) -> str:
    """sha256 of the canonical JSON of a point: its hardware identity and its trace's content
    hash (`trace_content_hash`), so a re-recorded trace or an edited base is a new point."""
    return _sha256({"hardware_sha256": hardware, "trace_sha256": trace_identity,
                    "version": POINT_KEY_VERSION})


def legacy_point_key(*, base: str, base_identity: str, overrides: Overrides,
                     trace_identity: str) -> str:
    """The key of version 1 (before number identity): the base's label and content hash and
    the overrides as written, so `500` and `500.0` were two points."""
    return _sha256({"base": base, "base_sha256": base_identity, "overrides": dict(overrides),
                    "trace_sha256": trace_identity})


def _sha256(payload: Any) -> str:
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def _numbers_as_values(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _numbers_as_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_numbers_as_values(v) for v in value]
    return number_identity(value)


# ----------------------------------------------------------------------------- normalising


class ValueNormaliser:
    """Each (base, dotted key, value) validated once: `normalise(base, key, value)` gives
    the value as the validated config holds it (`500` -> `500.0` for `clock_mhz`). A value
    the config rejects on its own stays as written: its points become error rows anyway."""

    def __init__(self, normalise_value: Callable[[Any, str, Any], Any],
                 bases: Mapping[str, Any]) -> None:
        self._normalise_value = normalise_value
        self._bases = bases
        self._cache: dict[tuple[str, str, Any], Any] = {}

    def __call__(self, base: str, dotted: str, value: Any) -> Any:
        cache_key = (base, dotted, type(value).__name__ == "bool", value)
        if cache_key not in self._cache:
            try:
                self._cache[cache_key] = self._normalise_value(self._bases[base], dotted, value)
            except ValueError:  # InputError included: rejected on its own
                self._cache[cache_key] = value
        return self._cache[cache_key]


# ----------------------------------------------------------------------------- migration


def legacy_key_map(points: Iterable[tuple[str, str]], stored: Iterable[str]
                   ) -> dict[str, str]:
    """{legacy key: new key} for every (legacy, new) pair whose legacy key is stored and
    whose new key is not; a new key claimed twice (500 and 500.0 stored under two legacy
    keys) takes the first."""
    stored = set(stored)
    mapping: dict[str, str] = {}
    claimed: set[str] = set()
    for legacy, new in points:
        if legacy in stored and new not in stored and new not in claimed:
            mapping[legacy] = new
            claimed.add(new)
    return mapping


__all__ = ["POINT_KEY_VERSION", "DOCUMENTATION_KEYS", "number_identity", "hardware_config",
           "hardware_identity", "point_key", "legacy_point_key", "ValueNormaliser",
           "legacy_key_map"]
