"""detect-missing: expected slots minus stored ones, as set operations in DuckDB.

No Python loop over symbols: the expectation (a bar grid per session profile, the judged
symbols with their listed life) and the gap ledger are joined against the stored keys in one
in-memory DuckDB. Each slot that is expected and absent gets its state from the ledger
(``missing`` when the ledger knows nothing). Gaps are maximal runs of one state per symbol,
found with the row-number difference trick over the expected sequence.

Memory is bounded whatever the range: judged symbols are taken in chunks of at most
:data:`SLOT_BUDGET` expected slots (a year of 1m bars is ~58k slots per symbol), each chunk's
absent slots are folded into small aggregates (per symbol, per day, gap runs, reasons) and let
go, and the stored keys are read for the chunk's symbol range only (row groups of sorted files
outside it are skipped). Only callers that need every absent slot (fill plans, backfill's
skip test, the coverage page) ask for them with ``keep_slots``.

When no stored file and no gap-ledger file can hold a row of the judged symbols (their
footers' statistics leave them all out: a new symbol, a fresh data root), every expected slot
is absent and ``missing``; the report is then built from the expectation alone, without
DuckDB (0.1 s to import). fill-missing checks the same condition first
(:func:`~etl.tasks.expected.nothing_stored`) and then plans without detect at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from etl.tasks.expected import (
    SLOT_BUDGET,
    STATEMENT_DATASETS,
    Expectation,
    Selection,
    build_expectation,
    expected_per_day,
    ledger_files,
    nothing_stored,
    stored_files,
)
from etl.timefmt import iso_utc

if TYPE_CHECKING:
    import duckdb

__all__ = ["DetectReport", "all_absent", "detect", "find_slots"]

STATES = ("missing", "confirmed_empty", "failed", "unfillable")
TO_FETCH = ("missing", "failed", "unfillable")  # states that keep a symbol incomplete
MAX_GAPS_IN_DOCUMENT = 100_000
SLOT_COLUMNS = "symbol, market, ts, trade_date, state, reason"
GAP_SCHEMA = pl.Schema({"symbol": pl.String(), "state": pl.String(),
                        "start": pl.Datetime("us", "UTC"), "end": pl.Datetime("us", "UTC"),
                        "bars": pl.Int64()})  # fmt: skip
# Maximal runs of one state per symbol: a symbol's expected slots are its profile's grid
# clipped to its listed life, so two absent slots are consecutive exactly when their grid
# positions are; position minus rank within (symbol, state) is constant along a run.
GAP_RUNS = (
    'SELECT symbol, state, min(ts) AS start, max(ts) AS "end", count(*)::BIGINT AS bars '
    "FROM (SELECT symbol, state, ts, pos - row_number() OVER (PARTITION BY symbol, state "
    "ORDER BY pos) AS grp FROM slots WHERE state <> 'confirmed_empty') "
    "GROUP BY symbol, state, grp"
)


@dataclass
class DetectReport:
    selection: Selection
    expected_rows: int
    present_rows: int
    unexpected_rows: int
    judged: list[str]
    per_symbol: pl.DataFrame  # symbol + one count column per state
    daily: pl.DataFrame  # market, trade_date, symbols, expected, present, per-state counts
    gaps: pl.DataFrame  # symbol, state, start, end, bars: the first MAX_GAPS_IN_DOCUMENT runs
    slots: pl.DataFrame  # every absent slot (symbol, market, ts, trade_date, state, reason),
    # only when detect() was asked to keep them; else empty
    reasons: pl.DataFrame  # state, reason, slots, symbols: open slots by why they are open
    gaps_total: int = 0  # every gap run, also those beyond ``gaps``
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
            "gaps_truncated": self.gaps_total > len(gaps),
            "states": self.state_counts(),
            "unexpected_rows": self.unexpected_rows,
            "unjudged": self.unjudged,
            "calendars": self.calendar_sources,
        }


def _files(root: Path, sel: Selection) -> list[Path]:
    return stored_files(root, sel)


def _ledger_files(root: Path, sel: Selection) -> list[Path]:
    return ledger_files(root, sel)


def _listing(files: list[Path]) -> str:
    from etl.catalog.ddl import quote_path

    return "[" + ", ".join(quote_path(f) for f in files) + "]"


def _present_sql(root: Path, sel: Selection, *, only_judged: bool) -> str:
    """Stored keys of the selection's range, within the judged symbols' range ($lo..$hi: a
    filter Parquet statistics answer per row group). Without ``only_judged`` other symbols'
    rows inside that range are left in: they cannot match an expected slot, and filtering
    them costs more than it saves."""
    files = _files(root, sel)
    if not files:
        return "SELECT NULL::VARCHAR AS symbol, NULL::TIMESTAMPTZ AS ts WHERE false"
    listing = _listing(files)
    judged = " AND symbol BETWEEN $lo AND $hi"
    judged += " AND symbol IN (SELECT symbol FROM judged)" if only_judged else ""
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
    files = _ledger_files(root, sel)
    if not files:
        return (
            "SELECT NULL::VARCHAR AS symbol, NULL::TIMESTAMPTZ AS ts, NULL::VARCHAR AS state, "
            "NULL::VARCHAR AS reason WHERE false"
        )
    listing = _listing(files)
    return (
        f"SELECT symbol, ts, state, reason FROM read_parquet({listing}, union_by_name = true) "
        "WHERE trade_date BETWEEN $start AND $end AND symbol IN (SELECT symbol FROM judged)"
    )


def find_slots(
    root: Path, sel: Selection, exp: Expectation, con: duckdb.DuckDBPyConnection
) -> None:
    """Create the temp table ``slots`` (every expected, absent slot with its state, and its
    position ``pos`` in its profile's grid) in ``con``.

    The expected slots are streamed through the anti-join, never materialised: the join of
    judged symbols and grids is the same amount of work as a hand-written anti-join. Each
    intermediate table is dropped as soon as the next is made (peak memory: two of them).
    """
    con.execute("SET TimeZone = 'UTC'")
    con.register("judged", exp.judged.to_arrow())
    con.register("grid_frame", exp.grids.to_arrow())
    con.execute(
        "CREATE OR REPLACE TEMP TABLE grids AS SELECT *, "
        "row_number() OVER (PARTITION BY profile ORDER BY ts) AS pos FROM grid_frame"
    )
    params = _params(sel, exp)
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
    _execute(con, sql, params)
    # Only the (usually few) absent slots get their market, trade date and ledger state, one
    # join at a time: left to itself the optimiser may join judged x grids (every slot) first.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE absent_of AS SELECT a.symbol, j.market, j.profile, a.ts "
        "FROM absent a JOIN judged j ON j.symbol = a.symbol"
    )
    con.execute("DROP TABLE absent")
    sql = (
        "CREATE OR REPLACE TEMP TABLE slots AS "
        "WITH b AS (SELECT a.symbol, a.market, a.ts, g.trade_date, g.pos FROM absent_of a "
        "JOIN grids g ON g.profile = a.profile AND g.ts = a.ts) "
        "SELECT b.symbol, b.market, b.ts, b.trade_date, coalesce(l.state, 'missing') AS state, "
        f"l.reason, b.pos FROM b LEFT JOIN ({ledger}) l ON l.symbol = b.symbol AND l.ts = b.ts"
    )
    _execute(con, sql, params)
    con.execute("DROP TABLE absent_of")


def _params(sel: Selection, exp: Expectation) -> dict[str, object]:
    symbols = exp.judged["symbol"]
    lo, hi = (symbols.min(), symbols.max()) if symbols.len() else ("", "")
    return {"start": sel.start, "end": sel.end, "lo": lo, "hi": hi}


def _execute(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]) -> None:
    """Run ``sql`` with the parameters it names (DuckDB refuses unused ones)."""
    used = {k: v for k, v in params.items() if f"${k}" in sql}
    con.execute(sql, used or None)


def _chunks(exp: Expectation) -> Iterator[Expectation]:
    """``exp`` cut into runs of judged symbols (in symbol order) that each expect at most
    about :data:`SLOT_BUDGET` slots (a symbol's grid length bounds its slots)."""
    if exp.judged.height == 0:
        return
    per_profile = dict(exp.grids.group_by("profile").len().iter_rows())
    judged = exp.judged.sort("symbol")
    sizes = np.array([per_profile.get(p, 0) for p in judged["profile"].to_list()], np.int64)
    chunk_of = (np.cumsum(sizes) - sizes) // SLOT_BUDGET  # where each symbol's slots start
    bounds = np.flatnonzero(np.diff(chunk_of)) + 1
    for lo, hi in zip([0, *bounds.tolist()], [*bounds.tolist(), judged.height], strict=True):
        yield replace(exp, judged=judged.slice(lo, hi - lo))


@dataclass
class _Folded:
    """What detect keeps of each chunk's absent slots: small aggregates, never the slots
    themselves unless asked."""

    keep_slots: bool
    absent: int = 0
    per_symbol: list[pl.DataFrame] = field(default_factory=list)
    daily: list[pl.DataFrame] = field(default_factory=list)
    reasons: list[pl.DataFrame] = field(default_factory=list)
    gaps: list[pl.DataFrame] = field(default_factory=list)
    gaps_kept: int = 0
    gaps_total: int = 0
    slots: list[pl.DataFrame] = field(default_factory=list)

    def add(self, con: duckdb.DuckDBPyConnection) -> None:
        """Fold the temp table ``slots`` of ``con`` (one chunk's absent slots)."""
        counts = ", ".join(f"count_if(state = '{s}')::BIGINT AS {s}" for s in STATES)
        room = MAX_GAPS_IN_DOCUMENT - self.gaps_kept
        self.take(
            per_symbol=_frame(con, f"SELECT symbol, {counts} FROM slots GROUP BY symbol"),
            daily=_frame(
                con,
                f"SELECT market, trade_date, count(*)::BIGINT AS absent, {counts} FROM slots "
                "GROUP BY ALL",
            ),
            # symbols are distinct across chunks, so per-chunk distinct counts add up
            reasons=_frame(
                con,
                "SELECT state, reason, count(*)::BIGINT AS slots, "
                "count(DISTINCT symbol)::BIGINT AS symbols FROM slots "
                "WHERE state IN ('missing', 'failed', 'unfillable') GROUP BY ALL",
            ),
            gaps_total=_scalar(con, f"SELECT count(*) FROM ({GAP_RUNS})"),
            gaps=_frame(con, f"{GAP_RUNS} ORDER BY symbol, start LIMIT {room}") if room else None,
            slots=(
                _frame(con, f"SELECT {SLOT_COLUMNS} FROM slots ORDER BY symbol, ts")
                if self.keep_slots
                else None
            ),
        )

    def take(
        self,
        *,
        per_symbol: pl.DataFrame,
        daily: pl.DataFrame,
        reasons: pl.DataFrame,
        gaps_total: int,
        gaps: pl.DataFrame | None,
        slots: pl.DataFrame | None,
    ) -> None:
        self.per_symbol.append(per_symbol)
        self.absent += int(daily["absent"].sum()) if daily.height else 0
        self.daily.append(daily)
        self.reasons.append(reasons)
        self.gaps_total += gaps_total
        if gaps is not None:
            self.gaps.append(gaps.head(MAX_GAPS_IN_DOCUMENT - self.gaps_kept).cast(GAP_SCHEMA))
            self.gaps_kept += self.gaps[-1].height
        if self.keep_slots and slots is not None:
            self.slots.append(slots)


def detect(
    root: Path, sel: Selection, now: dt.datetime, *, keep_slots: bool = False
) -> DetectReport:
    """What the lake lacks of ``sel``. ``keep_slots`` keeps every absent slot in the report
    (memory grows with them); without it only aggregates and the first gap runs are kept."""
    exp = build_expectation(root, sel, now)
    folded = _Folded(keep_slots)
    if _nothing_stored(root, sel, exp):
        _fold_all_absent(exp, folded)
        return _report(sel, exp, folded, stored=0)
    import duckdb

    con = duckdb.connect()
    try:
        for part in _chunks(exp):
            find_slots(root, sel, part, con)
            folded.add(con)
            con.execute("DROP TABLE slots")
        return _report(sel, exp, folded, stored=_stored(root, con, sel, exp))
    except RuntimeError as exc:
        # A Ctrl-C or SIGTERM handler that raises KeyboardInterrupt while DuckDB runs a query
        # comes back as DuckDB's own "Query interrupted": give the caller the interrupt, so
        # the task ends interrupted (exit 130), not as a bug.
        if str(exc).startswith("Query interrupted"):
            raise KeyboardInterrupt from exc
        raise
    finally:
        con.close()


def all_absent(root: Path, sel: Selection, now: dt.datetime) -> DetectReport:
    """The report :func:`detect` (with ``keep_slots``) gives when nothing is stored for the
    selection's judged symbols and the ledger knows nothing of them (every expected slot
    absent and ``missing``), built from the expectation alone: a fill that planned on that
    condition reports its ``before`` with it after its run, when the lake holds what the run
    wrote."""
    exp = build_expectation(root, sel, now)
    folded = _Folded(keep_slots=True)
    if exp.judged.height:
        _fold_all_absent(exp, folded)
    return _report(sel, exp, folded, stored=0)


def _nothing_stored(root: Path, sel: Selection, exp: Expectation) -> bool:
    """:func:`~etl.tasks.expected.nothing_stored` for the judged symbols, for an expectation
    small enough (one chunk) to be built as rows."""
    if exp.judged.height == 0 or _expected_slots(exp) > SLOT_BUDGET:
        return False
    return nothing_stored(root, sel, exp.judged["symbol"].to_list())


def _expected_slots(exp: Expectation) -> int:
    """An upper bound of the expected slots: each judged symbol's whole grid."""
    per_profile = dict(exp.grids.group_by("profile").len().iter_rows())
    return sum(per_profile.get(p, 0) for p in exp.judged["profile"].to_list())


def _fold_all_absent(exp: Expectation, folded: _Folded) -> None:
    """Fold every expected slot of ``exp`` as absent and ``missing``: what :func:`find_slots`
    and :meth:`_Folded.add` give when nothing is stored and the ledger knows nothing. A
    symbol's slots are its grid clipped to its listed life, so they form one gap run."""
    slots = (
        exp.judged.join(exp.grids, on="profile")
        .filter(pl.col("trade_date").is_between(pl.col("first_day"), pl.col("last_day")))
        .select(
            "symbol", "market", pl.col("ts").cast(pl.Datetime("us", "UTC")), "trade_date",
            pl.lit("missing").alias("state"), pl.lit(None, pl.String).alias("reason"),
        )
        .sort("symbol", "ts")
    )  # fmt: skip
    zero = [pl.lit(0, pl.Int64).alias(s) for s in STATES if s != "missing"]
    gaps = slots.group_by("symbol", maintain_order=True).agg(
        pl.lit("missing").alias("state"), pl.col("ts").min().alias("start"),
        pl.col("ts").max().alias("end"), pl.len().cast(pl.Int64).alias("bars"),
    )  # fmt: skip
    reasons = slots.group_by("state", "reason").agg(
        pl.len().cast(pl.Int64).alias("slots"),
        pl.col("symbol").n_unique().cast(pl.Int64).alias("symbols"),
    )
    folded.take(
        per_symbol=gaps.select("symbol", pl.col("bars").alias("missing"), *zero),
        daily=slots.group_by("market", "trade_date").agg(
            pl.len().cast(pl.Int64).alias("absent"), pl.len().cast(pl.Int64).alias("missing"), *zero
        ),
        reasons=reasons,
        gaps_total=gaps.height,
        gaps=gaps,
        slots=slots,
    )


def _stored(root: Path, con: duckdb.DuckDBPyConnection, sel: Selection, exp: Expectation) -> int:
    """Rows stored for the judged symbols over the range (expected or not)."""
    if not exp.judged.height:
        return 0
    con.register("judged", exp.judged.to_arrow())
    present_sql = _present_sql(root, sel, only_judged=True)
    used = {k: v for k, v in _params(sel, exp).items() if f"${k}" in present_sql}
    return int(con.execute(f"SELECT count(*) FROM ({present_sql})", used or None).fetchall()[0][0])


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    rows = con.execute(sql).fetchall()  # fetch to the end: DuckDB 2 blocks on open results
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    frame = pl.from_arrow(con.sql(sql).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def _concat(frames: list[pl.DataFrame], empty: pl.DataFrame) -> pl.DataFrame:
    frames = [f for f in frames if f.height]
    return pl.concat(frames) if frames else empty


def _report(sel: Selection, exp: Expectation, folded: _Folded, *, stored: int) -> DetectReport:
    per_day = expected_per_day(exp)
    expected_rows = int(per_day["expected"].sum()) if per_day.height else 0
    present_rows = expected_rows - folded.absent
    state_cols = {s: pl.Int64() for s in STATES}
    per_symbol = _concat(
        folded.per_symbol, pl.DataFrame(schema={"symbol": pl.String(), **state_cols})
    ).sort("symbol")
    absent_daily = _concat(
        folded.daily,
        pl.DataFrame(schema={"market": pl.String(), "trade_date": pl.Date(),
                             "absent": pl.Int64(), **state_cols}),
    )  # fmt: skip
    absent_daily = absent_daily.group_by("market", "trade_date").agg(
        pl.col(c).sum() for c in ("absent", *STATES)
    )
    daily = (
        per_day.join(absent_daily, on=["market", "trade_date"], how="left")
        .with_columns(pl.col(c).fill_null(0) for c in ("absent", *STATES))
        .with_columns((pl.col("expected") - pl.col("absent")).alias("present"))
        .select("market", "trade_date", "symbols", "expected", "present", *STATES)
        .sort("market", "trade_date")
    )
    reasons = _concat(
        folded.reasons,
        pl.DataFrame(schema={"state": pl.String(), "reason": pl.String(), "slots": pl.Int64(),
                             "symbols": pl.Int64()}),
    ).group_by("state", "reason").agg(pl.col("slots").sum(), pl.col("symbols").sum())  # fmt: skip
    slots = _concat(
        folded.slots,
        pl.DataFrame(schema={"symbol": pl.String(), "market": pl.String(),
                             "ts": pl.Datetime("us", "UTC"), "trade_date": pl.Date(),
                             "state": pl.String(), "reason": pl.String()}),
    )  # fmt: skip
    gaps = _concat(folded.gaps, pl.DataFrame(schema=GAP_SCHEMA))
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
        reasons=reasons,
        gaps_total=folded.gaps_total,
        unjudged=exp.unjudged,
        calendar_sources=exp.calendar_sources,
    )
