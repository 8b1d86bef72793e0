"""A StockTV minute backfill stopped part-way, then resumed, against a real emulator process:
SIGKILLed at random moments (one within its first calls), or stopped with Ctrl-C. The lake
equals an uninterrupted run's and a stop costs at most the calls it could not have committed.

StockTV pages a symbol's range backwards, 1,000 bars a call. Each page's completed days are
committed with the cursor to page back from before the next page is asked, so what a kill
loses per symbol being paged is its page (in flight, or being committed) and the oldest day
received (kept back until the next page completes it: one page's shift at most). The kills
after the first land 8-12 pages into a run, so a resume that paged again from the newest
page would cost more than the bound. Regression: StockTV's adapter handed over nothing
before a symbol's last page, so a kill lost every page of the symbols in flight (161 kline
calls for 114 over 4 symbols and 15 weeks), and Ctrl-C waited for all of them. The
uninterrupted run is small (2 symbols, 10 weeks: ~40 pages); `python -m bench kills` runs
the large one."""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from etl.emulators.testing import (
    EmulateProcess,
    fetch_stats,
    reset_stats,
    spawn_emulate,
    vendor_calls,
)
from tests.conftest import ETL, etl_env, sim_stocks, stored_klines
from tests.integration._kills import kill_and_resume

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILLS = 3
SYMBOLS = 2
IN_FLIGHT = 2  # StockTV backfill units fetched at once at most (its rate's in_flight, else 2)
PER_KILL = 2 * IN_FLIGHT  # per unit running: its page + the oldest day's shift
EMULATOR_NOW = "2024-06-28T22:00:00Z"
START, END = "2024-04-19", "2024-06-27"
PAGE = "/stock/kline"


@dataclass
class Calm:
    """The emulator, a data root with StockTV's pid map synced, and what an uninterrupted
    backfill asked for and stored."""

    emulator: EmulateProcess
    synced: Path
    args: list[str]
    pages: int
    lake: pl.DataFrame

    @property
    def env(self) -> dict[str, str]:
        return {"ETL_STOCKTV_BASE_URL": self.emulator.base_url, "ETL_STOCKTV_API_KEY": "k"}

    def pages_sent(self) -> int:
        return vendor_calls(fetch_stats(self.emulator.base_url), PAGE)

    def root(self, where: Path) -> Path:
        """A fresh data root holding only the synced pid map."""
        shutil.copytree(self.synced, where)
        return where


@pytest.fixture(scope="module")
def calm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Calm]:
    symbols = sim_stocks("US", SYMBOLS, dt.date(2020, 1, 1))
    args = ["backfill", "--vendor", "stocktv", "--dataset", "klines", "--freq", "1m",
            "--symbols", symbols, "--start", START, "--end", END, "--json"]  # fmt: skip
    with spawn_emulate("stocktv", "--now", EMULATOR_NOW) as emulator:
        out = Calm(emulator, tmp_path_factory.mktemp("stv") / "synced", args, 0, pl.DataFrame())
        sync = subprocess.run(
            [*ETL, "instruments", "sync", "--vendor", "stocktv", "--market", "US"],
            capture_output=True, text=True, env=etl_env(out.synced, **out.env), timeout=120,
        )  # fmt: skip
        assert sync.returncode == 0, sync.stderr
        root = out.root(tmp_path_factory.mktemp("stv") / "calm")
        reset_stats(emulator.base_url)
        done = subprocess.run([*ETL, *args], capture_output=True, text=True,
                              env=etl_env(root, **out.env), timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        out.pages, out.lake = out.pages_sent(), stored_klines(root)
        assert out.pages >= 36, f"too few pages ({out.pages}) for stops to land mid-range"
        yield out


def test_killed_stocktv_backfill_resumes_from_its_last_stored_page(
    calm: Calm, tmp_path: Path
) -> None:
    root = calm.root(tmp_path / "rough")
    reset_stats(calm.emulator.base_url)
    run = kill_and_resume(root, calm.env, calm.args, calm.pages_sent, kills=KILLS,
                          rng=random.Random(7), ahead=(8, 12))  # fmt: skip
    total = fetch_stats(calm.emulator.base_url)
    assert run.kills == KILLS
    assert run.final["status"] == "completed"
    assert total["violations"] == 0
    got = stored_klines(root)
    assert got.select("symbol", "ts").is_duplicated().sum() == 0
    assert got.equals(calm.lake)
    assert run.final["rows_written"] == got.height, (run.final["rows_written"], got.height)
    calls = vendor_calls(total, PAGE)
    print(f"stocktv kline calls: uninterrupted {calm.pages}, with {KILLS} kills {calls}")
    assert calm.pages <= calls <= calm.pages + KILLS * PER_KILL, (calls, calm.pages)


def test_ctrl_c_stops_a_stocktv_backfill_between_pages(calm: Calm, tmp_path: Path) -> None:
    root = calm.root(tmp_path / "stopped")
    env = etl_env(root, **calm.env)
    reset_stats(calm.emulator.base_url)
    proc = subprocess.Popen([*ETL, *calm.args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)  # fmt: skip
    deadline = time.monotonic() + 120
    while calm.pages_sent() < 6:  # a few pages of the symbols in flight
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no kline calls"
        time.sleep(0.01)  # between looks at the vendor's counter
    asked = calm.pages_sent()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    first = json.loads(out)
    # the page each unit was waiting for, and one each that may have gone meanwhile
    assert calm.pages_sent() - asked <= 2 * IN_FLIGHT, (asked, calm.pages_sent())
    assert first["status"] == "interrupted"
    part = stored_klines(root)
    assert first["rows_written"] == part.height > 0
    resumed = subprocess.run([*ETL, "tasks", "resume", str(first["id"]), "--json"],
                             capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "completed"
    stats = fetch_stats(calm.emulator.base_url)
    assert stats["violations"] == 0
    assert stored_klines(root).equals(calm.lake)
    pages = vendor_calls(stats, PAGE)
    print(f"stocktv Ctrl-C: kline calls {pages}; uninterrupted {calm.pages}")
    assert calm.pages <= pages <= calm.pages + IN_FLIGHT  # one per symbol stopped mid-range
