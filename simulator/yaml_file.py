"""Reading a YAML file (hardware configs, sweep specs): `yaml.safe_load` only, and errors as
one line naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml(path: Path) -> Any:
    """The file's YAML document; ValueError naming `path` if it is not UTF-8 YAML."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: invalid YAML ({err})".replace("\n", " ")) from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None
