"""Where the rate governor keeps its counts: a JSON file per vendor shared by every process on
the data root (changed only under its ``flock``), or a dict for one process.

The state, as :mod:`etl.vendors.governor` reads and writes it::

    {"starts": {counter: [[start, end or null, lease id], ...]},   requests in their windows
     "leases": {lease id: {"pid", "expires", "scopes", "counters"}}, requests in flight
     "bans":   {bucket or "*": until},                              a vendor said "too many"
     "queue":  {ticket: {"pid", "bucket", "since", "seen"}}}        who waits, in what order

It is soft state: a file that cannot be read is started afresh (the vendor's own limit is the
only harm, and only for one window), and writes skip the fsync.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

from etl.fsutil import atomic_write_bytes
from etl.locks import file_lock

__all__ = ["PARTS", "FileStore", "MemoryStore", "State", "empty"]

log = logging.getLogger(__name__)

T = TypeVar("T")
State = dict[str, Any]
PARTS: Final = ("starts", "leases", "bans", "queue")


def empty() -> State:
    return {part: {} for part in PARTS}


class MemoryStore:
    """State for one process only."""

    def __init__(self) -> None:
        self._state = empty()

    def transact(self, fn: Callable[[State], tuple[T, bool]]) -> T:
        return fn(self._state)[0]


class FileStore:
    """State shared through ``<directory>/<vendor>.json`` under ``flock(<vendor>.lock)``."""

    def __init__(self, directory: Path, vendor: str) -> None:
        self.directory = directory
        self.path = directory / f"{vendor}.json"
        self.lock_path = directory / f"{vendor}.lock"

    def transact(self, fn: Callable[[State], tuple[T, bool]]) -> T:
        # Held for a read-modify-write of a few hundred bytes: wait in the kernel.
        with file_lock(self.lock_path, timeout=None):
            state = self._read()
            result, changed = fn(state)
            if changed:  # soft state: never torn, but not worth an fsync per request
                data = json.dumps(state, separators=(",", ":")).encode()
                atomic_write_bytes(self.path, data, durable=False)
            return result

    def _read(self) -> State:
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return empty()
        except (OSError, ValueError) as exc:  # soft state: start afresh rather than stop
            log.warning("governor state %s unreadable (%s); starting afresh", self.path, exc)
            return empty()
        if not isinstance(state, dict):
            return empty()
        for part in PARTS:
            if not isinstance(state.get(part), dict):
                state[part] = {}
        return state
