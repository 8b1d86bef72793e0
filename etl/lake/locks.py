"""Advisory file locks shared by every process using the same data root.

``flock`` locks die with their process, so a writer killed with SIGKILL never leaves a
partition locked, and "can I take the lock?" doubles as "is anyone still working on it?".
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from etl.errors import LakeError

__all__ = ["FileLock", "file_lock", "try_lock"]


class FileLock:
    """An exclusive ``flock`` on ``path`` (created if needed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, timeout: float | None = None, poll: float = 0.02) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(poll)
                continue
            self._fd = fd
            return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


@contextmanager
def file_lock(path: Path, timeout: float = 600.0) -> Iterator[FileLock]:
    """Hold ``path``'s lock for the block; a LakeError if it stays busy for ``timeout`` s."""
    lock = FileLock(path)
    if not lock.acquire(timeout=timeout):
        raise LakeError(f"lock {path.name} stayed busy for {timeout:.0f} s", path=str(path))
    try:
        yield lock
    finally:
        lock.release()


def try_lock(path: Path) -> FileLock | None:
    """The lock if it is free right now, else None."""
    lock = FileLock(path)
    return lock if lock.acquire(timeout=0) else None
