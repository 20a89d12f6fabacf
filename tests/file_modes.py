"""Checking that written files and folders have the modes the user's umask gives.

Every writer must end like `open()` and `mkdir()` would: files 0666 & ~umask, folders
0777 & ~umask (0644/0755 under umask 022, 0600/0700 under 077). Tests set the umask with
`umask(mask)`, write, and `assert_umask_modes(root, mask)` walks everything under `root`
(hidden entries such as the sweep lock file included).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

UMASKS = (0o022, 0o077)


@contextlib.contextmanager
def umask(mask: int):
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def wrong_modes(root: Path, mask: int) -> list[str]:
    """`path: mode (expected ...)` for every entry under `root` (and root) that differs."""
    root = Path(root)
    entries = [root, *root.rglob("*")] if root.is_dir() else [root]
    wrong = []
    for path in entries:
        mode = stat.S_IMODE(path.lstat().st_mode)
        expected = (0o777 if path.is_dir() else 0o666) & ~mask
        if mode != expected:
            wrong.append(f"{path}: {oct(mode)} (expected {oct(expected)})")
    return wrong


def assert_umask_modes(root: Path, mask: int) -> None:
    wrong = wrong_modes(root, mask)
    assert not wrong, "\n".join(wrong)
