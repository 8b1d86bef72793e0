"""Done-when of the platform API: the platform document's own client code, unchanged but for
the base URL, against a real ``etl serve`` process whose upstream is a real AmazingData
emulator process. Every answer read back equals the upstream's own answer to the same call.

The emulator's data clock is 2024-01-16 so that the document's examples (January 2024,
``IF2401.CFE``) are on the platform's list of today's codes when the warehouse caches them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import seed_client as seed
from serve_helpers import add_user, serve_env, serving

from etl.emulators.testing import spawn_emulate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

UPSTREAM_USER = "upstream"
UPSTREAM_PASSWORD = "upstream-secret-7f3a"  # the emulator's test login


def _login(base: str, username: str, password: str) -> dict[str, str]:
    answer = httpx.post(base + "/auth/login", json={"username": username, "password": password})
    return {"Authorization": "Bearer " + answer.json()["data"]["access_token"]}


def _chart_of(bars: list[dict[str, Any]]) -> dict[str, Any]:
    """The chart form (ECharts) of kline bars, as the document describes it."""
    return {
        "categoryData": [b["trade_date"] for b in bars],
        "values": [[b["open"], b["close"], b["low"], b["high"], b["volume"]] for b in bars],
        "volumes": [b["volume"] for b in bars],
    }


def test_the_documents_client_code_works_against_etl_serve(tmp_path: Any) -> None:
    root = tmp_path / "data"
    root.mkdir()
    env = serve_env(root, tmp_path / "config", ETL_AMAZINGDATA_RATE="1000")
    add_user(env, "admin", "admin123")  # the document's example account
    upstream_env = {
        "ETL_AMAZINGDATA_USERNAME": UPSTREAM_USER,
        "ETL_AMAZINGDATA_PASSWORD": UPSTREAM_PASSWORD,
    }
    with (
        spawn_emulate("amazingdata", "--now", "2024-01-16T12:00:00Z", "--option", "rate=1000",
                      env=upstream_env) as emu,
        serving(env) as server,
    ):  # fmt: skip
        base, up = server.base_url, emu.base_url
        up_headers = _login(up, UPSTREAM_USER, UPSTREAM_PASSWORD)

        # 2. sign in, who am I
        token = seed.login_example(base)
        headers = {"Authorization": f"Bearer {token}"}
        me = seed.me_example(base, token)
        assert (me["username"], me["role"], me["is_active"]) == ("admin", "admin", True)

        # 3. configure the upstream and test it
        assert seed.configs_example(base, headers) == []
        parts = urlsplit(up)
        created = seed.create_config_example(
            base, headers, parts.hostname, parts.port, UPSTREAM_USER, UPSTREAM_PASSWORD
        ).json()["data"]
        assert created["password"] == "***" and created["is_default"] is True
        assert created["base_url"] == up
        [listed] = seed.configs_example(base, headers)
        assert listed["password"] == "***"
        result = seed.test_config_example(base, headers, created["id"])
        assert result["success"] is True, result
        assert result["response_time"] > 0

        # 7.1 detect before anything is cached: nothing is known yet, and it says so
        first = seed.detect_example(base, headers)
        assert first["total_count"] == 0 and "note" in first

        # 7.2 cache everything in the range, wait with the document's own poller
        client = seed.AmazingDataClient(base, "admin", "admin123")
        task = seed.wait_for_task(client, seed.cache_all_example(base, headers))
        assert task["progress"] == 1.0 and task["error_count"] == 0, task
        futures = client.request("POST", "/cache/cache-all-missing", json={
            "security_type": "future", "period_type": "daily", "start_date": "20240101",
            "end_date": "20240131", "contract_type": "all",
        }).json()["data"]  # fmt: skip
        task = seed.wait_for_task(client, futures["task_id"])
        assert task["error_count"] == 0, task

        # detect again: every stock judged, none incomplete; the days after the upstream's
        # clock were answered empty, and are recorded so
        after = seed.detect_example(base, headers)
        assert after["total_count"] > 400 and after["missing_count"] == 0, after
        states = after["states"]
        assert states["missing"] == states["failed"] == states["unfillable"] == 0, states
        assert after["present_rows"] + states["confirmed_empty"] == after["expected_rows"] > 0

        # 7.3 fill what is missing: nothing is, and the task says so
        filled = seed.fill_example(base, headers).json()["data"]
        assert filled["missing_count"] == 0
        task = seed.wait_for_task(client, filled["task_id"])
        assert task["status"] == "completed" and task["error_count"] == 0

        # 7.4 / 7.5 task records, the same ones etl tasks shows
        shown = seed.task_example(base, headers, filled["task_id"])
        assert shown["id"] == filled["task_id"] and shown["status"] == "completed"
        listed_tasks = seed.tasks_example(base, headers)
        assert len(listed_tasks) == 10 and filled["task_id"] in [t["id"] for t in listed_tasks]

        # read everything back: equal to the upstream's own answers
        for example in (
            seed.kline_example, seed.calendar_example, seed.info_example, seed.codes_example,
            seed.main_contracts_example, seed.finance_examples,
        ):  # fmt: skip
            mine, theirs = example(base, headers), example(up, up_headers)
            assert mine == theirs, example.__name__
            assert theirs, example.__name__  # the comparison compared something
        # the lake keeps no order of varieties: the same set
        mine_v, theirs_v = (
            seed.varieties_example(base, headers),
            seed.varieties_example(up, up_headers),
        )
        assert sorted(mine_v, key=str) == sorted(theirs_v, key=str) and theirs_v
        for example in (seed.batch_example, seed.future_kline_example):
            mine, theirs = example(base, headers).json(), example(up, up_headers).json()
            assert mine == theirs and theirs["data"], example.__name__
        assert seed.chart_example(base, headers) == _chart_of(
            seed.kline_example(up, up_headers)["600000.SH"]
        )
        statements = seed.finance_examples(base, headers)
        assert all(rows["600000.SH"] for rows in statements.values())
