"""Lazy package exports: a package's public names are imported on first attribute access.

Used by the package ``__init__`` files whose submodules pull in heavy dependencies (torch,
matplotlib), so that `import sparsespikformer.analysis.cli` stays cheap. Each package keeps a
``TYPE_CHECKING`` import block beside its map so that editors and type checkers see the names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]
                 ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """Module-level ``__getattr__`` and ``__dir__`` for `package`.

    Args:
        package: the package's ``__name__``.
        exports: public name -> submodule path relative to `package` (e.g. ``"nn.lif"``).

    Returns:
        ``(__getattr__, __dir__)`` to assign in the package's namespace. ``__getattr__``
        raises AttributeError for names not in `exports`.
    """
    def getattr_(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(f"{package}.{exports[name]}")
        value = getattr(module, name)
        setattr(importlib.import_module(package), name, value)
        return value

    def dir_() -> list[str]:
        return sorted(set(vars(importlib.import_module(package))) | set(exports))

    return getattr_, dir_
