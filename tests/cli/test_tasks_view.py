"""`etl tasks list` and `etl tasks show --watch`, as a person at a terminal sees them.

Regression: `tasks show ID --watch` printed nothing (the view was rendered into a recording
console whose export was empty), and `tasks list` cut its columns at 80 characters and had no
vendor, dataset or selection."""

from __future__ import annotations

import datetime as dt
import os
import pty
import select
import subprocess
from pathlib import Path

from etl.commands.tasks import list_lines, view
from etl.tasks.records import TaskRecord, TaskStore
from tests.conftest import ETL, etl_env

NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)


def _record(task_id: int, **kw: object) -> TaskRecord:
    fields: dict[str, object] = {
        "id": task_id,
        "kind": "fill-missing",
        "status": "running",
        "progress": 0.25,
        "started_at": "2024-06-28T11:59:00Z",
    }
    fields.update(kw)
    return TaskRecord(**fields)  # type: ignore[arg-type]


def test_list_fits_80_columns_with_vendor_dataset_selection_progress_eta_status() -> None:
    records = [
        _record(
            7,
            params={
                "vendor": "amazingdata",
                "dataset": "balance_sheet",
                "freq": None,
                "market": "SH",
                "symbols": [],
            },
        ),
        _record(
            8,
            params={
                "vendor": "infoway",
                "dataset": "klines",
                "freq": "1m",
                "symbols": [f"{i:06d}.SZ" for i in range(10)],
            },
            message="waiting for infoway's rate limit (14 s)",
        ),
        _record(
            12345,
            status="interrupted",
            progress=0.04,
            params={"vendor": "sim", "dataset": "klines", "freq": "1d", "symbols": ["600000.SH"]},
        ),
    ]
    lines = list_lines(records, NOW)
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[0].split() == [
        "id", "vendor", "dataset", "freq", "selection", "done", "eta", "status"
    ]  # fmt: skip
    assert lines[1].split() == ["7", "amazingdata", "balance_sheet", "--market", "SH", "25%",
                                "3m00s", "running"]  # fmt: skip
    # 60 s for 25 %: 3 minutes left; waiting on the governor says so
    assert lines[2].split() == ["8", "infoway", "klines", "1m", "10", "symbols", "25%", "3m00s",
                                "rate-wait"]  # fmt: skip
    assert lines[3].split() == ["12345", "sim", "klines", "1d", "600000.SH", "4%", "interrupted"]


def _read_until(fd: int, wanted: bytes, seen: bytearray) -> None:
    """Read the pty until ``wanted`` appears (an event, not a sleep); 60 s is only a guard."""
    while wanted not in seen:
        ready, _, _ = select.select([fd], [], [], 60)
        assert ready, f"no {wanted!r} in {bytes(seen)!r}"
        try:
            seen += os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            assert wanted in seen, bytes(seen)
            return


def test_watch_redraws_in_place_until_the_task_ends(data_root: Path) -> None:
    store = TaskStore(data_root)
    record = store.create("backfill", {"vendor": "sim", "dataset": "klines", "freq": "1d",
                                       "symbols": ["600000.SH"]}, now=NOW)  # fmt: skip
    lock = store.hold(record.id)  # "its process" holds the run lock: it is running
    record.status, record.pid, record.progress = "running", os.getpid(), 0.1
    store.save(record)
    master, slave = pty.openpty()
    env = etl_env(data_root, COLUMNS="100", TERM="xterm")
    proc = subprocess.Popen(
        [*ETL, "tasks", "show", str(record.id), "--watch", "--interval", "0.1"],
        stdout=slave, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    os.close(slave)
    seen = bytearray()
    try:
        _read_until(master, b"running, 10.0%", seen)
        record.progress = 0.5
        store.save(record)
        _read_until(master, b"running, 50.0%", seen)
        record.status, record.progress, record.rows_written = "completed", 1.0, 42
        store.save(record)
        _read_until(master, b"completed, 100.0%", seen)
        assert proc.wait(timeout=60) == 0
    finally:
        lock.release()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
        os.close(master)
    text = bytes(seen)
    assert b"\x1b[" in text  # cursor moves: redrawn in place, not appended
    assert b"rows written 42" in text
    assert view(store.get(record.id)).startswith(
        f"task {record.id} backfill sim klines 1d 600000.SH: completed, 100.0%"
    )
