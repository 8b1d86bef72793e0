"""Tasks started by ``etl serve`` run in worker processes: their records are the ones ``etl
tasks`` shows, and a server that stops leaves them ``interrupted`` and resumable, never
running without a parent. Resumed from the restarted server, the task finishes."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_helpers import ETL, add_user, serve_env, serving

from etl.emulators.testing import spawn_emulate
from etl.tasks.records import TaskStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORD = "tasks-pass-5d1c"
UPSTREAM = {"ETL_AMAZINGDATA_USERNAME": "up", "ETL_AMAZINGDATA_PASSWORD": "up-pass-0a9e"}
FUTURES = {"security_type": "future", "period_type": "daily", "start_date": "20240102",
           "end_date": "20240112", "contract_type": "all"}  # fmt: skip


def _until(what: str, check: Any, timeout: float = 60.0) -> Any:
    """Poll a task record (a file another process rewrites) until ``check`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_server_task_survives_a_restart_as_interrupted_and_resumes(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    env = serve_env(root, tmp_path / "config", ETL_AMAZINGDATA_RATE="1000")
    add_user(env, "ops", PASSWORD)
    store = TaskStore(root)
    with spawn_emulate("amazingdata", "--now", "2024-01-16T12:00:00Z", "--option", "rate=1000",
                       "--latency", "0.2", env=UPSTREAM) as emu:  # fmt: skip
        with serving(env) as server:
            headers = server.login("ops", PASSWORD)
            login = {"username": "up", "password": UPSTREAM["ETL_AMAZINGDATA_PASSWORD"]}
            config = {"name": "emulator", "base_url": emu.base_url, **login}
            httpx.post(server.base_url + "/configs/sdk", headers=headers, json=config)
            began = time.monotonic()
            started = httpx.post(server.base_url + "/cache/cache-all-missing", headers=headers,
                                 json=FUTURES, timeout=60).json()["data"]  # fmt: skip
            task_id = started["task_id"]
            assert started["status"] in ("pending", "running")
            # the step is running in the worker: visible through the API and etl tasks alike
            url = f"{server.base_url}/cache/tasks/{task_id}"
            running = _until("a running step", lambda: (
                (t := httpx.get(url, headers=headers).json()["data"]["task"])["status"] == "running"
                and "task" in (t["message"] or "") and t))  # fmt: skip
            assert time.monotonic() - began < 10
            shown = subprocess.run([*ETL, "tasks", "show", str(task_id), "--json"], env=env,
                                   capture_output=True, text=True, timeout=60)  # fmt: skip
            assert json.loads(shown.stdout)["status"] == "running"
            assert json.loads(shown.stdout)["kind"] == running["kind"] == "cache"
        # the server stopped (SIGTERM): its worker stops too, leaving the task resumable
        stopped = _until("the task to stop", lambda: (
            (r := store.get(task_id)).status not in ("pending", "running") and r))  # fmt: skip
        assert stopped.status == "interrupted", stopped
        assert stopped.progress < 1.0

        with serving(env) as server:
            headers = server.login("ops", PASSWORD)
            url = f"{server.base_url}/cache/tasks/{task_id}"
            assert httpx.get(url, headers=headers).json()["data"]["task"]["status"] == "interrupted"
            resumed = httpx.post(url + "/resume", headers=headers, timeout=60)
            assert resumed.status_code == 200, resumed.text
            done = _until("the resumed task", lambda: (
                (t := httpx.get(url, headers=headers).json()["data"]["task"])["status"]
                not in ("pending", "running") and t))  # fmt: skip
            assert done["status"] == "completed" and done["error_count"] == 0, done
            assert done["progress"] == 1.0
            bars = httpx.get(server.base_url + "/future/kline", headers=headers, params={
                "codes": "IF2401.CFE", "start_date": "20240102", "end_date": "20240112",
                "period": "daily"}).json()["data"]["IF2401.CFE"]  # fmt: skip
            assert len(bars) == 9  # every session of the range, after the resume
        # the interrupted step was resumed (the same record), not started again
        children = [r for r in store.list() if r.params.get("parent") == task_id]
        assert len(children) == len({(r.kind, r.params.get("dataset")) for r in children}) >= 4
        assert all(r.status == "completed" for r in children), [r.status for r in children]
