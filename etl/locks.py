"""Advisory file locks shared by every process using the same data root, and pid checks.

``flock`` locks die with their process, so a writer killed with SIGKILL never leaves a
partition, a task, a job or the scheduler locked, and "can I take the lock?" doubles as "is
anyone still working on it?". A lock taken with ``record_pid`` also writes its holder's pid
inside, so a refusal can name the process (``a scheduler already runs, pid 4242``); the pid is
only for messages, never for deciding who holds the lock.

Every stage uses this module (the lake's partitions, task records, the rate governor, the
scheduler), so it sits beside :mod:`etl.errors` rather than inside one of them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from etl.errors import LakeError

__all__ = ["FileLock", "file_lock", "pid_alive", "process_started", "try_lock"]


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs. A zombie (killed, not yet reaped by its parent) counts as
    dead: it will never release anything or make another request."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def process_started(pid: int) -> str | None:
    """When process ``pid`` started, as an opaque token (the boot's id and the start time in
    clock ticks since boot, from ``/proc``), or None where the system does not say. A pid
    alive with another token is a reused pid: the process that wrote it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return f"{boot}:{fields[19]}" if len(fields) > 19 else None  # field 22 of stat


class FileLock:
    """An exclusive ``flock`` on ``path`` (created if needed)."""

    def __init__(self, path: Path, *, record_pid: bool = False) -> None:
        self.path = path
        self.record_pid = record_pid
        self._fd: int | None = None

    def acquire(self, timeout: float | None = None, poll: float = 0.02) -> bool:
        """Take the lock: wait for it (``timeout=None``: as long as it takes, in the kernel),
        or give up after ``timeout`` seconds (0: at once) and return False."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if timeout is None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            else:
                deadline = time.monotonic() + timeout
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            os.close(fd)
                            return False
                        time.sleep(poll)
            if self.record_pid:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        self._fd = fd
        return True

    def holder(self) -> int | None:
        """The pid the current holder wrote (``record_pid``); None if none is readable."""
        with contextlib.suppress(OSError, ValueError):
            return int(self.path.read_text().strip())
        return None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


@contextmanager
def file_lock(path: Path, timeout: float | None = 600.0) -> Iterator[FileLock]:
    """Hold ``path``'s lock for the block; a LakeError if it stays busy for ``timeout`` s
    (``None``: wait in the kernel as long as it takes; for locks held for microseconds)."""
    lock = FileLock(path)
    if not lock.acquire(timeout=timeout):
        raise LakeError(f"lock {path.name} stayed busy for {timeout:.0f} s", path=str(path))
    try:
        yield lock
    finally:
        lock.release()


def try_lock(path: Path, *, record_pid: bool = False) -> FileLock | None:
    """The lock if it is free right now, else None."""
    lock = FileLock(path, record_pid=record_pid)
    return lock if lock.acquire(timeout=0) else None
