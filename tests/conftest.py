"""Shared fixtures: a fresh data root per test, a fixed clock, kline row builders."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)
SH = dt.timezone(dt.timedelta(hours=8))
ETL = [sys.executable, "-m", "etl"]


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    return root


@pytest.fixture
def now() -> dt.datetime:
    return NOW


def daily_ts(day: dt.date) -> dt.datetime:
    """00:00 Asia/Shanghai of ``day`` in UTC: a CN 1d bar's ts."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=SH).astimezone(dt.UTC)


def kline_rows(
    symbols: Iterable[str], days: Iterable[dt.date], close: float = 10.0, freq: str = "1d"
) -> pl.DataFrame:
    rows = []
    for sym in symbols:
        for day in days:
            rows.append(
                {
                    "symbol": sym,
                    "freq": freq,
                    "ts": daily_ts(day),
                    "trade_date": day,
                    "open": close,
                    "high": close + 1,
                    "low": close - 1,
                    "close": close,
                    "volume": 100.0,
                    "amount": 1000.0,
                    "settle": None,
                    "open_interest": None,
                    "vendor": "test",
                    "request_id": None,
                }
            )
    return pl.DataFrame(
        rows,
        schema_overrides={
            "ts": pl.Datetime("us", "UTC"),
            "settle": pl.Float64,
            "open_interest": pl.Float64,
            "request_id": pl.String,
        },
    )


def etl_env(data_root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    env["ETL_DATA_DIR"] = str(data_root)
    env.update(extra)
    return env


def emulator_env(server: Any, key: str = "k") -> dict[str, str]:
    """The variables that point `etl` at a running emulator: its key, REST and WebSocket
    URLs (Infoway paced at 10/s, its Premium plan's rate)."""
    vendor = server.emulator.vendor.upper()
    return {f"ETL_{vendor}_API_KEY": key, f"ETL_{vendor}_BASE_URL": server.base_url,
            f"ETL_{vendor}_WS_URL": server.ws_url, "ETL_INFOWAY_RATE": "10"}  # fmt: skip


def stored_klines(root: Path, freq: str = "1m") -> pl.DataFrame:
    """Every bar of ``freq`` in the lake under ``root``, in key order: what two lakes compare
    on (the values, not when or by which task they were written)."""
    from etl.dataroot import DataRoot

    files = sorted(DataRoot(root).dataset("klines").glob(f"freq={freq}/*/*.parquet"))
    return (
        pl.read_parquet(files)
        .select("symbol", "ts", "open", "high", "low", "close", "volume", "amount")
        .sort("symbol", "ts")
    )


def sim_stocks(market: str, n: int, listed_before: dt.date) -> str:
    """A comma list of ``n`` stocks of the sim universe listed before ``listed_before`` and
    still listed mid-2024: symbols whose every session in the tests' ranges has bars."""
    from etl.synthetic import instruments

    at = dt.datetime(2024, 6, 28, tzinfo=dt.UTC)
    live = [
        i.symbol
        for i in instruments(at, market=market)
        if i.type == "stock" and i.list_date and i.list_date < listed_before
    ]
    return ",".join(sorted(live)[:n])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The README test's notes (blocks marked no-run, slow blocks), so they stay seen."""
    notes = [
        value
        for status in ("passed", "failed")
        for report in terminalreporter.stats.get(status, [])
        for key, value in getattr(report, "user_properties", [])
        if key == "readme_note"
    ]
    if notes:
        terminalreporter.section("README examples")
        for note in notes:
            terminalreporter.write_line(note)
