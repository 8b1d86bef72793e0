"""Recorder markers name their process by pid and start time, so a pid reused after a kill
(a live process that is not the recorder that wrote the marker) does not hide the downtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from etl.dataroot import DataRoot
from etl.locks import process_started
from etl.recorder.down import claim, release

SYMBOLS = ["600000.SH", "000001.SZ"]


@pytest.fixture
def other() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not a recorder: the holder of a pid a dead one had."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)  # fmt: skip
    yield proc
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(30)


def marker(root: DataRoot, pid: int, started: str | None) -> Path:
    path = root.recorder_marker("infoway", pid)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"pid": pid, "symbols": SYMBOLS} | ({"started": started} if started else {})
    path.write_text(json.dumps(doc))
    return path


def test_a_live_pid_started_at_another_time_is_a_killed_recorder(
    data_root: Path, other: subprocess.Popen[bytes]
) -> None:
    root = DataRoot(data_root)
    started = process_started(other.pid)
    assert started is not None and ":" in started
    stale = marker(root, other.pid, started + "0")  # the pid, reused by another process
    assert claim(root, "infoway", SYMBOLS) == set(SYMBOLS)
    assert not stale.exists()
    release(root, "infoway")


def test_a_running_recorder_is_not_down_and_an_old_marker_is_judged_by_its_pid(
    data_root: Path, other: subprocess.Popen[bytes]
) -> None:
    root = DataRoot(data_root)
    running = marker(root, other.pid, process_started(other.pid))
    assert claim(root, "infoway", SYMBOLS) == set()
    assert running.exists()
    release(root, "infoway")  # this process's marker: a second claim would call it reused
    running.unlink()
    legacy = marker(root, other.pid, None)  # written before markers had a start time
    assert claim(root, "infoway", SYMBOLS) == set()
    assert legacy.exists()
    ours = json.loads(root.recorder_marker("infoway", os.getpid()).read_text())
    assert ours["started"] == process_started(ours["pid"])
    release(root, "infoway")
    assert not root.recorder_marker("infoway", ours["pid"]).exists()
