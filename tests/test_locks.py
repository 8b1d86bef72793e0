"""etl/locks.py: the one home of file locks and pid checks (issue 10, item 8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from etl.locks import FileLock, file_lock, pid_alive, try_lock

_HOLD = """
import sys, pathlib
from etl.locks import FileLock
lock = FileLock(pathlib.Path(sys.argv[1]), record_pid=True)
assert lock.acquire(timeout=0)
print("held", flush=True)
sys.stdin.readline()
"""


def test_pid_alive_tells_running_dead_and_zombie_processes() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(0)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    # Until it is reaped, an exited child is a zombie: dead for our purposes.
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    assert not pid_alive(child.pid)
    child.wait()
    assert not pid_alive(child.pid)


def test_a_second_process_is_refused_and_can_name_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "job.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"  # a line on a pipe, not a sleep
        other = FileLock(path, record_pid=True)
        assert not other.acquire(timeout=0)
        assert other.holder() == holder.pid
        assert try_lock(path) is None
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()
    # The lock died with its process: free again, and this process's pid is written.
    again = try_lock(path, record_pid=True)
    assert again is not None
    assert again.holder() == os.getpid()
    again.release()


def test_blocking_and_timed_acquire_in_one_process(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with file_lock(path, timeout=None) as lock:
        assert lock.held
        # flock is per open file: a second descriptor in the same process is refused too.
        assert not FileLock(path).acquire(timeout=0.05)
    assert not lock.held
    with file_lock(path, timeout=0):
        pass


def test_timeout_raises_a_lake_error(tmp_path: Path) -> None:
    from etl.errors import LakeError

    path = tmp_path / "busy.lock"
    first = try_lock(path)
    assert first is not None
    with pytest.raises(LakeError, match="stayed busy"), file_lock(path, timeout=0.05):
        pass
    first.release()
