"""etl/fsutil.py: atomic writes leave no litter that grows when their writers are killed.

Writers here are real processes, paused at the one point that matters: their temporary file
is written and not yet renamed (an audit hook on ``os.rename`` says so on stdout and waits
for a line on stdin). The test then kills one with SIGKILL, or leaves it waiting (alive).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from etl.fsutil import atomic_leftovers, atomic_target, atomic_write_bytes

_WRITER = """
import pathlib, sys
from etl.fsutil import atomic_target, atomic_write_bytes

def pause_before_rename(event, args):
    if event == "os.rename" and str(args[0]).endswith(".tmp"):
        print(args[0], flush=True)
        sys.stdin.readline()

sys.addaudithook(pause_before_rename)
api, path = sys.argv[1], pathlib.Path(sys.argv[2])
if api == "bytes":
    atomic_write_bytes(path, b"child" * 100_000)
else:  # a library writing through atomic_target, with a side file as DuckDB leaves one
    with atomic_target(path, leftovers=(".wal",)) as tmp:
        tmp.write_bytes(b"child" * 100_000)
        tmp.with_name(tmp.name + ".wal").write_bytes(b"log")
"""

_REPO = str(Path(__file__).resolve().parents[1])


class Writer:
    """A writer process of ``path``, paused with its temporary file written, not renamed."""

    def __init__(self, api: str, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, api, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": _REPO},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()  # a line on a pipe, not a sleep
        assert line, f"the writer ended before its rename (exit {self.proc.wait(timeout=30)})"
        self.tmp = Path(line)
        assert self.tmp.is_file()
        assert f".{os.getpid()}-" not in self.tmp.name  # named after the writer, not us

    def kill(self) -> None:
        """SIGKILL mid-write: no handler, no ``finally`` runs; reaped, so it is gone."""
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(timeout=30) == -signal.SIGKILL
        self.close()

    def finish(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert self.proc.wait(timeout=30) == 0
        self.close()

    def close(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def writers() -> Iterator[list[Writer]]:
    started: list[Writer] = []
    yield started
    for writer in started:
        if writer.proc.poll() is None:
            writer.kill()


def _start(writers: list[Writer], api: str, path: Path) -> Writer:
    writer = Writer(api, path)
    writers.append(writer)
    return writer


@pytest.mark.parametrize("api", ["bytes", "target"])
def test_the_next_write_removes_what_a_killed_writer_left(
    tmp_path: Path, writers: list[Writer], api: str
) -> None:
    # What broke: a writer SIGKILLed mid-write left `.<name>.<random>.tmp` for ever (task
    # records, calendar caches, catalogs); only the history build swept its own.
    path = tmp_path / "tasks" / "17.json"
    killed = _start(writers, api, path)
    killed.kill()
    assert killed.tmp.is_file()  # the litter: a full copy, never renamed
    side = killed.tmp.with_name(killed.tmp.name + ".wal")
    assert side.is_file() == (api == "target")
    assert atomic_leftovers(path) == [killed.tmp]

    if api == "bytes":
        atomic_write_bytes(path, b"parent")
    else:
        with atomic_target(path, leftovers=(".wal",)) as new:
            new.write_bytes(b"parent")

    assert not killed.tmp.exists()
    assert path.read_bytes() == b"parent"
    assert sorted(p.name for p in path.parent.iterdir()) == ["17.json"]


def test_a_live_writers_file_is_kept_and_its_write_lands(
    tmp_path: Path, writers: list[Writer]
) -> None:
    path = tmp_path / "state" / "calendars" / "XNYS.arrow"
    live = _start(writers, "bytes", path)

    atomic_write_bytes(path, b"parent")

    assert live.tmp.is_file()  # its writer is only slow: removing it would fail its rename
    assert path.read_bytes() == b"parent"
    live.finish()
    assert path.read_bytes() == b"child" * 100_000
    assert sorted(p.name for p in path.parent.iterdir()) == ["XNYS.arrow"]


def test_another_files_leftover_is_not_touched(tmp_path: Path, writers: list[Writer]) -> None:
    # `.a.b.<pid>-…tmp` is the leftover of `a.b`: a write of `a` must not read it as its own.
    other = tmp_path / "plans" / "a.b"
    killed = _start(writers, "bytes", other)
    killed.kill()

    atomic_write_bytes(tmp_path / "plans" / "a", b"parent")
    atomic_write_bytes(tmp_path / "plans" / "b", b"parent")

    assert killed.tmp.is_file()
    atomic_write_bytes(other, b"parent")  # its own path's next write removes it
    assert not killed.tmp.exists()


def test_a_leftover_named_before_pids_is_left_to_its_lock_holder(tmp_path: Path) -> None:
    # Names without a pid (older versions wrote them) say nothing of their writer: only a
    # caller holding every writer's lock may remove them, through atomic_leftovers.
    path = tmp_path / "history.arrow"
    old = tmp_path / ".history.arrow.0123abcd.tmp"
    old.write_bytes(b"old")

    atomic_write_bytes(path, b"new")

    assert old.is_file()
    assert atomic_leftovers(path) == [old]
