"""A recorder's repair during the session (a backfill with ``closed_by``: the stream's time)
stores the day's bars that have closed, against Infoway's and StockTV's emulators on a real
clock in mid-session. Both adapters judge completeness by whole trade days, so today was "not
complete yet" and such a repair stored nothing: the gap stayed open in ``klines`` until the
end-of-day fill. The day itself stays unanswered (its later slots are not confirmed empty)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from etl.config import Secret, Settings, VendorSettings
from etl.emulators.testing import running
from etl.tasks.backfill import BackfillRequest, backfill
from etl.tasks.records import TaskRecord
from etl.tasks.runtime import Runtime
from etl.tasks.sync import sync_instruments

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

KEY = "repair-key-4Jd8"
MINUTE = dt.timedelta(minutes=1)
# vendor -> (symbol, market to sync, the session's open in UTC on DAY)
CASES = {
    "infoway": ("600519.SH", "SH", dt.datetime(2024, 6, 27, 1, 30, tzinfo=dt.UTC)),
    "stocktv": ("AAPL.US", "US", dt.datetime(2024, 6, 27, 13, 30, tzinfo=dt.UTC)),
}
DAY = dt.date(2024, 6, 27)


def runtime(root: Path, vendor: str, base_url: str, now: dt.datetime) -> Runtime:
    settings = VendorSettings(
        vendor, base_url=base_url, api_key=Secret(KEY),
        extra={"backoff_base": 0.05, "backoff_jitter": 0.0},
    )  # fmt: skip
    full = Settings(data_dir=root, vendors={vendor: settings}, jobs_dir=root / "jobs")
    return Runtime(full, clock=lambda: now, progress=False)


def repair(root: Path, vendor: str, now: dt.datetime, closed_by: dt.datetime | None) -> TaskRecord:
    """A one-day 1m backfill as the recorder's repair runs it, with host and vendor clocks
    both at ``now``."""
    symbol, market, _ = CASES[vendor]
    with running(vendor, now=now, api_key=KEY) as server:
        rt = runtime(root, vendor, server.base_url, now)
        asyncio.run(sync_instruments(rt, vendor, market))
        req = BackfillRequest(vendor, "klines", (symbol,), "1m", DAY, DAY, closed_by=closed_by)
        record = asyncio.run(backfill(rt, req))
        assert server.stats()["violations"] == 0
    return record


def stored(root: Path) -> pl.DataFrame:
    files = sorted((root / "lake" / "klines").rglob("*.parquet"))
    if not files:
        return pl.DataFrame(schema={"ts": pl.Datetime("us", "UTC")})
    return pl.read_parquet(files).select("ts", "open", "high", "low", "close", "volume")


@pytest.mark.parametrize("vendor", sorted(CASES))
def test_a_repair_in_session_stores_the_closed_bars_of_today(tmp_path: Path, vendor: str) -> None:
    open_ = CASES[vendor][2]
    now = open_ + 50 * MINUTE  # the vendor's clock and the host's: mid-session
    closed_by = open_ + 40 * MINUTE  # the stream's last closed minute
    bounded = tmp_path / "bounded"
    record = repair(bounded, vendor, now, closed_by)
    assert record.status == "completed", record.errors
    got = stored(bounded).sort("ts")
    ends = got["ts"] + MINUTE
    assert ends.max() == closed_by  # every closed bar up to the bound, none after it
    assert got.height == 40  # one a minute since the open: none missing
    # the day is still not complete: reported unavailable, never answered as a whole
    unavailable = record.result["unavailable"]
    assert any("not complete yet" in str(u) for u in unavailable), unavailable

    # the same bars as the whole day's, fetched after the close
    after = tmp_path / "after"
    whole = repair(after, vendor, open_ + dt.timedelta(hours=8), None)
    assert whole.status == "completed", whole.errors
    before = stored(after).filter(pl.col("ts") < closed_by).sort("ts")
    assert got.equals(before)


@pytest.mark.parametrize("vendor", sorted(CASES))
def test_without_the_streams_bound_today_waits_for_the_close(tmp_path: Path, vendor: str) -> None:
    """The other side of the change: a plain backfill mid-session stores nothing of today
    (its bars are judged by the host's clock, day by day)."""
    now = CASES[vendor][2] + 50 * MINUTE
    record = repair(tmp_path, vendor, now, None)
    assert record.status == "completed", record.errors
    assert stored(tmp_path).height == 0
