"""A record job SIGTERMed in the middle of its session window stops cleanly, under
``etl scheduler`` (as systemd stops it) and as ``etl jobs run``: what was received is
committed, the task record says ``interrupted`` with the recorder's document, the exit code is
130 (the contract's "interrupted"), the recorder hung up and left no marker (a clean stop is
no "recorder down" gap for the next window). Every wait is on an event: the task record,
files in the lake, the emulator's counters."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
from pathlib import Path

import polars as pl
import pytest

from etl.emulators.testing import running
from etl.tasks.records import TaskRecord
from tests.conftest import ETL, emulator_env, etl_env
from tests.scheduler._helpers import Scheduler, job_tasks, wait_for
from tests.scheduler.test_record_job_run import OPEN, a_window, lake, record_job

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WINDOW_S = 900  # far longer than the test: the stop comes from the signal, not the window


def recording(data: Path) -> TaskRecord | None:
    """The job's record task once it runs and its first ticks are committed."""
    tasks = [r for r in job_tasks(data, "rec") if r.kind == "record"]
    files = list((data / "lake" / "ticks").rglob("*.parquet"))
    if tasks and tasks[-1].status == "running" and files:
        return tasks[-1]
    return None


def check_stopped_cleanly(data: Path, stats: dict[str, object], end: dt.datetime) -> None:
    [task] = [r for r in job_tasks(data, "rec") if r.kind == "record"]
    assert task.status == "interrupted", (task.status, task.error_message)
    assert task.finished_at is None  # interrupted: resumable, not finished
    stopped = dt.datetime.fromisoformat(task.updated_at or "")
    assert stopped < end - dt.timedelta(seconds=WINDOW_S // 2)  # stopped mid-window
    doc = task.result or {}
    ticks = lake(data, "ticks")
    # everything received was committed, once; the document counts what is in the lake
    assert ticks.height == doc["ticks_written"] > 0, doc
    assert ticks.select("symbol", "ts", "seq").is_duplicated().sum() == 0
    assert task.rows_written == doc["ticks_written"] + doc["quotes_written"] + doc["bars_written"]
    bars = lake(data, "klines") if (data / "lake" / "klines").is_dir() else pl.DataFrame()
    if bars.height:
        assert bars.select("symbol", "freq", "ts").is_duplicated().sum() == 0
    ws = stats["ws"]
    assert isinstance(ws, dict) and ws["closed"] == ws["connections"]  # hung up
    assert stats["violations"] == 0
    markers = data / "state" / "recorders"
    assert not markers.is_dir() or not list(markers.iterdir())  # a clean stop: no marker


def test_the_scheduler_sigtermed_mid_window_commits_and_leaves_an_interrupted_record(
    tmp_path: Path,
) -> None:
    jobs, data = tmp_path / "jobs", tmp_path / "data"
    with running("infoway", now=OPEN, speed=120, api_key="k") as server:
        env = emulator_env(server)
        start, end = a_window(2, WINDOW_S)
        record_job(jobs, start, end)
        sched = Scheduler(jobs, data, **env)
        try:
            sched.wait_started()
            wait_for("the recording's first commit", lambda: recording(data) is not None, 90)
            pushed = sum(server.stats()["ws"]["pushed"].values())
            wait_for("more pushes", lambda: sum(server.stats()["ws"]["pushed"].values()) > pushed)
        finally:
            code = sched.stop()  # SIGTERM, forwarded to the run
        assert code == 130, sched.stderr
        assert "1 interrupted" in sched.stderr, sched.stderr
        check_stopped_cleanly(data, server.stats(), end)


def test_jobs_run_of_a_record_job_sigtermed_mid_window_exits_130_interrupted(
    tmp_path: Path,
) -> None:
    jobs, data = tmp_path / "jobs", tmp_path / "data"
    with running("infoway", now=OPEN, speed=120, api_key="k") as server:
        env = emulator_env(server)
        start, end = a_window(-5, WINDOW_S)  # already open: `jobs run` records from now
        record_job(jobs, start, end)
        proc = subprocess.Popen(
            [*ETL, "jobs", "run", "rec", "--jobs-dir", str(jobs), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=etl_env(data, **env),
        )  # fmt: skip
        try:
            wait_for("the recording's first commit", lambda: recording(data) is not None, 90)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert json.loads(out)["status"] == "interrupted", out
        assert err.splitlines()[-1].startswith("job rec: interrupted (exit 130)"), err
        check_stopped_cleanly(data, server.stats(), end)
