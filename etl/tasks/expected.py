"""What should exist: the expected slots of a selection, as small tables DuckDB can join.

A *slot* is one bar (klines) or one reporting period (statements) of one symbol. Rather than
one row per symbol and bar, the expectation is two compact tables: a bar grid per session
*profile* (a market, or CFFEX treasury futures with their 15:15 close) and the judged symbols
with their profile and listed life. Joining them in DuckDB gives the expected slots.

Trading days come from the lake's ``calendar`` dataset when it covers the range (a calendar
synced from a vendor), else from exchange_calendars. Products without a calendar (vendor-only
``.MDAPI`` / ``.INFOWAY`` codes) and intraday bars of markets whose sessions vary by product
are *not judged*: detect-missing says so instead of guessing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from etl.calendars.bars import bar_grid
from etl.calendars.markets import (
    CFE_TREASURY_SEGMENTS,
    CFE_TREASURY_VARIETIES,
    market_of_symbol,
    market_spec,
)
from etl.calendars.store import keep_sessions_in
from etl.dataroot import DataRoot
from etl.errors import BadInputError

__all__ = [
    "Expectation",
    "Selection",
    "build_expectation",
    "expected_days",
    "expected_per_day",
    "market_symbols",
    "statement_deadline",
    "stored_files",
]

STATEMENT_DATASETS = ("balance_sheet", "income", "cash_flow")


@dataclass(frozen=True)
class Selection:
    """What detect-missing / fill-missing look at. Dates are inclusive trade dates (for
    statements: reporting periods)."""

    dataset: str
    start: dt.date
    end: dt.date
    freq: str | None = None
    symbols: tuple[str, ...] = ()
    market: str | None = None

    @property
    def slot_freq(self) -> str:
        return self.freq or "period"

    def params(self) -> dict[str, object]:
        return {
            "dataset": self.dataset, "freq": self.freq, "market": self.market,
            "symbols": list(self.symbols), "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }  # fmt: skip


@dataclass
class Expectation:
    judged: pl.DataFrame  # symbol, market, profile, first_day, last_day
    grids: pl.DataFrame  # profile, ts, trade_date
    unjudged: list[dict[str, str]] = field(default_factory=list)  # symbol, reason
    calendar_sources: dict[str, str] = field(
        default_factory=dict
    )  # market -> lake|exchange_calendars


def expected_per_day(exp: Expectation) -> pl.DataFrame:
    """Expected slots per market and day, counted without building one row per slot.

    Per profile and day: bars in the grid that day x symbols whose listed life covers the day
    (two sorted arrays and a binary search, instead of a join of symbols x bars).
    """
    schema = pl.Schema(
        {
            "market": pl.String(),
            "trade_date": pl.Date(),
            "symbols": pl.Int64(),
            "expected": pl.Int64(),
        }
    )
    if exp.judged.height == 0 or exp.grids.height == 0:
        return pl.DataFrame(schema=schema)
    bars = exp.grids.group_by("profile", "trade_date").len().rename({"len": "bars"})
    parts = []
    for (profile,), members in exp.judged.group_by(["profile"]):
        days = bars.filter(pl.col("profile") == profile).sort("trade_date")
        day_num = days["trade_date"].cast(pl.Int32).to_numpy()
        firsts = np.sort(members["first_day"].cast(pl.Int32).to_numpy())
        lasts = np.sort(members["last_day"].cast(pl.Int32).to_numpy())
        active = np.searchsorted(firsts, day_num, side="right") - np.searchsorted(
            lasts, day_num, side="left"
        )
        market = str(profile).split("/", 1)[0]
        parts.append(days.select(
            pl.lit(market).alias("market"), "trade_date",
            pl.Series("symbols", active, dtype=pl.Int64),
            (pl.col("bars").cast(pl.Int64) * pl.Series(active, dtype=pl.Int64)).alias("expected"),
        ))  # fmt: skip
    out = (
        pl.concat(parts)
        .group_by("market", "trade_date")
        .agg(pl.col("symbols").sum(), pl.col("expected").sum())
    )
    return out.filter(pl.col("expected") > 0).sort("market", "trade_date").cast(schema)


def expected_days(exp: Expectation) -> dict[str, npt.NDArray[np.datetime64]]:
    """Each judged symbol's expected trade dates, sorted, each once: its profile's grid days
    within its listed life. Slices of one array per profile: nothing is built per slot."""
    by_profile: dict[str, npt.NDArray[np.datetime64]] = {}
    for (profile,), part in exp.grids.group_by(["profile"]):
        by_profile[str(profile)] = np.unique(part["trade_date"].to_numpy())
    none = np.zeros(0, dtype="datetime64[D]")
    out: dict[str, npt.NDArray[np.datetime64]] = {}
    for symbol, profile, first, last in exp.judged.select(
        "symbol", "profile", "first_day", "last_day"
    ).iter_rows():
        days = by_profile.get(str(profile), none)
        lo = np.searchsorted(days, np.datetime64(first, "D"), "left")
        hi = np.searchsorted(days, np.datetime64(last, "D"), "right")
        out[str(symbol)] = days[lo:hi]
    return out


def stored_files(root: Path, sel: Selection) -> list[Path]:
    """The Parquet files of the partitions that may hold ``sel``'s rows (its dataset, and
    frequency for klines, over the years of its range)."""
    layout = DataRoot(root)
    files: list[Path] = []
    for year in range(sel.start.year, sel.end.year + 1):
        if sel.dataset == "klines":
            folder = layout.partition_of("klines", freq=sel.freq, year=year)
        else:
            folder = layout.partition_of(sel.dataset, year=year)
        files += sorted(folder.glob("*.parquet"))
    return files


def statement_deadline(period: dt.date) -> dt.date:
    """The last day a report for ``period`` may be published (CSRC rules): Q1 by Apr 30,
    H1 by Aug 31, Q3 by Oct 31, annual by Apr 30 of the next year."""
    if period.month == 3:
        return dt.date(period.year, 4, 30)
    if period.month == 6:
        return dt.date(period.year, 8, 31)
    if period.month == 9:
        return dt.date(period.year, 10, 31)
    return dt.date(period.year + 1, 4, 30)


def _listing(root: Path) -> pl.DataFrame:
    """symbol -> market, type, list_date, delist_date, from every vendor's instruments."""
    files = list(DataRoot(root).dataset("instruments").glob("*/*.parquet"))
    empty = pl.DataFrame(
        schema={
            "symbol": pl.String,
            "market": pl.String,
            "type": pl.String,
            "list_date": pl.Date,
            "delist_date": pl.Date,
        }
    )
    if not files:
        return empty
    frame = (
        pl.scan_parquet(files, hive_partitioning=True, missing_columns="insert")
        .select("symbol", "market", "type", "list_date", "delist_date")
        .collect()
    )
    return frame.group_by("symbol").agg(
        pl.col("market").first(), pl.col("type").first(),
        pl.col("list_date").min(), pl.col("delist_date").max(),
    )  # fmt: skip


def _profile(symbol: str, market: str) -> str:
    if market == "CFE":
        code = symbol.split(".", 1)[0]
        variety = code.rstrip("0123456789")
        if variety in CFE_TREASURY_VARIETIES:
            return "CFE/treasury"
    return market


def _lake_days(root: Path, market: str, start: dt.date, end: dt.date) -> list[dt.date] | None:
    """Open days from the lake's calendar if it covers every day of the range, else None."""
    folder = DataRoot(root).partition_of("calendar", market=market)
    files = list(folder.glob("*.parquet"))
    if not files:
        return None
    frame = (
        pl.scan_parquet(files)
        .filter(pl.col("trade_date").is_between(start, end))
        .select("trade_date", "is_open")
        .collect()
    )
    if frame.height < (end - start).days + 1:
        return None
    return frame.filter(pl.col("is_open"))["trade_date"].sort().to_list()


def _symbols_for_market(listing: pl.DataFrame, sel: Selection) -> list[str]:
    frame = listing.filter(pl.col("market") == sel.market)
    if sel.dataset in STATEMENT_DATASETS:
        frame = frame.filter(pl.col("type") == "stock")
    frame = frame.filter(
        (pl.col("list_date").is_null() | (pl.col("list_date") <= sel.end))
        & (pl.col("delist_date").is_null() | (pl.col("delist_date") >= sel.start))
    )
    return sorted(frame["symbol"].to_list())


def market_symbols(root: Path, sel: Selection, vendor: str = "V") -> list[str]:
    """The instruments of ``sel.market`` listed at some point of the range (from the lake);
    none is bad input naming the sync to run (with ``vendor``, when the caller knows it)."""
    symbols = _symbols_for_market(_listing(root), sel)
    if not symbols:
        raise BadInputError(
            f"no instruments known for market {sel.market}: run "
            f"`etl instruments sync --vendor {vendor} --market {sel.market}` first"
        )
    return symbols


def build_expectation(root: Path, sel: Selection, now: dt.datetime) -> Expectation:
    keep_sessions_in(DataRoot(root).calendar_sessions)  # calendars built once a day, per root
    listing = _listing(root)
    symbols = market_symbols(root, sel) if sel.market and not sel.symbols else list(sel.symbols)
    info = {r["symbol"]: r for r in listing.filter(pl.col("symbol").is_in(symbols)).to_dicts()}
    rows, unjudged = [], []
    for symbol in symbols:
        market = market_of_symbol(symbol)
        if market is None:
            unjudged.append({"symbol": symbol, "reason": "no calendar is known for this product"})
            continue
        if (
            sel.freq
            and sel.freq not in ("1d", "1w", "1M")
            and not market_spec(market).intraday_judged
        ):
            unjudged.append(
                {"symbol": symbol, "reason": f"{market} intraday sessions vary by product"}
            )
            continue
        meta = info.get(symbol, {})
        first = max(sel.start, meta.get("list_date") or sel.start)
        last = min(sel.end, meta.get("delist_date") or sel.end)
        if first > last:
            continue  # not listed in the range: nothing is expected
        rows.append(
            {
                "symbol": symbol,
                "market": market,
                "profile": _profile(symbol, market),
                "first_day": first,
                "last_day": last,
            }
        )
    judged = pl.DataFrame(
        rows,
        schema={
            "symbol": pl.String,
            "market": pl.String,
            "profile": pl.String,
            "first_day": pl.Date,
            "last_day": pl.Date,
        },
    )
    sources: dict[str, str] = {}
    if sel.dataset in STATEMENT_DATASETS:
        grids = _statement_grid(judged, sel, now)
    else:
        grids, sources = _bar_grids(root, judged, sel)
    return Expectation(judged=judged, grids=grids, unjudged=unjudged, calendar_sources=sources)


def _bar_grids(
    root: Path, judged: pl.DataFrame, sel: Selection
) -> tuple[pl.DataFrame, dict[str, str]]:
    assert sel.freq is not None
    parts: list[pl.DataFrame] = []
    sources: dict[str, str] = {}
    for profile in sorted(set(judged["profile"].to_list())):
        market = profile.split("/", 1)[0]
        days = _lake_days(root, market, sel.start, sel.end)
        sources[market] = "lake" if days is not None else "exchange_calendars"
        segments = CFE_TREASURY_SEGMENTS if profile == "CFE/treasury" else None
        grid = bar_grid(market, sel.freq, sel.start, sel.end, segments=segments, days=days)
        parts.append(pl.DataFrame({
            "profile": [profile] * len(grid),
            "ts": pl.Series(grid.ts).cast(pl.Datetime("us", "UTC")),
            "trade_date": pl.Series(grid.trade_date.astype("datetime64[D]")).cast(pl.Date),
        }))  # fmt: skip
    if not parts:
        return _empty_grid(), sources
    return pl.concat(parts), sources


def _empty_grid() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"profile": pl.String, "ts": pl.Datetime("us", "UTC"), "trade_date": pl.Date}
    )


def _statement_grid(judged: pl.DataFrame, sel: Selection, now: dt.datetime) -> pl.DataFrame:
    """Quarter ends in range whose publication deadline has passed (one grid for all)."""
    today = now.astimezone(dt.UTC).date()
    periods = []
    year, month = sel.start.year, ((sel.start.month - 1) // 3 + 1) * 3
    while True:
        period = _quarter_end(year, month)
        if period > sel.end:
            break
        if period >= sel.start and statement_deadline(period) < today:
            periods.append(period)
        month += 3
        if month > 12:
            year, month = year + 1, 3
    profiles = sorted(set(judged["profile"].to_list())) if judged.height else []
    rows = [
        (p, dt.datetime.combine(d, dt.time(0), tzinfo=dt.UTC), d) for p in profiles for d in periods
    ]
    if not rows:
        return _empty_grid()
    return pl.DataFrame(
        rows,
        schema={"profile": pl.String, "ts": pl.Datetime("us", "UTC"), "trade_date": pl.Date},
        orient="row",
    )


def _quarter_end(year: int, month: int) -> dt.date:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)
