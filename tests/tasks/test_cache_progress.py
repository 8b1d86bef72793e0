"""A cache task's record moves while it runs: each finished step adds to ``success_count`` and
``rows_written`` at once (not only when the whole task ends), so ``GET /cache/tasks/{id}``
polled by the platform document's client shows counts that agree with ``progress``."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from etl.config import load_settings
from etl.tasks.cache import CacheRequest, cache_task
from etl.tasks.records import TaskRecord, TaskStore
from etl.tasks.runtime import Runtime


class SavesSeen(TaskStore):
    """The real store, remembering what every save of a cache record said."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.seen: list[tuple[str, float, int, int, int]] = []

    def save(self, record: TaskRecord) -> None:
        super().save(record)
        if record.kind == "cache":
            self.seen.append((record.status, record.progress, record.total_count,
                              record.success_count, record.rows_written))  # fmt: skip


def test_finished_steps_count_while_the_cache_task_runs(data_root: Path) -> None:
    rt = Runtime(settings=load_settings(data_dir=data_root, env={}), progress=False)
    spy = SavesSeen(data_root)
    rt.__dict__["store"] = spy  # the runtime's cached store, spied on
    req = CacheRequest("cache-all-missing", "sim", "future", "1d", dt.date(2024, 1, 2),
                       dt.date(2024, 1, 3))  # fmt: skip
    record = asyncio.run(cache_task(rt, req))
    assert record.status == "completed" and record.error_count == 0
    assert record.success_count == record.total_count > 2 and record.rows_written > 0
    running = [s for s in spy.seen if s[0] == "running"]
    # after the first step (instruments) the record says one step done and its rows
    assert any(0 < ok < total and rows > 0 for _, _, total, ok, rows in running), running
    counts = [(ok, rows) for _, _, _, ok, rows in spy.seen]
    assert counts == sorted(counts), "success_count and rows_written only grow"
