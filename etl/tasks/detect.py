"""detect-missing: expected slots minus stored ones, as set operations in DuckDB.

No Python loop over symbols: the expectation (a bar grid per session profile, the judged
symbols with their listed life) and the gap ledger are joined against the stored keys in one
in-memory DuckDB. Each slot that is expected and absent gets its state from the ledger
(``missing`` when the ledger knows nothing). Gaps are maximal runs of one state per symbol,
found with the row-number difference trick over the expected sequence.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from etl.catalog.ddl import quote_path
from etl.dataroot import DataRoot
from etl.tasks.expected import (
    STATEMENT_DATASETS,
    Expectation,
    Selection,
    build_expectation,
    expected_per_day,
)
from etl.timefmt import iso_utc

__all__ = ["DetectReport", "detect", "find_slots"]

STATES = ("missing", "confirmed_empty", "failed", "unfillable")
TO_FETCH = ("missing", "failed", "unfillable")  # states that keep a symbol incomplete
MAX_GAPS_IN_DOCUMENT = 100_000


@dataclass
class DetectReport:
    selection: Selection
    expected_rows: int
    present_rows: int
    unexpected_rows: int
    judged: list[str]
    per_symbol: pl.DataFrame  # symbol + one count column per state
    daily: pl.DataFrame  # market, trade_date, symbols, expected, present, per-state counts
    gaps: pl.DataFrame  # symbol, state, start, end, bars
    slots: pl.DataFrame  # every absent slot: symbol, market, ts, trade_date, state, reason
    unjudged: list[dict[str, str]] = field(default_factory=list)
    calendar_sources: dict[str, str] = field(default_factory=dict)

    def symbols_in(self, states: tuple[str, ...]) -> list[str]:
        if self.per_symbol.height == 0:
            return []
        cond = pl.sum_horizontal([pl.col(s) for s in states]) > 0
        return sorted(self.per_symbol.filter(cond)["symbol"].to_list())

    def state_counts(self) -> dict[str, int]:
        return {s: int(self.per_symbol[s].sum()) if self.per_symbol.height else 0 for s in STATES}

    def document(self, task_id: int | None, status: str) -> dict[str, Any]:
        """The document of docs/contract.md "JSON documents" (``detect-missing --json``), plus
        states and unjudged."""
        incomplete = self.symbols_in(TO_FETCH)
        daily: dict[str, dict[str, int]] = {}
        if self.daily.height:
            by_day = (
                self.daily.group_by("trade_date")
                .agg(pl.col(c).sum() for c in ("expected", "present", *STATES))
                .sort("trade_date")
            )
            for row in by_day.iter_rows(named=True):
                entry = {
                    "expected": row["expected"],
                    "present": row["present"],
                    "missing": row["expected"] - row["present"] - row["confirmed_empty"],
                }
                for state in ("confirmed_empty", "failed", "unfillable"):
                    if row[state]:
                        entry[state] = row[state]
                daily[row["trade_date"].isoformat()] = entry
        gaps = [
            {"symbol": g["symbol"], "start": iso_utc(g["start"], "seconds"),
             "end": iso_utc(g["end"], "seconds"), "bars": g["bars"], "state": g["state"]}
            for g in self.gaps.head(MAX_GAPS_IN_DOCUMENT).iter_rows(named=True)
        ]  # fmt: skip
        sel = self.selection
        return {
            "task_id": task_id,
            "status": status,
            "dataset": sel.dataset,
            "freq": sel.freq,
            "start": sel.start.isoformat(),
            "end": sel.end.isoformat(),
            "total_count": len(self.judged),
            "complete_count": len(self.judged) - len(incomplete),
            "missing_count": len(incomplete),
            "error_count": len(self.symbols_in(("failed",))),
            "expected_rows": self.expected_rows,
            "present_rows": self.present_rows,
            "daily_stats": daily,
            "missing_codes": incomplete,
            "gaps": gaps,
            "gaps_truncated": self.gaps.height > MAX_GAPS_IN_DOCUMENT,
            "states": self.state_counts(),
            "unexpected_rows": self.unexpected_rows,
            "unjudged": self.unjudged,
            "calendars": self.calendar_sources,
        }


def _files(root: Path, sel: Selection) -> list[Path]:
    layout = DataRoot(root)
    files: list[Path] = []
    for year in range(sel.start.year, sel.end.year + 1):
        if sel.dataset == "klines":
            folder = layout.partition_of("klines", freq=sel.freq, year=year)
        else:
            folder = layout.partition_of(sel.dataset, year=year)
        files += sorted(folder.glob("*.parquet"))
    return files


def _present_sql(root: Path, sel: Selection, *, only_judged: bool) -> str:
    """Stored keys of the selection's range. Without ``only_judged`` other symbols' rows are
    left in: they cannot match an expected slot, and filtering them costs more than it saves."""
    files = _files(root, sel)
    if not files:
        return "SELECT NULL::VARCHAR AS symbol, NULL::TIMESTAMPTZ AS ts WHERE false"
    listing = "[" + ", ".join(quote_path(f) for f in files) + "]"
    judged = " AND symbol IN (SELECT symbol FROM judged)" if only_judged else ""
    if sel.dataset in STATEMENT_DATASETS:
        return (
            f"SELECT DISTINCT symbol, reporting_period::TIMESTAMPTZ AS ts FROM read_parquet("
            f"{listing}, union_by_name = true) WHERE reporting_period BETWEEN $start AND $end"
            + judged
        )
    return (
        f"SELECT symbol, ts FROM read_parquet({listing}, union_by_name = true) "
        "WHERE trade_date BETWEEN $start AND $end" + judged
    )


def _ledger_sql(root: Path, sel: Selection) -> str:
    folder = DataRoot(root).partition_of("gap_ledger", dataset=sel.dataset, freq=sel.slot_freq)
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return (
            "SELECT NULL::VARCHAR AS symbol, NULL::TIMESTAMPTZ AS ts, NULL::VARCHAR AS state, "
            "NULL::VARCHAR AS reason WHERE false"
        )
    listing = "[" + ", ".join(quote_path(f) for f in files) + "]"
    return (
        f"SELECT symbol, ts, state, reason FROM read_parquet({listing}, union_by_name = true) "
        "WHERE trade_date BETWEEN $start AND $end AND symbol IN (SELECT symbol FROM judged)"
    )


def find_slots(
    root: Path, sel: Selection, exp: Expectation, con: duckdb.DuckDBPyConnection
) -> None:
    """Create the temp table ``slots`` (every expected, absent slot with its state) in ``con``.

    The expected slots are streamed through the anti-join, never materialised: the join of
    judged symbols and grids is the same amount of work as a hand-written anti-join.
    """
    con.execute("SET TimeZone = 'UTC'")
    con.register("judged", exp.judged.to_arrow())
    con.register("grids", exp.grids.to_arrow())
    params = {"start": sel.start, "end": sel.end}
    present = _present_sql(root, sel, only_judged=False)
    ledger = _ledger_sql(root, sel)
    # Symbols listed over the whole range need no per-row date test (the usual case).
    clipped = exp.judged.filter(
        (pl.col("first_day") > sel.start) | (pl.col("last_day") < sel.end)
    ).height
    life = " WHERE g.trade_date BETWEEN j.first_day AND j.last_day" if clipped else ""
    sql = (
        "CREATE OR REPLACE TEMP TABLE absent AS "
        "WITH expected AS (SELECT j.symbol, g.ts FROM judged j "
        f"JOIN grids g ON g.profile = j.profile{life}), "
        f"present AS ({present}) "
        "SELECT e.symbol, e.ts FROM expected e ANTI JOIN present p "
        "ON p.symbol = e.symbol AND p.ts = e.ts"
    )
    con.execute(sql, params if "$start" in sql else None)
    # Only the (usually few) absent slots get their market, trade date and ledger state, one
    # join at a time: left to itself the optimiser may join judged x grids (every slot) first.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE absent_of AS SELECT a.symbol, j.market, j.profile, a.ts "
        "FROM absent a JOIN judged j ON j.symbol = a.symbol"
    )
    sql = (
        "CREATE OR REPLACE TEMP TABLE slots AS "
        "WITH b AS (SELECT a.symbol, a.market, a.ts, g.trade_date FROM absent_of a "
        "JOIN grids g ON g.profile = a.profile AND g.ts = a.ts) "
        "SELECT b.symbol, b.market, b.ts, b.trade_date, coalesce(l.state, 'missing') AS state, "
        f"l.reason FROM b LEFT JOIN ({ledger}) l ON l.symbol = b.symbol AND l.ts = b.ts"
    )
    con.execute(sql, params if "$start" in sql else None)


def detect(root: Path, sel: Selection, now: dt.datetime) -> DetectReport:
    exp = build_expectation(root, sel, now)
    con = duckdb.connect()
    try:
        find_slots(root, sel, exp, con)
        return _report(root, con, sel, exp)
    finally:
        con.close()


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    rows = con.execute(sql).fetchall()  # fetch to the end: DuckDB 2 blocks on open results
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    frame = pl.from_arrow(con.sql(sql).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def _gap_runs(slots: pl.DataFrame, exp: Expectation) -> pl.DataFrame:
    """Maximal runs of one state per symbol.

    A symbol's expected slots are its profile's grid clipped to its listed life, so two slots
    are consecutive exactly when their grid positions are; position minus rank within
    (symbol, state) is then constant along a run. Done in polars on the absent slots only.
    """
    schema = pl.Schema(
        {
            "symbol": pl.String(),
            "state": pl.String(),
            "start": pl.Datetime("us", "UTC"),
            "end": pl.Datetime("us", "UTC"),
            "bars": pl.Int64(),
        }
    )
    todo = slots.filter(pl.col("state") != "confirmed_empty")
    if todo.height == 0:
        return pl.DataFrame(schema=schema)
    index = exp.grids.with_row_index("i").select("profile", "ts", pl.col("i").cast(pl.Int64))
    runs = (
        todo.select("symbol", "state", "ts")
        .join(exp.judged.select("symbol", "profile"), on="symbol")
        .join(index, on=["profile", "ts"])
        .sort("symbol", "state", "ts")
        .with_columns((pl.col("i") - pl.int_range(pl.len()).over("symbol", "state")).alias("grp"))
        .group_by("symbol", "state", "grp")
        .agg(pl.col("ts").min().alias("start"), pl.col("ts").max().alias("end"),
             pl.len().cast(pl.Int64).alias("bars"))
        .select(list(schema))
        .sort("symbol", "start")
    )  # fmt: skip
    return runs.cast(schema)


def _report(
    root: Path, con: duckdb.DuckDBPyConnection, sel: Selection, exp: Expectation
) -> DetectReport:
    per_day = expected_per_day(exp)
    expected_rows = int(per_day["expected"].sum()) if per_day.height else 0
    absent_rows = _scalar(con, "SELECT count(*) FROM slots")
    present_sql = _present_sql(root, sel, only_judged=True)
    stored = con.execute(
        f"SELECT count(*) FROM ({present_sql})",
        {"start": sel.start, "end": sel.end} if "$start" in present_sql else None,
    ).fetchall()[0][0]
    present_rows = expected_rows - absent_rows
    counts = ", ".join(f"count_if(state = '{s}')::BIGINT AS {s}" for s in STATES)
    per_symbol = _frame(con, f"SELECT symbol, {counts} FROM slots GROUP BY symbol ORDER BY symbol")
    absent_daily = _frame(
        con,
        f"SELECT market, trade_date, count(*)::BIGINT AS absent, {counts} FROM slots GROUP BY ALL",
    )
    daily = (
        per_day.join(absent_daily, on=["market", "trade_date"], how="left")
        .with_columns(pl.col(c).fill_null(0) for c in ("absent", *STATES))
        .with_columns((pl.col("expected") - pl.col("absent")).alias("present"))
        .select("market", "trade_date", "symbols", "expected", "present", *STATES)
        .sort("market", "trade_date")
    )
    slots = _frame(con, "SELECT * FROM slots ORDER BY symbol, ts")
    gaps = _gap_runs(slots, exp)
    judged = exp.judged["symbol"].to_list() if exp.judged.height else []
    return DetectReport(
        selection=sel,
        expected_rows=expected_rows,
        present_rows=present_rows,
        unexpected_rows=max(int(stored) - present_rows, 0),
        judged=judged,
        per_symbol=per_symbol,
        daily=daily,
        gaps=gaps,
        slots=slots,
        unjudged=exp.unjudged,
        calendar_sources=exp.calendar_sources,
    )
