"""Markers of running recorders: who was killed, so that its downtime is a gap.

A recorder writes a marker (its pid and symbols) when it starts and removes it when it stops
cleanly (SIGTERM, SIGINT, ``--duration``, the end of a scheduled window). A marker whose
process is gone was left by a recorder killed (SIGKILL, a crash, a power cut): the next
recorder of those symbols resumes where the lake ends and records the interval from the
lake's last stored message to its own first message as a gap ("recorder down"), repaired over
REST like a disconnect. A clean stop leaves no marker, so the night between two scheduled
windows is not a gap.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from etl.dataroot import DataRoot
from etl.fsutil import atomic_write_bytes
from etl.locks import pid_alive

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
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable: not ours to judge (a marker is written atomically)
        # our own pid on a marker is a pid reused after a kill: that recorder is gone
        if pid == os.getpid() or not pid_alive(pid):
            down |= theirs & mine
            stale.append(path)
    body = json.dumps({"pid": os.getpid(), "symbols": sorted(mine)}).encode()
    atomic_write_bytes(root.recorder_marker(vendor, os.getpid()), body)
    for path in stale:
        if path != root.recorder_marker(vendor, os.getpid()):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return down


def release(root: DataRoot, vendor: str) -> None:
    """A clean stop: this process's marker goes."""
    with contextlib.suppress(FileNotFoundError):
        root.recorder_marker(vendor, os.getpid()).unlink()
