"""``etl scheduler`` as a real process, with schedules in seconds (the 6-field cron form):
a job fires and records its task; one scheduler per data root; a run missed while the
scheduler was down is caught up exactly once; a job slower than its interval never overlaps
itself; SIGTERM mid-run leaves an interrupted task that ``etl tasks resume`` completes."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from etl.tasks.records import TaskRecord
from etl.timefmt import iso_utc
from tests.conftest import ETL, etl_env
from tests.scheduler._helpers import (
    Scheduler,
    job_tasks,
    seconds_from_now,
    slow_job,
    wait_for,
    write_job,
)

pytestmark = pytest.mark.slow

COMPACT = 'action = "compact"'


def test_a_job_fires_runs_and_records_and_a_second_scheduler_refuses(tmp_path: Path) -> None:
    jobs, data = tmp_path / "jobs", tmp_path / "data"
    write_job(jobs, "tick", COMPACT, "*/2 * * * * *")
    first = Scheduler(jobs, data)
    try:
        first.wait_started()
        wait_for(
            "a recorded run",
            lambda: any(r.status == "completed" for r in job_tasks(data, "tick")),
            timeout=20,
        )
        second = subprocess.run(
            [*ETL, "scheduler", "--jobs-dir", str(jobs), "--data-dir", str(data)],
            capture_output=True, text=True, env=etl_env(data), timeout=60,
        )  # fmt: skip
        assert second.returncode == 1
        assert f"another etl scheduler is running on data root {data}" in second.stderr
        assert f"(pid {first.proc.pid})" in second.stderr
    finally:
        code = first.stop()
    assert code in (0, 130), first.stderr  # 130 only if SIGTERM caught a run mid-way
    [record, *_] = job_tasks(data, "tick")
    assert record.kind == "compact" and record.params["job"] == "tick"
    assert "job tick: running" in first.stderr


def _at(epoch: float) -> str:
    """An instant as the scheduler's log writes it."""
    return iso_utc(dt.datetime.fromtimestamp(epoch, dt.UTC), "seconds")


def test_a_run_missed_while_down_is_caught_up_exactly_once(tmp_path: Path) -> None:
    jobs, data = tmp_path / "jobs", tmp_path / "data"
    jobs.mkdir()
    first = Scheduler(jobs, data)
    try:
        first.wait_started()
        # Three fire times: F1 while the scheduler runs, F2 and F3 while it is down; the next
        # one after them is F1 + 60 s. The job comes by a reload, which takes milliseconds
        # where a start takes seconds on a loaded machine, so F1 can be near.
        second, f1 = seconds_from_now(3)
        cron = f"{second},{(second + 6) % 60},{(second + 7) % 60} * * * * *"
        write_job(jobs, "catchup", COMPACT, cron, "grace_seconds = 60")
        first.proc.send_signal(signal.SIGHUP)
        first.wait_line("reloaded: 1 added")
        assert time.time() < f1, "reloaded too slowly for this test's schedule"
        ran = first.wait_line("job catchup: exit")
    finally:
        first.stop()
    assert time.time() < f1 + 6, "stopped after F2: the test cannot tell a catch-up from F2"
    assert ran.endswith(f"exit 0 (run due {_at(f1)}); next run {_at(f1 + 6)}"), first.stderr
    wait_for("F2 and F3 to pass while it is down", lambda: time.time() > f1 + 7, timeout=10)

    again = Scheduler(jobs, data)
    try:
        again.wait_started()
        # said once the runs APScheduler submitted for the missed fire times have all ended
        caught_up = again.wait_line("job catchup: exit")
    finally:
        again.stop()
    tasks = job_tasks(data, "catchup")
    assert len(tasks) == 2, [(r.id, r.created_at) for r in tasks]  # F1, then F2+F3 once
    assert "1 kept" in again.stderr  # the stored job was kept: its missed fire times too
    missed = f"2 fire times missed while the scheduler was down ({_at(f1 + 6)} to {_at(f1 + 7)})"
    assert missed in again.stderr
    # one run, for F3, and the store's next run is then a minute on: F2 and F3 are settled
    assert caught_up.endswith(f"exit 0 (run due {_at(f1 + 7)}); next run {_at(f1 + 60)}"), (
        again.stderr
    )


def _span(record: TaskRecord) -> tuple[str, str]:
    return record.started_at or "", record.finished_at or record.updated_at or ""


def test_a_job_slower_than_its_interval_never_overlaps_itself(tmp_path: Path) -> None:
    jobs, data = tmp_path / "jobs", tmp_path / "data"
    write_job(jobs, "slow", slow_job(), "*/2 * * * * *")  # every 2 s; a run takes ~5 s
    sched = Scheduler(jobs, data)
    try:
        sched.wait_started()
        wait_for(
            "two finished runs",
            lambda: sum(r.status == "completed" for r in job_tasks(data, "slow")) >= 2,
            timeout=60,
        )
    finally:
        sched.stop()
    spans = sorted(_span(r) for r in job_tasks(data, "slow"))
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, spans  # each run started after the previous one ended
    assert "still running at its next fire time; that run is skipped" in sched.stderr


def test_sigterm_mid_run_leaves_an_interrupted_task_that_resume_completes(
    tmp_path: Path,
) -> None:
    jobs, data = tmp_path / "jobs", tmp_path / "data"
    second, _ = seconds_from_now(4)
    write_job(jobs, "long", slow_job(20, "2023-07-03"), f"{second} * * * * *")  # once a minute
    sched = Scheduler(jobs, data)
    try:
        sched.wait_started()

        def mid_run() -> bool:
            tasks = job_tasks(data, "long")
            return bool(tasks) and tasks[0].status == "running" and tasks[0].progress >= 0.1

        wait_for("a run to be under way", mid_run, timeout=40)
    finally:
        code = sched.stop()
    assert code == 130, sched.stderr
    assert "1 interrupted" in sched.stderr
    [task] = job_tasks(data, "long")
    assert task.status == "interrupted" and task.progress > 0

    resumed = subprocess.run(
        [*ETL, "tasks", "resume", str(task.id), "--json"],
        capture_output=True, text=True, env=etl_env(data), timeout=120,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    doc = json.loads(resumed.stdout)
    assert doc["id"] == task.id and doc["status"] == "completed"
    assert doc["params"]["job"] == "long"
    # what the interrupted run committed was not fetched again: rows written add up exactly
    count = subprocess.run(
        [*ETL, "sql", "SELECT count(*) AS n FROM klines", "--json"],
        capture_output=True, text=True, env=etl_env(data), timeout=60,
    )  # fmt: skip
    assert doc["rows_written"] == json.loads(count.stdout)[0]["n"]
