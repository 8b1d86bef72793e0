"""While a backfill writes, `etl sql`, a read-only DuckDB on the catalog and `etl tasks show`
all answer from other processes, and they see the task's progress move."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from etl.catalog import ReadOnlySession
from etl.tasks.records import TaskStore
from tests.conftest import ETL, etl_env, sim_stocks


def run(data_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ETL, *args], capture_output=True, text=True, env=etl_env(data_root), timeout=60
    )


@pytest.mark.parametrize("command", ["backfill", "fill-missing"])
def test_readers_answer_while_a_writer_writes(data_root: Path, command: str) -> None:
    assert run(data_root, "catalog", "rebuild").returncode == 0
    writer = subprocess.Popen(
        [
            *ETL,
            command,
            "--vendor",
            "sim",
            "--dataset",
            "klines",
            "--freq",
            "1m",
            "--symbols",
            sim_stocks("SH", 40, dt.date(2023, 1, 1)),
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
    store = TaskStore(data_root)
    seen: list[tuple[float, int]] = []
    cli_checked = False
    try:
        deadline = time.monotonic() + 90
        while writer.poll() is None and time.monotonic() < deadline:
            records = store.list(1)
            if not records or records[0].status != "running":
                time.sleep(0.05)
                continue
            # Another process's view of the task, the catalog file and the lake, right now.
            progress = store.get(records[0].id).progress
            with ReadOnlySession(data_root) as session:
                rows = session.query("SELECT count(*) FROM klines").rows[0][0]
            with duckdb.connect(str(data_root / "catalog.duckdb"), read_only=True) as con:
                assert con.execute("SELECT count(*) FROM klines").fetchone() is not None
            if not cli_checked and rows > 0:
                sql = run(data_root, "sql", "SELECT count(*) AS n FROM klines", "--json")
                shown = run(data_root, "tasks", "show", str(records[0].id), "--json")
                assert sql.returncode == 0 and shown.returncode == 0, sql.stderr + shown.stderr
                assert json.loads(sql.stdout)[0]["n"] >= rows
                assert json.loads(shown.stdout)["status"] in ("running", "completed")
                cli_checked = writer.poll() is None
            if writer.poll() is None:
                seen.append((progress, rows))
            time.sleep(0.2)
        out, err = writer.communicate(timeout=120)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0, err
    final = json.loads(out)
    assert cli_checked, "`etl sql`/`etl tasks show` never ran while the writer was running"
    assert len(seen) >= 3, "the backfill finished before readers could overlap it"
    assert seen == sorted(seen), "progress and row counts must only grow"
    assert seen[-1][0] > seen[0][0] and seen[-1][1] > seen[0][1]
    assert final["rows_written"] >= seen[-1][1]
