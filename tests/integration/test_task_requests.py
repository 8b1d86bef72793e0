"""A task's ``requests`` is what the vendor was sent over every run of it: a backfill stopped
with Ctrl-C (exit 130) counts what it sent before stopping, and its resume adds what it sent,
so the completed record equals the emulator's own count of vendor calls. (It said 0 in every
task document before.) A SIGKILLed run's requests are counted through the task's request
journal: tests/integration/test_backfill_crash.py and test_fill_crash.py."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from etl.emulators.testing import fetch_stats, reset_stats, spawn_emulate, vendor_calls
from tests.conftest import ETL, etl_env, sim_stocks

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def sent(url: str) -> int:
    return vendor_calls(fetch_stats(url))


def test_requests_add_up_over_a_ctrl_c_and_its_resume(tmp_path: Path) -> None:
    # more symbols than units in flight: a stop leaves some not begun, and some part-paged
    # (the stop is taken between pages: tests/integration/test_backfill_stop.py)
    symbols = sim_stocks("US", 12, dt.date(2020, 1, 1))
    args = ["backfill", "--vendor", "infoway", "--dataset", "klines", "--freq", "1m",
            "--symbols", symbols, "--start", "2024-06-03", "--end", "2024-06-27",
            "--json"]  # fmt: skip
    with spawn_emulate("infoway", "--now", "2024-06-28T12:00:00Z") as emulator:
        env = etl_env(tmp_path, ETL_INFOWAY_BASE_URL=emulator.base_url,
                      ETL_INFOWAY_API_KEY="test-key", ETL_INFOWAY_RATE="10")  # fmt: skip
        reset_stats(emulator.base_url)
        proc = subprocess.Popen([*ETL, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)  # fmt: skip
        deadline = time.monotonic() + 120
        while sent(emulator.base_url) < 10:  # stopped mid-range, as an event
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        first = json.loads(out)
        assert first["status"] == "interrupted"
        sent_first = sent(emulator.base_url)
        assert first["requests"] == sent_first >= 10

        resumed = subprocess.run([*ETL, "tasks", "resume", str(first["id"]), "--json"],
                                 capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
        final = json.loads(resumed.stdout)
        total = sent(emulator.base_url)
    assert final["status"] == "completed"
    assert total > sent_first
    assert final["requests"] == total  # both runs, each counted once
