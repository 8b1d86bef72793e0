"""Ctrl-C, SIGTERM and ``etl tasks cancel`` stop a backfill between pages, not only between
units: real processes against the Infoway emulator, two symbols each paged back over 8 weeks
of minutes (a unit is one symbol paged to its end, ~32 pages).

After the stop, each symbol being paged asks for at most the page it was already waiting for
(the page in flight, or the one held by the rate limit), and that page is committed with its
cursor. The record says how far it got (0/2 symbols done, ``rows_written`` the rows in the
lake, ``requests`` the calls the emulator counted) and a resume pages back from the stored
cursors: its kline calls and the stopped run's add up to an uninterrupted run's, plus at most
one per symbol (a resume pages from the end of the oldest day received, which was held back
until the next page would complete it). Regression: the stop waited for every page of the
symbols in flight (with 4 symbols the whole job finished before it took effect).
"""

from __future__ import annotations

import datetime as dt
import json
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
from etl.tasks.records import TaskStore
from tests.conftest import ETL, etl_env, sim_stocks, stored_klines

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SYMBOLS = 2
PAGE = "batch_kline"  # the path of Infoway's kline calls


def _backfill(symbols: str) -> list[str]:
    return [*ETL, "backfill", "--vendor", "infoway", "--dataset", "klines", "--freq", "1m",
            "--symbols", symbols, "--start", "2024-05-01", "--end", "2024-06-27",
            "--json"]  # fmt: skip


@dataclass
class Calm:
    """The emulator, and what an uninterrupted run asked for and stored."""

    emulator: EmulateProcess
    symbols: str
    pages: int
    lake: pl.DataFrame

    def env(self, root: Path) -> dict[str, str]:
        return etl_env(root, ETL_INFOWAY_BASE_URL=self.emulator.base_url,
                       ETL_INFOWAY_API_KEY="test-key")  # fmt: skip

    def pages_sent(self) -> int:
        return vendor_calls(fetch_stats(self.emulator.base_url), PAGE)


@pytest.fixture(scope="module")
def calm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Calm]:
    symbols = sim_stocks("US", SYMBOLS, dt.date(2020, 1, 1))
    with spawn_emulate("infoway", "--now", "2024-06-28T12:00:00Z") as emulator:
        root = tmp_path_factory.mktemp("calm")
        out = Calm(emulator, symbols, 0, pl.DataFrame())
        reset_stats(emulator.base_url)
        done = subprocess.run(_backfill(symbols), capture_output=True, text=True,
                              env=out.env(root), timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        out.pages = out.pages_sent()
        out.lake = stored_klines(root)
        assert out.pages >= 50, "too few pages for a stop to land mid-symbol"
        yield out


def _wait_for_pages(calm: Calm, target: int, proc: subprocess.Popen[str]) -> None:
    """Until the emulator has answered ``target`` kline calls: an event, not a guess at how
    long the start takes on a busy machine."""
    deadline = time.monotonic() + 120
    while calm.pages_sent() < target:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no kline calls"
        time.sleep(0.01)  # between looks at the counter


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "cancel"])
def test_a_stop_is_taken_between_pages_and_the_resume_asks_no_page_again(
    calm: Calm, how: str, tmp_path: Path
) -> None:
    url = calm.emulator.base_url
    env = calm.env(tmp_path)
    reset_stats(url)
    proc = subprocess.Popen(_backfill(calm.symbols), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    _wait_for_pages(calm, 6, proc)  # a few pages of each symbol
    if how == "cancel":
        task_id = TaskStore(tmp_path).list(1)[0].id
        subprocess.run([*ETL, "tasks", "cancel", str(task_id)], check=True, env=env, timeout=60)
        asked = calm.pages_sent()  # the cancel is on file from here on
    else:
        asked = calm.pages_sent()
        proc.send_signal(getattr(signal, how))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    first = json.loads(out)
    stopped_at = calm.pages_sent()
    # One page per symbol it was waiting for, and one more each that may have gone between
    # the look at the counter and the stop request; the rest of both symbols is ~50 pages.
    assert stopped_at - asked <= 2 * SYMBOLS, (asked, stopped_at, calm.pages)
    assert first["status"] == ("cancelled" if how == "cancel" else "interrupted")
    assert (first["success_count"], first["total_count"]) == (0, SYMBOLS)
    assert first["requests"] == vendor_calls(fetch_stats(url))
    part = stored_klines(tmp_path)
    assert first["rows_written"] == part.height > 0
    # what was stored is the calm run's bars, each once
    assert part.select("symbol", "ts").is_duplicated().sum() == 0
    keys = part.select("symbol", "ts")
    assert part.equals(calm.lake.join(keys, on=["symbol", "ts"], how="semi").sort("symbol", "ts"))

    resumed = subprocess.run([*ETL, "tasks", "resume", str(first["id"]), "--json"],
                             capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    final = json.loads(resumed.stdout)
    stats = fetch_stats(url)
    assert final["status"] == "completed"
    assert (final["success_count"], final["total_count"]) == (SYMBOLS, SYMBOLS)
    assert final["requests"] == vendor_calls(stats)  # both runs, each counted once
    assert stats["violations"] == 0
    pages = vendor_calls(stats, PAGE)
    print(f"{how}: kline calls {pages} (stopped at {stopped_at}); uninterrupted {calm.pages}")
    assert calm.pages <= pages <= calm.pages + SYMBOLS
    lake = stored_klines(tmp_path)
    assert lake.equals(calm.lake)
    assert final["rows_written"] == lake.height
