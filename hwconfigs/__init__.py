"""Bundled accelerator configs (`*.yaml`) and sweep specs (`sweeps/*.yaml`).

Configs are found by name (`sparse_int8_45nm`) or by path; this module only lists and
resolves them. `sparsespikformer.simulator.config.load_hwconfig` reads and validates them.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

DEFAULT_HWCONFIG = "sparse_int8_45nm"


def bundled_dir() -> Path:
    return Path(str(resources.files(__name__)))


def list_hwconfigs() -> list[str]:
    """Names of the bundled hardware configs, sorted."""
    return sorted(p.stem for p in bundled_dir().glob("*.yaml"))


def list_sweeps() -> list[str]:
    """Names of the bundled sweep specs, sorted."""
    return sorted(p.stem for p in (bundled_dir() / "sweeps").glob("*.yaml"))


def hwconfig_path(name: str) -> Path:
    """Path of a bundled config by name; ValueError naming the choices if there is none."""
    # Imported here: the simulator package imports this module while it initialises, so a
    # top-level import would make `import sparsespikformer.hwconfigs` alone circular.
    from sparsespikformer.simulator.errors import InputError

    path = bundled_dir() / f"{name}.yaml"
    if not path.is_file():
        raise InputError(f"{name}: no bundled hardware config of that name "
                         f"(bundled: {', '.join(list_hwconfigs())})")
    return path


def resolve_hwconfig(name_or_path: str | os.PathLike) -> Path:
    """A bundled name (`sparse_int8_45nm`) or a path to a YAML file -> the file's path."""
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    looks_like_path = path.suffix in (".yaml", ".yml") or os.sep in text or "/" in text
    if looks_like_path:
        if not path.is_file():
            raise FileNotFoundError(f"{text}: hardware config file not found")
        return path
    if path.is_file():  # a bare file name in the working directory
        return path
    return hwconfig_path(text)


__all__ = ["DEFAULT_HWCONFIG", "bundled_dir", "list_hwconfigs", "list_sweeps", "hwconfig_path",
           "resolve_hwconfig"]
