"""`etl demo`, the first command a new user runs, end to end."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest

from etl.commands.demo_run import _last_session
from tests.conftest import ETL, etl_env

# (clock in UTC, the last closed SH session): each checked against the SSE calendar
LAST_SESSION = [
    ("2026-11-22T16:30:00+00:00", dt.date(2026, 11, 20)),  # Monday 00:30 in Shanghai: Friday
    ("2026-11-23T06:00:00+00:00", dt.date(2026, 11, 20)),  # Monday 14:00: still trading
    ("2026-11-23T07:31:00+00:00", dt.date(2026, 11, 23)),  # Monday 15:31: closed
    ("2024-02-12T09:00:00+00:00", dt.date(2024, 2, 8)),  # Spring Festival week
]


@pytest.mark.parametrize(("clock", "want"), LAST_SESSION)
def test_the_demo_ends_at_the_last_closed_session(clock: str, want: dt.date) -> None:
    # Regression: after midnight UTC+8 the demo took the new day's session, not yet traded,
    # and its pandas cross-section came back empty.
    assert _last_session(lambda: dt.datetime.fromisoformat(clock)) == want


def test_demo_runs_the_pipeline_and_every_example_has_results(data_root: Path) -> None:
    proc = subprocess.run(
        [*ETL, "demo", "--json"],
        capture_output=True,
        text=True,
        env=etl_env(data_root),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert all(t["status"] == "completed" and t["error_count"] == 0 for t in doc["tasks"])
    stored = {row["dataset"]: row["rows"] for row in doc["stored"]}
    assert stored["klines"] > 100_000 and stored["income"] > 0 and stored["calendar"] > 0
    assert len(doc["sql"]) == 5
    # five sessions of one symbol (four if the synthetic market suspended it one day)
    assert len(doc["polars"]) in (4, 5) and all(day["bars"] == 240 for day in doc["polars"])
    assert len(doc["pandas"]) == 5
    assert doc["seconds"] < 60
