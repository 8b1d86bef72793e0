"""A record job under ``etl scheduler``, end to end: the scheduler starts ``etl record``'s
recorder at the start of the job's session window and the run stops it at the window's end
(committed, exit 0), against the Infoway emulator replayed at 120 market seconds per second.

The window is a few seconds of today (``hours``, to the second, on the CC calendar, which
trades every day, so the test runs on any day of the week); the emulator's market clock is a
Friday morning session, so the feed pushes trades whatever the wall clock says."""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from etl.emulators.testing import running
from etl.tasks.records import TaskStore
from tests.conftest import ETL, emulator_env, etl_env
from tests.scheduler._helpers import Scheduler, job_tasks, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OPEN = dt.datetime(2024, 6, 28, 2, 0, tzinfo=dt.UTC)  # 10:00 Shanghai, a Friday
SHANGHAI = ZoneInfo("Asia/Shanghai")


def record_job(folder: Path, start: dt.datetime, end: dt.datetime) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    hours = f"{start.astimezone(SHANGHAI):%H:%M:%S}-{end.astimezone(SHANGHAI):%H:%M:%S}"
    (folder / "rec.toml").write_text(
        'name = "rec"\naction = "record"\nvendor = "infoway"\n'
        'symbols = ["600000.SH", "000001.SZ"]\nchannels = ["trades"]\n'
        f'[schedule]\ncalendar = "CC"\nhours = "{hours}"\n'
        "before_open_minutes = 0\nafter_close_minutes = 0\n"
    )


def a_window(seconds_ahead: float, length: float) -> tuple[dt.datetime, dt.datetime]:
    """A window starting ``seconds_ahead`` from now, within one Shanghai day."""
    while True:
        start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=seconds_ahead)
        end = start + dt.timedelta(seconds=length)
        if start.astimezone(SHANGHAI).date() == end.astimezone(SHANGHAI).date():
            return start, end
        time.sleep(1)  # just before midnight in Shanghai: wait for the new day


def lake(root: Path, dataset: str) -> pl.DataFrame:
    files = sorted((root / "lake" / dataset).rglob("*.parquet"))
    return pl.read_parquet(files, hive_partitioning=True, missing_columns="insert")


def test_the_scheduler_records_over_the_session_window_and_stops_at_its_end(
    tmp_path: Path,
) -> None:
    jobs, data = tmp_path / "jobs", tmp_path / "data"
    with running("infoway", now=OPEN, speed=120, api_key="k") as server:
        env = emulator_env(server)
        start, end = a_window(8, 12)
        record_job(jobs, start, end)
        sched = Scheduler(jobs, data, **env)
        try:
            sched.wait_started()
            wait_for("the run's end", lambda: "job rec: exit" in sched.stderr, timeout=120)
            ended = dt.datetime.now(dt.UTC)
            assert "job rec: exit 0" in sched.stderr, sched.stderr
            assert sched.proc.poll() is None  # the scheduler goes on: next window tomorrow
        finally:
            code = sched.stop()
        assert code == 0, sched.stderr
        stats = server.stats()
    [task] = [r for r in job_tasks(data, "rec") if r.kind == "record"]
    assert task.status == "completed", task.error_message
    assert task.params["until"] == end.isoformat().replace("+00:00", "Z")
    began = dt.datetime.fromisoformat(task.started_at or "")
    finished = dt.datetime.fromisoformat(task.finished_at or "")
    # started at the window's start (a scheduler slower to start than 8 s starts inside it),
    # stopped at its end: not before, and not much after (the final commit)
    assert start - dt.timedelta(seconds=1) <= began < start + dt.timedelta(seconds=10)
    assert end <= finished <= end + dt.timedelta(seconds=10) and finished <= ended
    doc = task.result or {}
    assert doc["ticks_written"] > 0 and doc["bars_written"] > 0, doc
    ticks = lake(data, "ticks")
    assert ticks.height == doc["ticks_written"] <= stats["ws"]["pushed"]["trades"]
    assert ticks.select("symbol", "ts", "seq").is_duplicated().sum() == 0
    assert set(ticks["symbol"]) == {"600000.SH", "000001.SZ"}
    bars = lake(data, "klines")
    assert bars.filter(pl.col("source") == "live").height == doc["bars_written"]
    assert stats["violations"] == 0
    assert stats["ws"]["closed"] == stats["ws"]["connections"]  # the recorder hung up


def test_a_scheduled_run_outside_the_window_is_skipped_and_says_when_the_next_is(
    tmp_path: Path,
) -> None:
    jobs, data = tmp_path / "jobs", tmp_path / "data"
    jobs.mkdir()
    (jobs / "rec.toml").write_text(
        'name = "rec"\naction = "record"\nvendor = "infoway"\nsymbols = ["600000.SH"]\n'
        '[schedule]\ncalendar = "CC"\nhours = "00:00:00-00:00:01"\n'
    )  # one second after midnight Shanghai (5 min margins): outside, unless run at midnight
    midnight = dt.datetime.combine(
        dt.datetime.now(SHANGHAI).date() + dt.timedelta(days=1), dt.time(0), SHANGHAI
    )
    start = (midnight - dt.timedelta(minutes=5)).astimezone(dt.UTC)
    done = subprocess.run(
        [*ETL, "jobs", "run", "rec", "--scheduled", "--jobs-dir", str(jobs)],
        capture_output=True, text=True, env=etl_env(data, ETL_INFOWAY_API_KEY="k"), timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "job rec: skipped:" in done.stderr and "outside the session windows" in done.stderr
    assert start.isoformat().replace("+00:00", "Z") in done.stderr
    assert TaskStore(data).list() == []
