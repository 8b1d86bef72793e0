"""An AmazingData minute backfill SIGKILLed at random moments, then resumed, against a real
emulator process: the lake equals an uninterrupted run's and each kill costs at most the
calls it could not have committed.

AmazingData serves minute bars 31 calendar days a call (several codes at once), and a
backfill's units are those windows, each committed when it arrives: a kill loses the call
in flight and one waiting for the commit that was running (measured: 48 kline calls for 36
with 5 kills, the first within the first 3 calls).

5m bars, not 1m: the windows, and so the calls and the kill points, are the same (31 days a
call), with a fifth of the rows to synthesize, send and store; and the emulator's rate is
raised to 20/s (the client told the same), so the two runs are not paced at 5/s. Both cut
the test from ~35 s to ~24 s."""

from __future__ import annotations

import datetime as dt
import random
import subprocess
from pathlib import Path

import pytest

from etl.emulators.testing import fetch_stats, reset_stats, spawn_emulate, vendor_calls
from tests.conftest import ETL, etl_env, sim_stocks, stored_klines
from tests.integration._kills import kill_and_resume

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILLS = 5
PER_KILL = 3  # the call in flight + one waiting for the running commit + the one just counted
PAGE = "/stock/kline"
RATE = 20  # requests/s, the emulator's and the client's


def test_killed_amazingdata_backfill_resumes_after_its_stored_windows(
    tmp_path: Path,
) -> None:
    symbols = sim_stocks("SH", 2, dt.date(2020, 1, 1))
    args = ["backfill", "--vendor", "amazingdata", "--dataset", "klines", "--freq", "5m",
            "--symbols", symbols, "--start", "2021-07-01", "--end", "2024-06-27",
            "--json"]  # fmt: skip
    with spawn_emulate(
        "amazingdata", "--now", "2024-06-28T12:00:00Z", "--option", f"rate={RATE}"
    ) as emulator:
        env = {
            "ETL_AMAZINGDATA_BASE_URL": emulator.base_url,
            "ETL_AMAZINGDATA_USERNAME": "analyst",
            "ETL_AMAZINGDATA_PASSWORD": "pw-9Tq",
            "ETL_AMAZINGDATA_RATE": str(RATE),
        }

        def windows() -> int:
            return vendor_calls(fetch_stats(emulator.base_url), PAGE)

        calm = tmp_path / "calm"
        reset_stats(emulator.base_url)
        done = subprocess.run([*ETL, *args], capture_output=True, text=True,
                              env=etl_env(calm, **env), timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        baseline = windows()
        assert baseline >= 30, f"too few calls ({baseline}) for kills to land mid-range"

        rough = tmp_path / "rough"
        reset_stats(emulator.base_url)
        run = kill_and_resume(rough, env, args, windows, kills=KILLS, rng=random.Random(3),
                              ahead=(3, 6))  # fmt: skip
        total = fetch_stats(emulator.base_url)
    assert run.kills == KILLS
    assert run.final["status"] == "completed"
    assert total["violations"] == 0
    want, got = stored_klines(calm, "5m"), stored_klines(rough, "5m")
    assert got.select("symbol", "ts").is_duplicated().sum() == 0
    assert got.equals(want)
    assert run.final["rows_written"] == got.height, (run.final["rows_written"], got.height)
    calls = vendor_calls(total, PAGE)
    print(f"amazingdata kline calls: uninterrupted {baseline}, with {KILLS} kills {calls}")
    assert baseline <= calls <= baseline + KILLS * PER_KILL, (calls, baseline)
