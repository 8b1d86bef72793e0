"""The persistent job store follows jobs/ at start: new jobs added, changed schedules
rescheduled, removed files removed, unchanged jobs kept with their stored next fire time (which
is what lets a run missed while the scheduler was down be caught up)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from etl.config import load_settings
from etl.scheduler import load_jobs
from etl.scheduler.cron import JobTrigger
from etl.scheduler.daemon import FIRE_REF, close, sync_store
from etl.tasks.runtime import Runtime
from tests.scheduler._helpers import write_job

COMPACT = 'action = "compact"'


@contextmanager
def scheduler(path: Path) -> Iterator[Any]:
    sched = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{path}")}, timezone=dt.UTC
    )
    sched.start(paused=True)
    try:
        yield sched
    finally:
        close(sched)


def test_store_follows_the_job_files(tmp_path: Path) -> None:
    jobs, store = tmp_path / "jobs", tmp_path / "scheduler.sqlite"
    settings = load_settings(data_dir=tmp_path / "data", env={})
    caps = Runtime(settings=settings).capabilities()
    write_job(jobs, "a", COMPACT, "0 1 * * *")
    write_job(jobs, "b", COMPACT, "0 2 * * *")
    missed = dt.datetime(2024, 6, 28, 1, 0, tzinfo=dt.UTC)

    with scheduler(store) as sched:
        counts = sync_store(sched, load_jobs(jobs, caps), settings, None)
        assert counts == {"added": 2, "updated": 0, "kept": 0, "removed": 0}
        a = sched.get_job("a")
        assert a.func_ref == FIRE_REF and isinstance(a.trigger, JobTrigger)
        assert json.loads(json.dumps(a.kwargs))["name"] == "a"  # plain values only
        assert a.coalesce is True and a.max_instances == 1
        sched.modify_job("a", next_run_time=missed)  # as if the scheduler went down then

    write_job(jobs, "b", COMPACT, "0 3 * * *")  # a changed schedule
    write_job(jobs, "c", COMPACT, "0 4 * * *", "grace_seconds = 600")
    with scheduler(store) as sched:
        counts = sync_store(sched, load_jobs(jobs, caps), settings, None)
        assert counts == {"added": 1, "updated": 1, "kept": 1, "removed": 0}
        assert sched.get_job("a").next_run_time == missed  # kept: the missed run is still due
        assert sched.get_job("b").next_run_time.hour == 3
        assert sched.get_job("c").misfire_grace_time == 600

    (jobs / "b.toml").unlink()
    (jobs / "c.toml").unlink()
    with scheduler(store) as sched:
        counts = sync_store(sched, load_jobs(jobs, caps), settings, None)
        assert counts == {"added": 0, "updated": 0, "kept": 1, "removed": 2}
        assert [j.id for j in sched.get_jobs()] == ["a"]
