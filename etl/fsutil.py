"""Filesystem primitives atomicity rests on: fsync, atomic replace, directory swap.

A partition is swapped in one system call (``renameat2(RENAME_EXCHANGE)`` on Linux), so a
reader sees either the whole old partition or the whole new one, never a mix: no row twice,
none missing. Where the kernel or filesystem cannot exchange, the fallback is two renames,
and the short window between them is documented in the README.

Every stage writes files this way (the lake, task records, the governor's state, caches), so
the module sits beside :mod:`etl.errors` rather than inside one of them.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import glob
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

__all__ = [
    "atomic_leftovers",
    "atomic_target",
    "atomic_write_bytes",
    "exchange_dirs",
    "fsync_dir",
    "remove_tree",
]

_AT_FDCWD: Final = -100
_RENAME_EXCHANGE: Final = 2


def _load_renameat2() -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


_renameat2 = _load_renameat2()


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (created, renamed, removed names) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data``: write a temporary sibling, fsync, rename over. Readers
    see the old content or the new, never a part. ``durable=False`` skips the fsyncs, for
    soft state rewritten many times a second (the rate governor's counts): still never torn,
    but a power cut may bring back an older version."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_leftovers(path: Path) -> list[Path]:
    """The temporary siblings of ``path`` that writers killed mid-write left (the names
    :func:`atomic_write_bytes` and :func:`atomic_target` give). Only the caller knows that
    no live writer owns one (it holds the lock every writer of ``path`` takes)."""
    if not path.parent.is_dir():
        return []
    return sorted(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))


@contextmanager
def atomic_target(
    path: Path, *, leftovers: tuple[str, ...] = (), durable: bool = False
) -> Iterator[Path]:
    """A temporary sibling of ``path`` for a library to write (pyarrow, DuckDB); when the
    block ends without an error it replaces ``path`` in one rename, else it is removed.
    ``leftovers``: suffixes of side files the library may leave beside it (``".wal"``).
    ``durable``: the written file is fsynced before the rename and the folder after it, so
    a power cut leaves the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        tmp.replace(path)
        if durable:
            fsync_dir(path.parent)
    finally:
        for suffix in ("", *leftovers):
            tmp.with_name(tmp.name + suffix).unlink(missing_ok=True)


def exchange_dirs(new: Path, current: Path) -> bool:
    """Atomically swap two existing directories; afterwards ``new`` holds the old content.

    Returns False when the system cannot exchange (then the caller falls back to renames).
    """
    if _renameat2 is None:
        return False
    result = _renameat2(
        _AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(current), _RENAME_EXCHANGE
    )
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(current))


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
