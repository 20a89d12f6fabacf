"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Used for every output the tool writes (traces, checkpoints, sweep results, LTH rounds,
reports, plots), so an interrupted run never leaves a truncated file behind. Every file and
folder written here ends with the modes the user's umask gives (read at write time, not at
import), as `open()` and `mkdir()` would: temporary files and folders from `tempfile` are
private (0600/0700) until they are moved into place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def current_umask() -> int:
    """The process's umask now (POSIX offers no read-only call: set it and set it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def umask_file_mode() -> int:
    """The mode `open(path, "w")` would give a new file: 0666 less the umask."""
    return 0o666 & ~current_umask()


def umask_dir_mode() -> int:
    """The mode `mkdir` would give a new folder: 0777 less the umask."""
    return 0o777 & ~current_umask()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it over `target` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, umask_file_mode())  # mkstemp makes 0600; outputs are ordinary files
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_with(target: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """Call `writer(tmp_path)` and move the result into place atomically."""
    with atomic_path(target) as tmp:
        writer(tmp)


def replace_directory(target: Path, fill: Callable[[Path], None],
                      refuse: Callable[[Path], None] = lambda target: None) -> Path:
    """Fill a fresh sibling folder with `fill(folder)`, then swap it in for `target`, so
    readers never see a partial folder. The old `target` (if any) is deleted only once the
    new one is in place; a failure leaves it where it was.

    Args:
        target: the folder to create or replace.
        fill: writes the folder's contents.
        refuse: raises if an existing `target` is not ours to replace (called before filling
            and again just before the swap).

    Raises:
        FileExistsError: `target` exists and is not a directory (or `refuse` says so).
    """
    _refuse_existing(target, refuse)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        os.chmod(staging, umask_dir_mode())  # mkdtemp makes 0700: collaborators could not read
        fill(staging)
        if target.exists() or target.is_symlink():
            _refuse_existing(target, refuse)  # it may have appeared while we filled
            _swap_in(staging, target)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _refuse_existing(target: Path, refuse: Callable[[Path], None]) -> None:
    # A file or a dangling link at the target is someone's data, never ours to replace.
    if (target.exists() or target.is_symlink()) and not target.is_dir():
        raise FileExistsError(f"{target}: exists and is not a directory; "
                              "not replacing it (choose another path or remove it)")
    refuse(target)


def _swap_in(staging: Path, target: Path) -> None:
    """Move the old folder aside, the new one in, then delete the old; undo on failure."""
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    try:
        os.replace(target, retired / "old")
    except BaseException:
        retired.rmdir()
        raise
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(retired / "old", target)  # the old folder stays where it was
        retired.rmdir()
        raise
    shutil.rmtree(retired, ignore_errors=True)
