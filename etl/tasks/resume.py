"""Resuming a task: each kind re-plans from its saved params and skips committed units."""

from __future__ import annotations

from etl.errors import BadInputError
from etl.tasks.backfill import resume_backfill
from etl.tasks.records import TaskRecord
from etl.tasks.runtime import Runtime

__all__ = ["resume_task"]


async def resume_task(rt: Runtime, record: TaskRecord) -> TaskRecord:
    if record.kind == "backfill":
        return await resume_backfill(rt, record)
    if record.kind == "fill-missing":
        from etl.tasks.fill import resume_fill

        return await resume_fill(rt, record)
    if record.kind == "cache":
        from etl.tasks.cache import resume_cache

        return await resume_cache(rt, record)
    raise BadInputError(f"task {record.id} ({record.kind}) cannot be resumed; run it again")
