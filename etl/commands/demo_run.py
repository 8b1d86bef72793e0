"""What ``etl demo`` does: the whole pipeline, offline, on the embedded ``sim`` vendor.

Syncs instruments and calendars, backfills two years of 1d bars for about 300 A-shares and
five sessions of 1m bars for 20 of them, loads statements, their adjustment factors and
futures reference data, then
shows what was stored and three ways to query it (DuckDB SQL, polars, pandas).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
from rich.console import Console

from etl.calendars import trading_days
from etl.catalog import ReadOnlySession, ensure_catalog
from etl.commands.common import Output, run_async
from etl.commands.query import render_table, rows_as_dicts
from etl.dataroot import DataRoot
from etl.errors import PartialFailure
from etl.tasks.backfill import BackfillRequest, backfill
from etl.tasks.records import TaskRecord
from etl.tasks.runtime import Runtime
from etl.tasks.sync import sync_calendar, sync_instruments

__all__ = ["run"]

VENDOR = "sim"
DAILY_SYMBOLS = 300
MINUTE_SYMBOLS = 20
MINUTE_SESSIONS = 5
CALENDAR_MARKETS = ("SH", "SZ", "HK", "US", "CFE")

SQL_EXAMPLE = """\
SELECT symbol,
       round(100 * (last(close ORDER BY ts) / first(close ORDER BY ts) - 1), 1) AS return_pct,
       count(*) AS sessions
FROM klines
WHERE freq = '1d'
GROUP BY symbol
ORDER BY return_pct DESC
LIMIT 5"""


def _last_session(clock: Callable[[], dt.datetime]) -> dt.date:
    """The latest SH session that has closed (15:00 Asia/Shanghai) at the clock's time."""
    local = clock().astimezone(ZoneInfo("Asia/Shanghai"))
    today = local.date()
    days = [d.astype(dt.date) for d in trading_days("SH", today - dt.timedelta(days=20), today)]
    closed = [d for d in days if d < today or local.time() >= dt.time(15, 30)]
    last: dt.date = closed[-1]
    return last


def _step(console: Console, label: str, fn: Callable[[], TaskRecord]) -> TaskRecord:
    started = time.monotonic()
    record = fn()
    took = time.monotonic() - started
    status = (
        "[green]ok[/]"
        if record.status == "completed" and not record.error_count
        else (f"[yellow]{record.status}, {record.error_count} errors[/]")
    )
    console.print(f"  {label:<46} {record.rows_written:>9,} rows  {took:5.1f} s  {status}")
    return record


def _sync_calendar(rt: Runtime, market: str, start: dt.date, end: dt.date) -> TaskRecord:
    return run_async(sync_calendar(rt, VENDOR, market, start, end))


def _backfill(rt: Runtime, req: BackfillRequest) -> TaskRecord:
    return run_async(backfill(rt, req))


def _pick_symbols(rt: Runtime, start: dt.date) -> list[str]:
    files = list(DataRoot(rt.root).dataset("instruments").glob("*/*.parquet"))
    frame = (
        pl.scan_parquet(files, hive_partitioning=True)
        .filter(
            (pl.col("vendor") == VENDOR)
            & (pl.col("type") == "stock")
            & pl.col("market").is_in(["SH", "SZ"])
            & (pl.col("list_date") <= start)
            & pl.col("delist_date").is_null()
        )
        .select("symbol")
        .sort("symbol")
        .collect()
    )
    symbols = frame["symbol"].to_list()
    if len(symbols) <= DAILY_SYMBOLS:
        return symbols
    picks = np.linspace(0, len(symbols) - 1, DAILY_SYMBOLS).round().astype(int)
    return [symbols[i] for i in sorted(set(picks.tolist()))]


def _run_demo(rt: Runtime, console: Console) -> dict[str, Any]:
    end = _last_session(rt.clock)
    start = end - dt.timedelta(days=730)
    console.print(f"[bold]etl demo[/]: vendor sim, data root {rt.root}")
    console.print(f"  1d range {start} .. {end}")
    records: list[TaskRecord] = []
    records.append(
        _step(
            console,
            "instruments sync (all markets)",
            lambda: run_async(sync_instruments(rt, VENDOR, None)),
        )
    )
    for market in CALENDAR_MARKETS:
        records.append(
            _step(
                console,
                f"calendar sync {market}",
                partial(_sync_calendar, rt, market, start, end),
            )
        )
    symbols = _pick_symbols(rt, start)
    minute_days = [d.astype(dt.date) for d in trading_days("SH", end - dt.timedelta(days=14), end)]
    m_start = minute_days[-MINUTE_SESSIONS]
    jobs = [
        (
            f"klines 1d, {len(symbols)} symbols, 2 years",
            BackfillRequest(VENDOR, "klines", tuple(symbols), "1d", start, end),
        ),
        (
            f"klines 1m, {MINUTE_SYMBOLS} symbols, {MINUTE_SESSIONS} sessions",
            BackfillRequest(VENDOR, "klines", tuple(symbols[:MINUTE_SYMBOLS]), "1m", m_start, end),
        ),
    ]
    stmt_start = dt.date(end.year - 3, 1, 1)
    for ds in ("balance_sheet", "income", "cash_flow"):
        jobs.append(
            (
                f"{ds}, {len(symbols)} symbols, since {stmt_start.year}",
                BackfillRequest(VENDOR, ds, tuple(symbols), None, stmt_start, end),
            )
        )
    jobs += [
        (
            f"adj_factors, {len(symbols)} symbols",
            BackfillRequest(VENDOR, "adj_factors", tuple(symbols), None, start, end),
        ),
        ("future_varieties", BackfillRequest(VENDOR, "future_varieties")),
        ("main_contracts (today)", BackfillRequest(VENDOR, "main_contracts")),
    ]
    for label, req in jobs:
        records.append(_step(console, label, partial(_backfill, rt, req)))
    ensure_catalog(rt.root, now=rt.clock())
    return {"start": start, "end": end, "symbols": symbols, "records": records}


def _show_results(rt: Runtime, console: Console, info: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    with ReadOnlySession(rt.root) as session:
        stored = session.query(
            'SELECT dataset, sum("rows")::BIGINT AS rows, sum(files)::BIGINT AS files, '
            "count(*) AS partitions, round(sum(bytes) / 1048576, 2) AS mib "
            "FROM lake_partitions GROUP BY dataset ORDER BY dataset"
        )
        console.print("\n[bold]Stored[/] (SELECT ... FROM lake_partitions)")
        render_table(stored, console)
        doc["stored"] = rows_as_dicts(stored)

        console.print('\n[bold]1. DuckDB SQL[/]  etl sql "..."  (or the DuckDB shell: etl duckdb)')
        console.print(SQL_EXAMPLE, style="cyan", markup=False, highlight=False)
        top = session.query(SQL_EXAMPLE)
        render_table(top, console)
        doc["sql"] = rows_as_dicts(top)

    symbol = info["symbols"][0]
    lake = DataRoot(rt.root).lake
    console.print("\n[bold]2. polars[/], straight from the Parquet lake")
    polars_code = (
        f'pl.scan_parquet("{lake}/klines/**/*.parquet", hive_partitioning=True)\n'
        f'  .filter((pl.col("freq") == "1m") & (pl.col("symbol") == "{symbol}"))\n'
        f'  .group_by(pl.col("trade_date")).agg(pl.col("volume").sum(), pl.len().alias("bars"))'
        f'.sort("trade_date")'
    )
    console.print(polars_code, style="cyan", markup=False, highlight=False)
    minute = (
        pl.scan_parquet(f"{lake}/klines/**/*.parquet", hive_partitioning=True)
        .filter((pl.col("freq") == "1m") & (pl.col("symbol") == symbol))
        .group_by(pl.col("trade_date"))
        .agg(pl.col("volume").sum(), pl.len().alias("bars"))
        .sort("trade_date")
        .collect()
    )
    console.print(minute)
    doc["polars"] = minute.to_dicts()

    console.print("\n[bold]3. pandas[/], one day's cross-section")
    day = info["end"]
    pandas_code = (
        f'df = pd.read_parquet("{lake}/klines", filters=[("freq", "==", "1d"), '
        f'("year", "==", {day.year})])\n'
        f'df[df.trade_date == pd.Timestamp("{day}").date()].nlargest(5, "amount")'
        f'[["symbol", "close", "volume", "amount"]]'
    )
    console.print(pandas_code, style="cyan", markup=False, highlight=False)
    import pandas as pd

    frame = pd.read_parquet(
        lake / "klines", filters=[("freq", "==", "1d"), ("year", "==", day.year)]
    )
    top_day = frame[frame.trade_date == day].nlargest(5, "amount")[
        ["symbol", "close", "volume", "amount"]
    ]
    console.print(top_day.to_string(index=False))
    doc["pandas"] = top_day.astype({"symbol": str}).to_dict(orient="records")
    return doc


def run(rt: Runtime, out: Output, json_out: bool) -> None:
    """The demo's steps, then its queries; ``etl demo`` calls this inside its runtime."""
    console = Console(stderr=json_out)
    started = time.monotonic()
    info = _run_demo(rt, console)
    doc = _show_results(rt, console, info)
    took = time.monotonic() - started
    console.print(f'\ndone in {took:.1f} s. Try: etl sql "SELECT * FROM coverage LIMIT 5"')
    records: list[TaskRecord] = info["records"]
    doc.update(
        {
            "seconds": round(took, 1),
            "tasks": [
                {
                    "id": r.id,
                    "kind": r.kind,
                    "status": r.status,
                    "rows_written": r.rows_written,
                    "error_count": r.error_count,
                }
                for r in records
            ],
        }
    )
    if json_out:
        out.document(doc)
    failed = [r for r in records if r.status != "completed" or r.error_count]
    if failed:
        raise PartialFailure(
            f"{len(failed)} demo step(s) had errors", tasks=",".join(str(r.id) for r in failed)
        )
