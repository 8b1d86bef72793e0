"""Resuming a task: the engine continues it where its last commit left it; the platform's
cache tasks (steps of ordinary tasks) resume their unfinished steps."""

from __future__ import annotations

from etl.tasks.records import TaskRecord
from etl.tasks.runtime import Runtime

__all__ = ["resume_task"]


async def resume_task(rt: Runtime, record: TaskRecord) -> TaskRecord:
    if record.kind == "cache":
        from etl.tasks.cache import resume_cache

        return await resume_cache(rt, record)
    from etl.tasks import engine

    return await engine.resume(rt, record)
