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
from etl.tasks.expected import STATEMENT_DATASETS, Expectation, Selection, build_expectation

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
        """The JSON of CONTRACT.md ("detect-missing --json"), plus states and unjudged."""
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
            {"symbol": g["symbol"], "start": _z(g["start"]), "end": _z(g["end"]),
             "bars": g["bars"], "state": g["state"]}
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


def _z(value: dt.datetime | dt.date) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def _files(root: Path, sel: Selection) -> list[Path]:
    if sel.dataset == "klines":
        base = root / "lake" / "klines" / f"freq={sel.freq}"
    else:
        base = root / "lake" / sel.dataset
    files: list[Path] = []
    for year in range(sel.start.year, sel.end.year + 1):
        files += sorted((base / f"year={year}").glob("*.parquet"))
    return files


def _present_sql(root: Path, sel: Selection) -> str:
    files = _files(root, sel)
    if not files:
        return "SELECT NULL::VARCHAR AS symbol, NULL::TIMESTAMPTZ AS ts WHERE false"
    listing = "[" + ", ".join(quote_path(f) for f in files) + "]"
    if sel.dataset in STATEMENT_DATASETS:
        return (
            f"SELECT DISTINCT symbol, reporting_period::TIMESTAMPTZ AS ts FROM read_parquet("
            f"{listing}, union_by_name = true) WHERE reporting_period BETWEEN $start AND $end "
            "AND symbol IN (SELECT symbol FROM judged)"
        )
    return (
        f"SELECT symbol, ts FROM read_parquet({listing}, union_by_name = true) "
        "WHERE trade_date BETWEEN $start AND $end AND symbol IN (SELECT symbol FROM judged)"
    )


def _ledger_sql(root: Path, sel: Selection) -> str:
    folder = root / "state" / "gap_ledger" / f"dataset={sel.dataset}" / f"freq={sel.slot_freq}"
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
    """Create the temp tables ``expected``, ``present`` and ``slots`` in ``con``."""
    con.execute("SET TimeZone = 'UTC'")
    con.register("judged", exp.judged.to_arrow())
    con.register("grids", exp.grids.to_arrow())
    params = {"start": sel.start, "end": sel.end}
    con.execute(
        "CREATE OR REPLACE TEMP TABLE expected AS "
        "SELECT j.symbol, j.market, g.ts, g.trade_date FROM judged j JOIN grids g "
        "ON g.profile = j.profile AND g.trade_date BETWEEN j.first_day AND j.last_day"
    )
    present = _present_sql(root, sel)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE present AS {present}",
        params if "$start" in present else None,
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE absent AS "
        "SELECT e.* FROM expected e ANTI JOIN present p ON p.symbol = e.symbol AND p.ts = e.ts"
    )
    ledger = _ledger_sql(root, sel)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE slots AS "
        "SELECT a.symbol, a.market, a.ts, a.trade_date, coalesce(l.state, 'missing') AS state, "
        f"l.reason FROM absent a LEFT JOIN ({ledger}) l ON l.symbol = a.symbol AND l.ts = a.ts",
        params if "$start" in ledger else None,
    )


def detect(root: Path, sel: Selection, now: dt.datetime) -> DetectReport:
    exp = build_expectation(root, sel, now)
    con = duckdb.connect()
    try:
        find_slots(root, sel, exp, con)
        return _report(con, sel, exp)
    finally:
        con.close()


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    rows = con.execute(sql).fetchall()  # fetch to the end: DuckDB 2 blocks on open results
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    frame = pl.from_arrow(con.sql(sql).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def _report(con: duckdb.DuckDBPyConnection, sel: Selection, exp: Expectation) -> DetectReport:
    expected_rows = _scalar(con, "SELECT count(*) FROM expected")
    absent_rows = _scalar(con, "SELECT count(*) FROM slots")
    unexpected = _scalar(
        con, "SELECT count(*) FROM present p ANTI JOIN expected e "
        "ON p.symbol = e.symbol AND p.ts = e.ts"
    )  # fmt: skip
    counts = ", ".join(f"count_if(state = '{s}')::BIGINT AS {s}" for s in STATES)
    per_symbol = _frame(con, f"SELECT symbol, {counts} FROM slots GROUP BY symbol ORDER BY symbol")
    daily = _frame(
        con,
        "WITH e AS (SELECT market, trade_date, count(*) AS expected, "
        "count(DISTINCT symbol) AS symbols FROM expected GROUP BY ALL), "
        f"s AS (SELECT market, trade_date, count(*) AS absent, {counts} FROM slots GROUP BY ALL) "
        "SELECT e.market, e.trade_date, e.symbols, e.expected, "
        "e.expected - coalesce(s.absent, 0) AS present, "
        + ", ".join(f"coalesce(s.{st}, 0)::BIGINT AS {st}" for st in STATES)
        + " FROM e LEFT JOIN s USING (market, trade_date) ORDER BY e.market, e.trade_date",
    )
    gaps = _frame(
        con,
        "WITH touched AS (SELECT DISTINCT symbol FROM slots WHERE state <> 'confirmed_empty'), "
        "seq AS (SELECT e.symbol, e.ts, row_number() OVER (PARTITION BY e.symbol ORDER BY e.ts) "
        "AS i FROM expected e SEMI JOIN touched t ON t.symbol = e.symbol), "
        "runs AS (SELECT s.symbol, s.state, s.ts, seq.i - row_number() OVER ("
        "PARTITION BY s.symbol, s.state ORDER BY s.ts) AS grp FROM slots s "
        "JOIN seq ON seq.symbol = s.symbol AND seq.ts = s.ts WHERE s.state <> 'confirmed_empty') "
        'SELECT symbol, state, min(ts) AS start, max(ts) AS "end", count(*)::BIGINT AS bars '
        "FROM runs GROUP BY symbol, state, grp ORDER BY symbol, start",
    )
    slots = _frame(con, "SELECT * FROM slots ORDER BY symbol, ts")
    judged = exp.judged["symbol"].to_list() if exp.judged.height else []
    return DetectReport(
        selection=sel,
        expected_rows=expected_rows,
        present_rows=expected_rows - absent_rows,
        unexpected_rows=unexpected,
        judged=judged,
        per_symbol=per_symbol,
        daily=daily,
        gaps=gaps,
        slots=slots,
        unjudged=exp.unjudged,
        calendar_sources=exp.calendar_sources,
    )
