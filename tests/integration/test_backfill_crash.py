"""A backfill of Infoway minute pages SIGKILLed at random moments (one within its first few
requests), then resumed, against a real emulator process: the final lake equals an
uninterrupted run's, ``rows_written`` equals the rows stored, and each kill costs at most
the calls it could not have committed.

Why a kill costs anything: a page is stored (with the cursor to page back from) as soon as
the committer gets to it, so what a kill loses, per symbol being paged, is the page in
flight, a page waiting for the commit that was running, and the part of the oldest day
received (kept back until the next page completes it, so a resume pages from that day's
end: one page's shift at most). Infoway's units are one symbol each, as many at once as the
rate needs (the governor's pace: 1 on loopback), at most ``IN_FLIGHT``; the bound allows
the most.
Regression: three kills cost 1.62x an uninterrupted run (324 requests for ~200), because a
resumed backfill paged again from the newest page.

Only kline calls are counted: every new process also reads ``/package/info``.

The emulator serves the Pro plan (20/s) rather than Premium (10/s): the bound hangs on the
calls in flight, not on the pace (54 s to ~29 s for this test alone)."""

from __future__ import annotations

import datetime as dt
import random
import subprocess
from pathlib import Path

import pytest

from etl.emulators.testing import fetch_stats, reset_stats, spawn_emulate, vendor_calls
from etl.vendors.infoway.plan import IN_FLIGHT
from tests.conftest import ETL, etl_env, sim_stocks, stored_klines
from tests.integration._kills import kill_and_resume

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILLS = 5
PER_KILL = 3 * IN_FLIGHT  # in flight + waiting for the running commit + the oldest day's shift
EMULATOR_NOW = "2024-06-28T12:00:00Z"
START, END = "2024-05-01", "2024-06-27"


def _backfill_args(symbols: str) -> list[str]:
    return ["backfill", "--vendor", "infoway", "--dataset", "klines", "--freq", "1m",
            "--symbols", symbols, "--start", START, "--end", END, "--json"]  # fmt: skip


def test_killed_backfill_resumes_where_its_last_page_was_stored(tmp_path: Path) -> None:
    rng = random.Random(10)
    symbols = sim_stocks("US", 6, dt.date(2020, 1, 1))
    with spawn_emulate("infoway", "--now", EMULATOR_NOW, "--option", "plan=Pro") as emulator:
        env = {"ETL_INFOWAY_BASE_URL": emulator.base_url, "ETL_INFOWAY_API_KEY": "test-key"}

        calm = tmp_path / "calm"
        reset_stats(emulator.base_url)
        done = subprocess.run(
            [*ETL, *_backfill_args(symbols)],
            capture_output=True,
            text=True,
            env=etl_env(calm, **env),
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        baseline = vendor_calls(fetch_stats(emulator.base_url), "batch_kline")
        assert baseline >= 150, "too few pages for kills to land mid-range"

        rough = tmp_path / "rough"
        reset_stats(emulator.base_url)
        # The first kill lands within the first few calls (before any commit, likely); the
        # others after a random number of this run's calls, as the emulator counts them.
        run = kill_and_resume(
            rough, env, _backfill_args(symbols),
            lambda: vendor_calls(fetch_stats(emulator.base_url), "batch_kline"),
            kills=KILLS, rng=rng,
        )  # fmt: skip
        assert run.kills == KILLS
        assert run.final["status"] == "completed"
        doc = run.final
        total = fetch_stats(emulator.base_url)
        assert total["violations"] == 0

    want, got = stored_klines(calm), stored_klines(rough)
    assert got.select("symbol", "ts").is_duplicated().sum() == 0
    assert got.equals(want)
    # every row was new to this lake: rows_written counts each once, across five kills
    assert doc["rows_written"] == got.height, (doc["rows_written"], got.height)
    # every request the killed runs sent is in the record (the request journal): those
    # the vendor counted, and at most one per kill that was being written as it came
    counted = vendor_calls(total)
    assert counted <= doc["requests"] <= counted + run.kills, (doc["requests"], total)
    calls = vendor_calls(total, "batch_kline")
    print(f"kline calls: uninterrupted {baseline}, with {KILLS} kills {calls}")
    assert baseline <= calls <= baseline + KILLS * PER_KILL, (calls, baseline)
