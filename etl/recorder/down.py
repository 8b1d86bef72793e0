"""Markers of running recorders: who was killed, so that its downtime is a gap.

A recorder writes a marker (its pid and symbols) when it starts and removes it when it stops
cleanly (SIGTERM, SIGINT, ``--duration``, the end of a scheduled window). A marker whose
process is gone was left by a recorder killed (SIGKILL, a crash, a power cut): the next
recorder of those symbols resumes where the lake ends and records the interval from the
lake's last stored message to its own first message as a gap ("recorder down"), repaired over
REST like a disconnect. A clean stop leaves no marker, so the night between two scheduled
windows is not a gap. A marker names its process by pid and start time: a pid alive again
under another process (reused after the kill, or after a reboot) does not hide the downtime.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from etl.dataroot import DataRoot
from etl.fsutil import atomic_write_bytes
from etl.locks import pid_alive, process_started

__all__ = ["DOWN_REASON", "claim", "release"]

DOWN_REASON = "recorder down (killed; restarted where the lake ends)"


def claim(root: DataRoot, vendor: str, symbols: Sequence[str]) -> set[str]:
    """Write this process's marker; return those of ``symbols`` that a killed recorder of
    ``vendor`` was recording (its markers are removed: ours covers them from now on)."""
    mine = set(symbols)
    down: set[str] = set()
    stale: list[Path] = []
    folder = root.recorders
    for path in sorted(folder.glob(f"{vendor}.*.json")) if folder.is_dir() else []:
        try:
            doc = json.loads(path.read_text())
            pid = int(doc["pid"])
            theirs = set(doc["symbols"])
            started = doc.get("started")
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable: not ours to judge (a marker is written atomically)
        # our own pid on a marker, or a live pid started at another time, is a pid reused
        # after a kill: that recorder is gone
        if pid == os.getpid() or not _same_process(pid, started):
            down |= theirs & mine
            stale.append(path)
    me = {"pid": os.getpid(), "started": process_started(os.getpid()), "symbols": sorted(mine)}
    body = json.dumps(me).encode()
    atomic_write_bytes(root.recorder_marker(vendor, os.getpid()), body)
    for path in stale:
        if path != root.recorder_marker(vendor, os.getpid()):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return down


def _same_process(pid: int, started: object) -> bool:
    """Whether the process that wrote a marker still runs (a marker without a start time, or
    a system that does not say, is judged by the pid alone)."""
    if not pid_alive(pid):
        return False
    now = process_started(pid)
    return started is None or now is None or now == started


def release(root: DataRoot, vendor: str) -> None:
    """A clean stop: this process's marker goes."""
    with contextlib.suppress(FileNotFoundError):
        root.recorder_marker(vendor, os.getpid()).unlink()
