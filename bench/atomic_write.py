"""What one ``atomic_write_bytes`` costs, with its sweep of killed writers' leftovers.

Soft (no fsync) and durable, in a small folder and in one of 10,000 files (a data root's
``tasks/`` after a few thousand tasks): the same path rewritten (the rate governor's state, a
task's resume state) and a new path each time (a new task's record). Then the sweep alone, as
a write pays it: from the folder's kept listing, and the listing itself (taken at most once a
second, or once per 100 times what it costs).

    python -m bench atomic_write
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bench.data import best_of
from etl import fsutil
from etl.fsutil import atomic_write_bytes

PAYLOAD = b'{"id": 1, "status": "running", "progress": [12, 40]}' * 4


def _per_write(folder: Path, *, durable: bool, same: bool, count: int) -> float:
    names = iter(range(10**9))

    def writes() -> None:
        for _ in range(count):
            name = "0.json" if same else f"{next(names)}.json"
            atomic_write_bytes(folder / name, PAYLOAD, durable=durable)

    return best_of(writes, repeat=5) / count


def run() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    work = Path(tempfile.mkdtemp(prefix="bench-atomic-"))
    try:
        for files in (10, 10_000):
            for durable in (False, True):
                for same in (True, False):
                    folder = work / f"{files}-{durable}-{same}"
                    folder.mkdir()
                    for i in range(files):
                        (folder / f"x{i}.lock").touch()
                    seconds = _per_write(folder, durable=durable, same=same, count=200)
                    rows.append({
                        "bench": "atomic_write", "folder_files": files, "durable": durable,
                        "path": "same" if same else "new", "us_per_write": round(seconds * 1e6, 1),
                    })  # fmt: skip
            folder = work / f"{files}-sweep"
            folder.mkdir()
            for i in range(files):
                (folder / f"x{i}.lock").touch()
            target = folder / "0.json"
            fsutil._sweep_dead(target)  # takes the listing
            kept = best_of(lambda: [fsutil._sweep_dead(target) for _ in range(10_000)]) / 10_000
            listed = best_of(lambda: fsutil._Listing(folder))
            rows.append({
                "bench": "atomic_write_sweep", "folder_files": files,
                "us_per_write_from_kept_listing": round(kept * 1e6, 2),
                "us_per_listing": round(listed * 1e6, 1),
            })  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows
