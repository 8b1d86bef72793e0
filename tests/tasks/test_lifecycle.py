"""Task lifecycle with real processes: Ctrl-C, SIGKILL, resume, cancel, and fill claims."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from etl.errors import TaskConflict
from etl.tasks.claims import claim
from etl.tasks.expected import Selection
from etl.tasks.records import TaskStore
from tests.conftest import ETL, etl_env, sim_stocks


def start_backfill(data_root: Path, n: int = 40) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *ETL,
            "backfill",
            "--vendor",
            "sim",
            "--dataset",
            "klines",
            "--freq",
            "1m",
            "--symbols",
            sim_stocks("SZ", n, dt.date(2022, 1, 1)),
            "--start",
            "2023-07-03",
            "--end",
            "2024-06-28",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=etl_env(data_root),
    )


def wait_running(
    store: TaskStore, proc: subprocess.Popen[str], min_progress: float, min_rows: int = 0
) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        records = store.list(1)
        if (
            records
            and records[0].status == "running"
            and records[0].progress >= min_progress
            and records[0].rows_written >= min_rows
        ):
            return records[0].id
        time.sleep(0.05)
    raise AssertionError("the task never got going")


def run_cli(data_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ETL, *args], capture_output=True, text=True, env=etl_env(data_root), timeout=120
    )


@pytest.mark.slow
def test_ctrl_c_stops_at_a_safe_point_then_resume_finishes(data_root: Path) -> None:
    store = TaskStore(data_root)
    proc = start_backfill(data_root)
    task_id = wait_running(store, proc, 0.15)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    doc = json.loads(out)
    assert doc["status"] == "interrupted" and 0 < doc["progress"] < 1
    # only the symbols whose every unit was committed count (regression: "40/40 ok")
    assert doc["success_count"] < doc["total_count"] == 40, doc
    items = doc["items"]  # and the items say how far it got, each in one category
    assert items["total"] == 40 and items["done"] == doc["success_count"], items
    assert items["done"] + items["partly_done"] + items["not_reached"] == 40, items
    assert items["partly_done"] + items["not_reached"] > 0, items
    assert items["failed"] == items["unavailable"] == 0, items
    first_rows = doc["rows_written"]
    assert first_rows > 0

    resumed = run_cli(data_root, "tasks", "resume", str(task_id), "--json")
    assert resumed.returncode == 0, resumed.stderr
    final = json.loads(resumed.stdout)
    assert final["id"] == task_id and final["status"] == "completed"
    assert final["success_count"] == final["total_count"] == 40
    assert final["items"]["done"] == 40, final["items"]
    # what the first run committed was not fetched again: rows written add up exactly
    rows = json.loads(
        run_cli(data_root, "sql", "SELECT count(*) AS n FROM klines", "--json").stdout
    )[0]["n"]
    assert final["rows_written"] == rows


@pytest.mark.slow
def test_sigkill_leaves_an_interrupted_task_that_resumes(data_root: Path) -> None:
    store = TaskStore(data_root)
    proc = start_backfill(data_root)
    task_id = wait_running(store, proc, 0.2, min_rows=1)  # at least one commit happened
    proc.kill()
    proc.communicate(timeout=30)
    shown = json.loads(run_cli(data_root, "tasks", "show", str(task_id), "--json").stdout)
    assert shown["status"] == "interrupted"  # found so on the next command
    done_before = len(store.load_state(task_id).get("done", []))
    assert done_before > 0
    resumed = run_cli(data_root, "tasks", "resume", str(task_id), "--json")
    assert resumed.returncode == 0, resumed.stderr
    final = json.loads(resumed.stdout)
    assert final["status"] == "completed"
    rows = json.loads(
        run_cli(data_root, "sql", "SELECT count(*) AS n FROM klines", "--json").stdout
    )[0]["n"]
    dupes = json.loads(
        run_cli(
            data_root,
            "sql",
            "SELECT count(*) AS n FROM (SELECT symbol, ts "
            "FROM klines GROUP BY ALL HAVING count(*) > 1)",
            "--json",
        ).stdout
    )
    assert dupes == [{"n": 0}]
    assert final["rows_written"] == rows


@pytest.mark.slow
def test_cancel_from_another_terminal(data_root: Path) -> None:
    store = TaskStore(data_root)
    proc = start_backfill(data_root)
    task_id = wait_running(store, proc, 0.05)
    cancelled = run_cli(data_root, "tasks", "cancel", str(task_id), "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    doc = json.loads(out)
    assert doc["status"] == "cancelled" and doc["success_count"] < doc["total_count"], doc
    assert store.get(task_id).status == "cancelled"


HOLDER = """
import sys, time
from pathlib import Path
from etl.tasks.claims import claim
from etl.tasks.expected import Selection
from etl.tasks.records import TaskStore
import datetime as dt
root = Path(sys.argv[1])
store = TaskStore(root)
rec = store.create("fill-missing", {}, now=dt.datetime.now(dt.UTC))
lock = store.hold(rec.id)
sel = Selection("klines", dt.date(2024, 1, 2), dt.date(2024, 1, 5), "1d", ("600000.SH",))
with claim(root, rec.id, sel, ["600000.SH", "000001.SZ"]):
    print("claimed", flush=True)
    time.sleep(30)
"""


def test_a_second_fill_over_the_same_symbols_refuses(data_root: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data_root)],
        stdout=subprocess.PIPE,
        text=True,
        env=etl_env(data_root),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "claimed"
        sel = Selection("klines", dt.date(2024, 1, 2), dt.date(2024, 1, 5), "1d", ("000001.SZ",))
        with (
            pytest.raises(TaskConflict, match="already filling 1 of these symbols"),
            claim(data_root, 999, sel, ["000001.SZ"]),
        ):
            pass
        other = Selection("klines", dt.date(2024, 1, 2), dt.date(2024, 1, 5), "1d", ("300750.SZ",))
        with claim(data_root, 998, other, ["300750.SZ"]):  # disjoint symbols: fine
            pass
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    sel = Selection("klines", dt.date(2024, 1, 2), dt.date(2024, 1, 5), "1d", ("000001.SZ",))
    with claim(data_root, 997, sel, ["000001.SZ"]):  # the holder died: its claim is stale
        pass
