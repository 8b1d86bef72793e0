"""``etl scheduler`` as a real process, with schedules in seconds (the 6-field cron form):
a job fires and records its task; one scheduler per data root; a run missed while the
scheduler was down is caught up exactly once; a job slower than its interval never overlaps
itself; SIGTERM mid-run leaves an interrupted task that ``etl tasks resume`` completes."""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from pathlib import Path

import pytest

from etl.tasks.records import TaskRecord
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


def test_a_run_missed_while_down_is_caught_up_exactly_once(tmp_path: Path) -> None:
    jobs, data = tmp_path / "jobs", tmp_path / "data"
    # Three fire times: F1 while the scheduler runs, F2 and F3 while it is down; the next
    # ones come a minute later, after the test.
    second, f1 = seconds_from_now(6)
    cron = f"{second},{(second + 6) % 60},{(second + 7) % 60} * * * * *"
    write_job(jobs, "catchup", COMPACT, cron, "grace_seconds = 60")
    sched = Scheduler(jobs, data)
    try:
        sched.wait_started()
        assert time.time() < f1, "the scheduler started too slowly for this test's schedule"
        wait_for("the F1 run", lambda: len(job_tasks(data, "catchup")) == 1, timeout=20)
        wait_for("its end", lambda: job_tasks(data, "catchup")[0].finished, timeout=20)
    finally:
        sched.stop()
    assert time.time() < f1 + 6, "stopped after F2: the test cannot tell a catch-up from F2"
    time.sleep(max(0.0, f1 + 8 - time.time()))  # F2 and F3 pass while it is down

    again = Scheduler(jobs, data)
    try:
        again.wait_started()
        wait_for("the catch-up run", lambda: len(job_tasks(data, "catchup")) >= 2, timeout=20)
        time.sleep(4)  # room for a second catch-up run, which must not come
    finally:
        again.stop()
    tasks = job_tasks(data, "catchup")
    assert len(tasks) == 2, [(r.id, r.created_at) for r in tasks]  # F1, then F2+F3 once
    assert "1 kept" in again.stderr  # the stored job was kept: its missed fire time too


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
