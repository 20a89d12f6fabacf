"""Reading a YAML file (hardware configs, sweep specs): `yaml.safe_load` only, and errors as
one line naming the file.

A key written twice in one mapping is an error: `safe_load` keeps the last value, so a
second `clock_mhz:` would silently win over the first. The check walks the composed node
tree (`yaml.compose`: parsing only, no object is ever constructed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sparsespikformer.simulator.errors import InputError

_MERGE_TAG = "tag:yaml.org,2002:merge"


def read_yaml(path: Path) -> Any:
    """The file's YAML document; ValueError naming `path` if it is not UTF-8 YAML or if a
    mapping repeats a key."""
    try:
        text = path.read_text(encoding="utf-8")
        document = yaml.safe_load(text)
        duplicate = _first_duplicate_key(yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as err:
        raise InputError(f"{path}: invalid YAML ({err})".replace("\n", " ")) from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    if duplicate is not None:
        raise InputError(f"{path}: {duplicate}")
    return document


def _first_duplicate_key(node: yaml.Node | None) -> str | None:
    """'line N: duplicate key K (first on line M)' for the first repeated scalar key."""
    pending, seen_nodes = [node], set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen_nodes:  # aliases share nodes
            continue
        seen_nodes.add(id(current))
        if isinstance(current, yaml.MappingNode):
            first_lines: dict[str, int] = {}
            for key, value in current.value:
                # `<<` merges are not keys; a key that overrides a merged one is fine.
                if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG:
                    line = key.start_mark.line + 1
                    if key.value in first_lines:
                        return (f"line {line}: duplicate key {key.value!r} "
                                f"(first on line {first_lines[key.value]})")
                    first_lines[key.value] = line
                pending.extend((key, value))
        elif isinstance(current, yaml.SequenceNode):
            pending.extend(current.value)
    return None
