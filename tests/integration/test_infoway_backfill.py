"""Infoway end to end against its emulator on 127.0.0.1: the task layer (``backfill``,
``instruments sync``, ``calendar sync``) with a Runtime on a tmp data root, as the CLI would
run it, and once the real CLI. Every fault of docs/vendors/README.md ends either with exactly the
emulator's data (the synthetic generator behind it) or with a clear error and nothing stored
for the bad part; long minute ranges page through without a limit violation."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from etl.config import Secret, Settings, VendorSettings
from etl.emulators.infoway import InfowayEmulator
from etl.emulators.server import EmulatorServer
from etl.emulators.testing import running, spawn_emulate
from etl.errors import AuthError, QuotaExhausted
from etl.synthetic import klines_for_any
from etl.tasks.backfill import BackfillRequest, backfill
from etl.tasks.records import TaskRecord
from etl.tasks.runtime import Runtime, instrument_map
from etl.tasks.sync import sync_calendar, sync_instruments
from tests.conftest import ETL, etl_env

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)  # 20:00 Shanghai; New York not open yet
KEY = "iw-key-Zq81nXv3"
D = dt.date
SYMBOLS = ["600519.SH", "AAPL.US"]
START, END = D(2024, 1, 2), D(2024, 6, 27)  # one call of day bars each
PRICES = ("open", "high", "low", "close", "volume", "amount")
SCHEMA = {"symbol": pl.String, "ts": pl.Datetime("us", "UTC"), "trade_date": pl.Date,
          **{c: pl.Float64 for c in PRICES}}  # fmt: skip
VALUES = list(SCHEMA)


def runtime(root: Path, base_url: str, **extra: Any) -> Runtime:
    vendor = VendorSettings(
        "infoway", base_url=base_url, api_key=Secret(KEY),
        extra={"backoff_base": 0.05, "backoff_jitter": 0.0, **extra},
    )  # fmt: skip
    settings = Settings(data_dir=root, vendors={"infoway": vendor}, jobs_dir=root / "jobs")
    return Runtime(settings, clock=lambda: NOW, progress=False)


def run_backfill(
    root: Path, server: EmulatorServer, symbols: list[str], freq: str = "1d",
    start: D = START, end: D = END, **extra: Any,
) -> TaskRecord:  # fmt: skip
    req = BackfillRequest("infoway", "klines", tuple(symbols), freq, start, end)
    return asyncio.run(backfill(runtime(root, server.base_url, **extra), req))


def truth(symbols: list[str], freq: str = "1d", start: D = START, end: D = END) -> pl.DataFrame:
    """What the emulator serves: its own generator (FX: the "0" volume it sends is stored,
    not dropped; regression: forex volume was stored as null although Infoway sends v)."""
    frames = []
    for symbol in symbols:
        bars = klines_for_any(symbol, freq, start, end, NOW)
        frames.append(
            pl.DataFrame(schema=SCHEMA, data={
                "symbol": symbol, "ts": pl.Series(bars.ts).cast(pl.Datetime("us", "UTC")),
                "trade_date": pl.Series(bars.trade_date.astype("datetime64[D]")).cast(pl.Date),
                "open": bars.open, "high": bars.high, "low": bars.low, "close": bars.close,
                "volume": bars.volume if bars.volume is not None else [0.0] * len(bars),
                "amount": bars.amount if bars.amount is not None else [0.0] * len(bars),
            })
        )  # fmt: skip
    return pl.concat(frames).sort("symbol", "ts")


def stored(root: Path, freq: str = "1d") -> pl.DataFrame:
    files = sorted((root / "lake" / "klines").glob(f"freq={freq}/*/*.parquet"))
    if not files:
        return pl.DataFrame(schema=SCHEMA)
    return pl.read_parquet(files).select(VALUES).sort("symbol", "ts")


def leaks(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]


def reasons(record: TaskRecord) -> str:
    return " | ".join(e["reason"] for e in record.errors)


@pytest.mark.parametrize(
    "faults",
    [
        "", "rate_limit_burst@2", "rate_limit_burst:detail200@2", "rate_limit_burst:ret501@2",
        "http_500@2", "timeout:3@2", "connection_reset@2", "malformed_json@2",
        "truncated_body@2", "duplicate_bars", "out_of_order_bars", "out_of_order_bars:reversed",
        "schema_drift:extra",
    ],
)  # fmt: skip
def test_survived_faults_store_exactly_the_emulator_data(tmp_path: Path, faults: str) -> None:
    """Request 1 is /package/info, so @2 is the first kline call."""
    with running(InfowayEmulator, now=NOW, api_key=KEY, faults=faults) as server:
        record = run_backfill(tmp_path, server, SYMBOLS, read_timeout=1.0)
        stats = server.stats()
    assert (record.status, record.error_count, reasons(record)) == ("completed", 0, "")
    assert stored(tmp_path).equals(truth(SYMBOLS))
    assert stats["violations"] == 0 and bool(stats["faults_applied"]) == bool(faults)
    assert not leaks(tmp_path)


@pytest.mark.parametrize(
    ("faults", "rejected"),
    [
        ("duplicate_bars:conflict", "conflicting duplicates"),
        ("bad_prices", "NaN price"),  # and "price zero or negative", "high below low"
    ],
)
def test_bad_rows_are_rejected_and_the_rest_stored(
    tmp_path: Path, faults: str, rejected: str
) -> None:
    with running(InfowayEmulator, now=NOW, api_key=KEY, faults=faults) as server:
        record = run_backfill(tmp_path, server, SYMBOLS)
    got, want = stored(tmp_path), truth(SYMBOLS)
    assert record.status == "completed" and record.error_count > 0 and rejected in reasons(record)
    assert 0 < got.height < want.height
    assert got.join(want, on=["symbol", "ts"], how="anti").height == 0  # nothing made up
    assert got.equals(want.join(got.select("symbol", "ts"), on=["symbol", "ts"]))  # equal values


def test_missing_bars_are_stored_as_served_and_filled_later(tmp_path: Path) -> None:
    with running(InfowayEmulator, now=NOW, api_key=KEY, faults="missing_bars") as server:
        first = run_backfill(tmp_path, server, SYMBOLS)
    want = truth(SYMBOLS)
    got = stored(tmp_path)
    assert first.status == "completed" and first.error_count == 0
    assert 0 < want.height - got.height <= want.height // 5  # some inner bars: no error seen
    assert got.equals(want.join(got.select("symbol", "ts"), on=["symbol", "ts"]))
    with running(InfowayEmulator, now=NOW, api_key=KEY) as server:
        run_backfill(tmp_path, server, SYMBOLS)
    assert stored(tmp_path).equals(want)


@pytest.mark.parametrize(
    ("faults", "error"),
    [("auth_expired@2", AuthError), ("rate_limit_burst:ret502@2", QuotaExhausted)],
)
def test_auth_and_quota_stop_the_task(tmp_path: Path, faults: str, error: type) -> None:
    with (
        running(InfowayEmulator, now=NOW, api_key=KEY, faults=faults) as server,
        pytest.raises(error),
    ):
        run_backfill(tmp_path, server, ["600519.SH"])
    record = Runtime(runtime(tmp_path, "http://x").settings).store.list()[0]
    assert record.status == "failed" and stored(tmp_path).height == 0
    assert not leaks(tmp_path)


def test_schema_drift_rename_fails_the_units_and_stores_nothing(tmp_path: Path) -> None:
    with running(InfowayEmulator, now=NOW, api_key=KEY, faults="schema_drift:rename") as server:
        record = run_backfill(tmp_path, server, SYMBOLS)
    assert record.status == "completed" and record.error_count == 2
    assert "lacks ['t']" in reasons(record) and stored(tmp_path).height == 0


def test_minute_history_pages_back_once_per_bar(tmp_path: Path) -> None:
    """Eight weeks of 1m A-share bars (19 pages of 500) and five weeks of 5m forex (15
    pages): every bar stored once, each page asked once, zero limit violations."""
    sh, fx = ("600519.SH", D(2024, 5, 6)), ("EURUSD.FX", D(2024, 5, 27))
    with running(InfowayEmulator, now=NOW, api_key=KEY) as server:
        one = run_backfill(tmp_path, server, [sh[0]], "1m", sh[1], D(2024, 6, 28))
        five = run_backfill(tmp_path, server, [fx[0]], "5m", fx[1], D(2024, 6, 28))
        stats = server.stats()
    assert (one.status, one.error_count, five.status, five.error_count) == (
        "completed", 0, "completed", 0)  # fmt: skip
    minute = stored(tmp_path, "1m")
    assert minute.equals(truth([sh[0]], "1m", sh[1], D(2024, 6, 28)))  # the 28th is over
    # 39 sessions from 6 May (after Labour Day) to 28 June, one of them suspended.
    assert minute.height == 38 * 240 and minute.select("ts").is_unique().all()
    # FX: the 28th is still trading at 20:00 Shanghai, so it stops at the 27th.
    assert stored(tmp_path, "5m").equals(truth([fx[0]], "5m", fx[1], D(2024, 6, 27)))
    assert five.result["unavailable"] == [{"symbol": fx[0], "start": "2024-06-28",
                                           "end": "2024-06-28",
                                           "reason": "not complete yet at now"}]  # fmt: skip
    assert stats["violations"] == 0
    pages = stats["by_path"]["/{market}/v2/batch_kline"]["requests"]
    assert pages == -(-minute.height // 500) + -(-stored(tmp_path, "5m").height // 500)
    sent = sum(c["requests"] for p, c in stats["by_path"].items() if not p.startswith("/_"))
    assert one.requests + five.requests == sent > pages  # the records say all that was sent


def test_capability_limits_are_unavailable_not_failed(tmp_path: Path) -> None:
    with running(InfowayEmulator, now=NOW, api_key=KEY) as server:
        days = run_backfill(tmp_path, server, ["600519.SH"], "1d", D(2021, 1, 4), END)
        hours = run_backfill(tmp_path, server, ["600519.SH"], "1h", D(2019, 6, 3), D(2019, 7, 5))
    got = stored(tmp_path)
    first = got["trade_date"].min()
    # The latest 500 day bars end on the 28th, outside the range asked for: 499 stored.
    assert got.height == 499 and got.equals(truth(["600519.SH"], "1d", first, END))
    assert days.error_count == 0 and days.result["unavailable"] == [{
        "symbol": "600519.SH", "start": "2021-01-04", "end": str(first - dt.timedelta(days=1)),
        "reason": "beyond Infoway's window (only the latest 500 1d bars)"}]  # fmt: skip
    # maxYearHisData 5: minute history starts at 2019-06-28 20:00 Shanghai, a partial day.
    assert hours.error_count == 0 and hours.result["unavailable"] == [{
        "symbol": "600519.SH", "start": "2019-06-03", "end": "2019-06-28",
        "reason": "older than Infoway's minute history (5 years on this plan)"}]  # fmt: skip
    assert stored(tmp_path, "1h").equals(truth(["600519.SH"], "1h", D(2019, 6, 29), D(2019, 7, 5)))


def test_instruments_and_calendar_sync(tmp_path: Path) -> None:
    with running(InfowayEmulator, now=NOW, api_key=KEY) as server:
        rt = runtime(tmp_path, server.base_url)
        synced = asyncio.run(sync_instruments(rt, "infoway", None))
        rt = runtime(tmp_path, server.base_url)
        days = asyncio.run(sync_calendar(rt, "infoway", "HK", D(2024, 12, 20), D(2024, 12, 31)))
        assert server.stats()["violations"] == 0
    assert (synced.status, synced.error_count, days.status) == ("completed", 0, "completed")
    codes = instrument_map(tmp_path, "infoway").codes
    assert (codes["BRK_B.US"], codes["BTCUSDT.CC"], codes["EURUSD.FX"]) == (
        "BRK.B.US", "BTCUSDT", "EURUSD")  # fmt: skip
    assert codes["XAUUSD.INFOWAY"] == "XAUUSD" and codes["600519.SH"] == "600519.SH"
    files = sorted((tmp_path / "lake" / "calendar").glob("*/*.parquet"))
    cal = pl.read_parquet(files).sort("trade_date")
    assert cal.filter(pl.col("is_half_day"))["trade_date"].to_list() == [
        D(2024, 12, 24),
        D(2024, 12, 31),
    ]  # Christmas and New Year's eves
    assert cal.filter(~pl.col("is_open"))["trade_date"].to_list() == [
        D(2024, 12, 21), D(2024, 12, 22), D(2024, 12, 25), D(2024, 12, 26),
        D(2024, 12, 28), D(2024, 12, 29)]  # fmt: skip


def test_cli_backfill_and_check(tmp_path: Path) -> None:
    root = tmp_path / "data"
    with spawn_emulate("infoway", "--now", "2024-06-28T12:00:00Z", env={
        "ETL_INFOWAY_API_KEY": KEY}) as proc:  # fmt: skip
        env = etl_env(root, ETL_INFOWAY_BASE_URL=proc.base_url, ETL_INFOWAY_API_KEY=KEY)
        check = subprocess.run([*ETL, "vendors", "check", "infoway", "--json"],
                               capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
        done = subprocess.run(
            [*ETL, "backfill", "--vendor", "infoway", "--dataset", "klines", "--freq", "1d",
             "--symbols", "600519.SH,BTCUSDT.CC", "--start", "2024-06-03", "--end", "2024-06-27",
             "--json"], capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        wrong = subprocess.run([*ETL, "vendors", "check", "infoway", "--json"],
                               capture_output=True, text=True, timeout=60,
                               env={**env, "ETL_INFOWAY_API_KEY": "wrong"})  # fmt: skip
        violations = proc.stats()["violations"]
    assert check.returncode == 0 and json.loads(check.stdout)["success"] is True
    doc = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr
    # 600519.SH: 18 sessions (Dragon Boat on the 10th); BTCUSDT.CC: all 25 days.
    assert (doc["status"], doc["error_count"], doc["rows_written"]) == ("completed", 0, 43)
    assert wrong.returncode == 3 and "Token invalid" in json.loads(wrong.stdout)["message"]
    assert violations == 0 and not leaks(root)
    assert KEY not in check.stderr + done.stderr + wrong.stdout + wrong.stderr
