"""Filesystem primitives atomicity rests on: fsync, atomic replace, directory swap.

A partition is swapped in one system call (``renameat2(RENAME_EXCHANGE)`` on Linux), so a
reader sees either the whole old partition or the whole new one, never a mix: no row twice,
none missing. Where the kernel or filesystem cannot exchange, the fallback is two renames,
and the short window between them is documented in the README.

Every stage writes files this way (the lake, task records, the governor's state, caches), so
the module sits beside :mod:`etl.errors` rather than inside one of them.

A replacement is written under a temporary sibling name, ``.<name>.<pid>-<random>.tmp``, and
renamed over the file. A writer killed mid-write leaves that sibling behind; the pid in its
name lets a later write of the same file know it is dead and remove it (see
:func:`_sweep_dead`), so kills leave no litter that grows. Nothing reads the siblings as
data: every listing of the lake, the tasks and the state picks names by their suffix
(``.parquet``, ``.json``, ``.arrow``), which a ``.tmp`` never has.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import glob
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from etl.locks import pid_alive

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

# `.<name>.<pid>-<8 hex>.tmp`, and a library's side file beside it (DuckDB's `.wal`). The
# middle part has no dot, so a name parses one way: another file's sibling never passes
# for this one's (`.a.b.1-…tmp` is `a.b`'s, never `a`'s).
_SIBLING: Final = re.compile(r"\.(.+)\.(\d+)-[0-9a-f]{8}\.tmp(?:\.[A-Za-z0-9_]+)?")
# A folder's listing is reused for at least this long, and for at least this many times
# what taking it cost: a folder of 10,000 entries (a data root's tasks/) takes ~5 ms to
# list, once per half second at most; a small one ~10 us, once per second.
_RELIST_MIN_SECONDS: Final = 1.0
_RELIST_COST_FACTOR: Final = 100.0
_FOLDERS_KEPT: Final = 1024


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


class _Listing:
    """The temporary siblings one folder held when it was last listed, by the file they
    replace: names only, so its size is that of the leftovers, not of the folder."""

    __slots__ = ("cost", "siblings", "taken")

    def __init__(self, folder: Path) -> None:
        start = time.monotonic()
        names = os.listdir(folder)  # noqa: PTH208 - names only, the cheapest listing
        self.siblings: dict[str, list[tuple[int, str]]] = {}
        for name in names:
            if name[0] == "." and ".tmp" in name and (found := _SIBLING.fullmatch(name)):
                self.siblings.setdefault(found[1], []).append((int(found[2]), name))
        self.taken = time.monotonic()
        self.cost = self.taken - start

    def stale(self, now: float) -> bool:
        return now - self.taken > max(_RELIST_MIN_SECONDS, _RELIST_COST_FACTOR * self.cost)


_listings: dict[Path, _Listing] = {}
_listings_lock = threading.Lock()
# A child forked while another thread lists a folder would inherit the lock taken, for ever.
os.register_at_fork(
    before=_listings_lock.acquire,
    after_in_parent=_listings_lock.release,
    after_in_child=_listings_lock.release,
)


def _sweep_dead(path: Path) -> None:
    """Remove the temporary siblings of ``path`` whose writer is dead (killed mid-write), and
    the side files a library left beside them; never a live writer's, never another file's.

    Cheap enough for every write: the folder's listing is reused while it costs under 1% of
    the time (see ``_RELIST_*``), and a write of a path without leftovers then costs a dict
    lookup. A sibling that appeared since the listing waits for the next one. Writers of one
    data root share a pid namespace (the task records' liveness rests on that too)."""
    folder = path.parent
    now = time.monotonic()
    with _listings_lock:
        listing = _listings.get(folder)
        if listing is None or listing.stale(now):
            if len(_listings) >= _FOLDERS_KEPT:
                _listings.clear()
            try:
                listing = _listings[folder] = _Listing(folder)
            except OSError:
                return
        found = listing.siblings.get(path.name)
        if not found:
            return
        keep = []
        for pid, name in found:
            if pid_alive(pid):
                keep.append((pid, name))
            else:  # best effort: litter that cannot go (a sticky folder) never fails a write
                with contextlib.suppress(OSError):
                    (folder / name).unlink()
        if keep:
            listing.siblings[path.name] = keep
        else:
            del listing.siblings[path.name]


def _temporary(path: Path) -> Path:
    """A new temporary sibling of ``path``, named after this process (see the module doc)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data``: write a temporary sibling, fsync, rename over. Readers
    see the old content or the new, never a part. ``durable=False`` skips the fsyncs, for
    soft state rewritten many times a second (the rate governor's counts): still never torn,
    but a power cut may bring back an older version. What a killed writer of ``path`` left
    is removed first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_dead(path)
    tmp = _temporary(path)
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
    :func:`atomic_write_bytes` and :func:`atomic_target` give, and those older versions gave
    without a pid). Only the caller knows that no live writer owns one (it holds the lock
    every writer of ``path`` takes)."""
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
    a power cut leaves the old file or the whole new one. What a killed writer of ``path``
    left (with its ``leftovers``) is removed first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_dead(path)
    tmp = _temporary(path)
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
