"""Claims: two fills over the same symbols never run at once.

A running fill registers (dataset, frequency, symbols) in ``state/claims/<task id>.json``
while it holds its task lock. Another fill whose selection overlaps a live claim refuses with
a message naming the task and how to wait for it or stop it. Claims of dead processes (their
task lock is free) are ignored and cleaned up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from etl.dataroot import DataRoot
from etl.errors import TaskConflict
from etl.fsutil import atomic_write_bytes
from etl.locks import file_lock, try_lock
from etl.tasks.expected import Selection

__all__ = ["claim"]


@contextmanager
def claim(root: Path, task_id: int, sel: Selection, symbols: Sequence[str]) -> Iterator[None]:
    folder = DataRoot(root).claims
    folder.mkdir(parents=True, exist_ok=True)
    mine = folder / f"{task_id}.json"
    wanted = set(symbols)
    with file_lock(folder / ".lock", timeout=30):
        for other in folder.glob("*.json"):
            if other == mine:
                continue
            try:
                doc = json.loads(other.read_bytes())
            except (OSError, ValueError):
                continue
            if not _alive(root, int(doc["task_id"])):
                other.unlink(missing_ok=True)
                continue
            if doc["dataset"] != sel.dataset or doc["freq"] != sel.freq:
                continue
            overlap = wanted & set(doc["symbols"])
            if overlap:
                sample = ", ".join(sorted(overlap)[:3])
                raise TaskConflict(
                    f"task {doc['task_id']} is already filling {len(overlap)} of these symbols "
                    f"({sample}...): wait for it (etl tasks show {doc['task_id']} --watch) "
                    f"or stop it (etl tasks cancel {doc['task_id']})"
                )
        atomic_write_bytes(mine, json.dumps({
            "task_id": task_id, "dataset": sel.dataset, "freq": sel.freq,
            "symbols": sorted(wanted),
        }).encode())  # fmt: skip
    try:
        yield
    finally:
        mine.unlink(missing_ok=True)


def _alive(root: Path, task_id: int) -> bool:
    lock = try_lock(DataRoot(root).task_lock(task_id))
    if lock is None:
        return True  # its process holds the task lock
    lock.release()
    return False
