"""A thread that cannot write a file: the kernel's guarantee behind ``etl sql``'s read-only.

DuckDB's own confinement (``enable_external_access`` with ``allowed_directories``) opens the
allowed directories for writing as much as for reading, so a ``COPY ... TO`` inside an
allowed directory would rewrite the lake. Linux's Landlock (kernel 5.13 and later, no
privileges needed) closes that by construction: a thread that restricts itself can no
longer create, write, truncate, rename or remove any file or directory anywhere, and every
thread it starts inherits the restriction. DuckDB's worker threads are started by the
connection that the confined thread opens, so all of a query's work runs confined.

Reads are not restricted here (Python may import modules lazily in that thread); which
files a query may read is DuckDB's ``allowed_directories``' business.

Where Landlock is missing (macOS, older kernels, a seccomp filter that blocks it),
:func:`confine_current_thread` returns ``None`` and the caller relies on DuckDB's
confinement and the statement check alone (the README says so).
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
from typing import Final

__all__ = ["confine_current_thread", "landlock_abi"]

# Syscall numbers are the same on every Linux architecture (added together in 5.13).
_CREATE_RULESET: Final = 444
_RESTRICT_SELF: Final = 446
_CREATE_RULESET_VERSION: Final = 1
_PR_SET_NO_NEW_PRIVS: Final = 38

# LANDLOCK_ACCESS_FS_* bits (include/uapi/linux/landlock.h): everything that changes a file
# system. Reading files and directories, and executing, stay allowed.
_WRITE_FILE: Final = 1 << 1
_REMOVE_DIR: Final = 1 << 4
_REMOVE_FILE: Final = 1 << 5
_MAKE_ALL: Final = sum(1 << bit for bit in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
_REFER: Final = 1 << 13  # ABI 2: link or rename a file into another directory
_TRUNCATE: Final = 1 << 14  # ABI 3
_NET_BIND_TCP: Final = 1 << 0  # ABI 4: handled_access_net
_NET_CONNECT_TCP: Final = 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
    )


def _libc() -> ctypes.CDLL | None:
    if platform.system() != "Linux":
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


@functools.cache
def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 where Landlock is unavailable."""
    libc = _libc()
    if libc is None:
        return 0
    version = int(libc.syscall(_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION))
    return max(version, 0)


def confine_current_thread() -> int | None:
    """Forbid this thread (and the threads it starts) every file system change and every
    TCP connection. Returns the Landlock ABI in force, or None where it is unavailable."""
    libc = _libc()
    abi = landlock_abi()
    if libc is None or abi < 1:
        return None
    fs = _WRITE_FILE | _REMOVE_DIR | _REMOVE_FILE | _MAKE_ALL
    if abi >= 2:
        fs |= _REFER
    if abi >= 3:
        fs |= _TRUNCATE
    net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0
    attr = _RulesetAttr(fs, net)
    size = ctypes.sizeof(attr) if abi >= 4 else ctypes.sizeof(ctypes.c_uint64)
    fd = int(libc.syscall(_CREATE_RULESET, ctypes.byref(attr), size, 0))
    if fd < 0:
        return None
    try:
        # Required of unprivileged callers; it only stops set-uid programs gaining rights.
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return None
        # No rule is added: no path is granted any of the handled rights.
        if int(libc.syscall(_RESTRICT_SELF, fd, 0)) != 0:
            return None
    finally:
        os.close(fd)
    return abi
