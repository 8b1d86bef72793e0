"""``POST /cache/detect-all-missing`` over a board of several markets is **one** detection:
the document's ``task_id`` names one task record whose counts are the document's, as
``etl detect-missing`` prints the record it made, so ``GET /cache/tasks/{id}`` (and ``etl tasks
show``) agree with what the detection answered."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import httpx
import pytest
from serve_helpers import add_user, serve_env, serving

from etl.config import load_settings
from etl.tasks import engine
from etl.tasks.engine import TaskSpec
from etl.tasks.expected import Selection
from etl.tasks.runtime import Runtime

pytestmark = pytest.mark.integration

PASSWORD = "detect-pass-5e1c0a"
START, END = dt.date(2024, 1, 2), dt.date(2024, 1, 5)


def _fill(root: Path) -> None:
    """Instruments and calendars of SH and SZ from sim, and one stock's bars."""
    rt = Runtime(settings=load_settings(data_dir=root, env={}), progress=False)

    async def go() -> None:
        for market in ("SH", "SZ"):
            await engine.start(rt, TaskSpec.instruments("sim", market))
            await engine.start(rt, TaskSpec.calendar("sim", market, START, END))
        sel = Selection("klines", START, END, "1d", ("600000.SH", "000001.SZ"))
        await engine.start(rt, TaskSpec.backfill("sim", sel))

    asyncio.run(go())


def test_detect_all_missing_of_two_markets_is_one_task_with_its_counts(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    _fill(root)
    env = serve_env(root, tmp_path / "config")
    add_user(env, "admin", PASSWORD)
    with serving(env) as server:
        headers = server.login("admin", PASSWORD)
        base = server.base_url
        before = httpx.get(f"{base}/cache/tasks", headers=headers).json()["data"]["total"]
        doc = httpx.post(f"{base}/cache/detect-all-missing", headers=headers, json={
            "security_type": "stock", "period_type": "daily", "start_date": "20240102",
            "end_date": "20240105", "contract_type": "all",
        }).json()["data"]  # fmt: skip
        listed = httpx.get(f"{base}/cache/tasks", headers=headers).json()["data"]
        task = httpx.get(f"{base}/cache/tasks/{doc['task_id']}", headers=headers).json()
    assert set(doc["calendars"]) == {"SH", "SZ"}, doc["calendars"]
    assert doc["complete_count"] == 2 and doc["missing_count"] == doc["total_count"] - 2
    assert listed["total"] == before + 1  # one record for the whole board
    record = task["data"]["task"]
    assert (record["kind"], record["status"]) == ("detect-missing", "completed")
    assert record["total_count"] == doc["total_count"]
    assert record["success_count"] == doc["complete_count"]
    assert record["result"]["missing_count"] == doc["missing_count"]
    assert record["params"]["markets"] == ["SH", "SZ"]
