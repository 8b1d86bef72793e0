"""What should exist: the expected slots of a selection, as small tables DuckDB can join.

A *slot* is one bar (klines) or one reporting period (statements) of one symbol. Rather than
one row per symbol and bar, the expectation is two compact tables: a bar grid per session
*profile* (a market, or CFFEX treasury futures with their 15:15 close) and the judged symbols
with their profile and listed life. Joining them in DuckDB gives the expected slots.

Trading days come from the lake's ``calendar`` dataset when it covers the range (a calendar
synced from a vendor), else from exchange_calendars. Products without a calendar (vendor-only
``.MDAPI`` / ``.INFOWAY`` codes) and intraday bars of markets whose sessions vary by product
are *not judged*: detect-missing says so instead of guessing.

Judging (:func:`judge`) and the bar grids (:func:`bar_grids`) are plain data, read with
pyarrow alone; only the tables DuckDB joins are polars frames, and polars is imported where
they are built. A backfill asks :func:`expected_days` on the way to its first request, which
polars would delay by 0.15 s (issue 10, start-up).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from etl.calendars.bars import BarGrid, bar_grid
from etl.calendars.markets import (
    CFE_TREASURY_SEGMENTS,
    CFE_TREASURY_VARIETIES,
    market_of_symbol,
    market_spec,
)
from etl.calendars.store import keep_sessions_in
from etl.dataroot import DataRoot
from etl.errors import BadInputError
from etl.lake.parquet_io import may_hold, read_columns

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "Expectation",
    "Judged",
    "Selection",
    "bar_grids",
    "build_expectation",
    "expected_days",
    "expected_per_day",
    "judge",
    "ledger_files",
    "market_symbols",
    "nothing_stored",
    "statement_deadline",
    "stored_files",
]

STATEMENT_DATASETS = ("balance_sheet", "income", "cash_flow")
SLOT_BUDGET = 1_000_000  # expected slots per chunk of symbols: ~0.4 GB peak (BENCHMARKS.md)


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


@dataclass(frozen=True)
class Judged:
    """A symbol a calendar judges: its session profile and its listed life within the range."""

    symbol: str
    market: str
    profile: str
    first_day: dt.date
    last_day: dt.date


def expected_per_day(exp: Expectation) -> pl.DataFrame:
    """Expected slots per market and day, counted without building one row per slot.

    Per profile and day: bars in the grid that day x symbols whose listed life covers the day
    (two sorted arrays and a binary search, instead of a join of symbols x bars).
    """
    import polars as pl

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


def expected_days(
    root: Path, sel: Selection
) -> tuple[list[dict[str, str]], dict[str, npt.NDArray[np.datetime64]]]:
    """(the symbols no calendar judges, with why; each judged symbol's expected trade dates,
    sorted, each once: its profile's grid days within its listed life), for a bars
    selection. Slices of one array per profile: nothing is built per slot."""
    judged, unjudged = judge(root, sel)
    grids, _ = bar_grids(root, sorted({j.profile for j in judged}), sel)
    by_profile = {p: np.unique(g.trade_date.astype("datetime64[D]")) for p, g in grids.items()}
    out: dict[str, npt.NDArray[np.datetime64]] = {}
    for j in judged:
        days = by_profile[j.profile]
        lo = np.searchsorted(days, np.datetime64(j.first_day, "D"), "left")
        hi = np.searchsorted(days, np.datetime64(j.last_day, "D"), "right")
        out[j.symbol] = days[lo:hi]
    return unjudged, out


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


def ledger_files(root: Path, sel: Selection) -> list[Path]:
    """The gap ledger's Parquet files for ``sel``'s dataset and frequency."""
    folder = DataRoot(root).partition_of("gap_ledger", dataset=sel.dataset, freq=sel.slot_freq)
    return sorted(folder.glob("*.parquet"))


def nothing_stored(root: Path, sel: Selection, symbols: list[str]) -> bool:
    """Whether no stored file and no gap-ledger file of ``sel`` can hold a row of
    ``symbols`` (their footers' statistics leave them all out: a new symbol, a fresh data
    root): then every expected slot of them is absent and ``missing``, known without reading
    a row (detect's and fill-missing's fast path)."""
    files = [*stored_files(root, sel), *ledger_files(root, sel)]
    return bool(symbols) and not any(may_hold(f, "symbol", symbols) for f in files)


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


def _listing(root: Path) -> dict[str, dict[str, Any]]:
    """symbol -> market, type, list_date, delist_date, from every vendor's instruments: the
    first market and type seen, the earliest listing and the latest delisting."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(DataRoot(root).dataset("instruments").glob("*/*.parquet")):
        market = path.parent.name.partition("=")[2]  # the Hive folder: market=<m>
        found = read_columns(path, ("symbol", "type", "list_date", "delist_date"))
        for symbol, kind, listed, delisted in zip(*found.values(), strict=True):
            first = {"market": market, "type": kind, "list_date": listed, "delist_date": delisted}
            seen = out.setdefault(symbol, first)
            if listed is not None and (seen["list_date"] is None or listed < seen["list_date"]):
                seen["list_date"] = listed
            if delisted is not None and (
                seen["delist_date"] is None or delisted > seen["delist_date"]
            ):
                seen["delist_date"] = delisted
    return out


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
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return None
    days: list[dt.date] = []
    is_open: list[bool] = []
    for path in files:
        found = read_columns(path, ("trade_date", "is_open"))
        days += found["trade_date"]
        is_open += found["is_open"]
    inside = [(d, o) for d, o in zip(days, is_open, strict=True) if start <= d <= end]
    if len(inside) < (end - start).days + 1:
        return None
    return sorted(d for d, o in inside if o)


def _symbols_for_market(listing: dict[str, dict[str, Any]], sel: Selection) -> list[str]:
    return sorted(
        symbol
        for symbol, meta in listing.items()
        if meta["market"] == sel.market
        and (sel.dataset not in STATEMENT_DATASETS or meta["type"] == "stock")
        and (meta["list_date"] is None or meta["list_date"] <= sel.end)
        and (meta["delist_date"] is None or meta["delist_date"] >= sel.start)
    )


def market_symbols(root: Path, sel: Selection, vendor: str = "V") -> list[str]:
    """The instruments of ``sel.market`` listed at some point of the range (from the lake);
    none is bad input naming the sync to run (with ``vendor``, when the caller knows it)."""
    listing = _listing(root)
    symbols = _symbols_for_market(listing, sel)
    if symbols:
        return symbols
    known = sum(1 for meta in listing.values() if meta["market"] == sel.market)
    if known:  # e.g. a vendor whose list is today's (AmazingData): no contract of the past
        raise BadInputError(
            f"none of the {known} instruments known for market {sel.market} was listed "
            f"between {sel.start} and {sel.end}: sync the market's instruments from a vendor "
            f"that lists those of that time (`etl instruments sync --vendor {vendor} "
            f"--market {sel.market}`), or choose a later range"
        )
    raise BadInputError(
        f"no instruments known for market {sel.market}: run "
        f"`etl instruments sync --vendor {vendor} --market {sel.market}` first"
    )


def judge(root: Path, sel: Selection) -> tuple[list[Judged], list[dict[str, str]]]:
    """The symbols of ``sel`` (its market's, if it names none) a calendar judges, with their
    listed life within the range (those not listed in it are left out: nothing is expected),
    and those none judges, each with the reason."""
    listing = _listing(root)
    symbols = market_symbols(root, sel) if sel.market and not sel.symbols else list(sel.symbols)
    judged: list[Judged] = []
    unjudged: list[dict[str, str]] = []
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
        meta = listing.get(symbol, {})
        first = max(sel.start, meta.get("list_date") or sel.start)
        last = min(sel.end, meta.get("delist_date") or sel.end)
        if first > last:
            continue  # not listed in the range: nothing is expected
        judged.append(Judged(symbol, market, _profile(symbol, market), first, last))
    return judged, unjudged


def bar_grids(
    root: Path, profiles: list[str], sel: Selection
) -> tuple[dict[str, BarGrid], dict[str, str]]:
    """(profile -> its expected bars over ``sel``'s range, market -> where its trading days
    came from: ``lake`` or ``exchange_calendars``)."""
    assert sel.freq is not None
    keep_sessions_in(DataRoot(root).calendar_sessions)  # calendars built once a day, per root
    grids: dict[str, BarGrid] = {}
    sources: dict[str, str] = {}
    for profile in profiles:
        market = profile.split("/", 1)[0]
        days = _lake_days(root, market, sel.start, sel.end)
        sources[market] = "lake" if days is not None else "exchange_calendars"
        segments = CFE_TREASURY_SEGMENTS if profile == "CFE/treasury" else None
        grids[profile] = bar_grid(market, sel.freq, sel.start, sel.end, segments=segments,
                                  days=days)  # fmt: skip
    return grids, sources


def build_expectation(root: Path, sel: Selection, now: dt.datetime) -> Expectation:
    import polars as pl

    rows, unjudged = judge(root, sel)
    judged = pl.DataFrame(
        [(j.symbol, j.market, j.profile, j.first_day, j.last_day) for j in rows],
        schema={
            "symbol": pl.String,
            "market": pl.String,
            "profile": pl.String,
            "first_day": pl.Date,
            "last_day": pl.Date,
        },
        orient="row",
    )
    profiles = sorted({j.profile for j in rows})
    sources: dict[str, str] = {}
    if sel.dataset in STATEMENT_DATASETS:
        grids = _statement_grid(profiles, sel, now)
    else:
        found, sources = bar_grids(root, profiles, sel)
        grids = _grid_frame(found)
    return Expectation(judged=judged, grids=grids, unjudged=unjudged, calendar_sources=sources)


def _grid_frame(grids: dict[str, BarGrid]) -> pl.DataFrame:
    import polars as pl

    # typed even when a grid is empty (a range of closed days): an untyped empty column
    # cannot be joined on (regression: detect's all-absent path failed on a weekend)
    parts = [
        pl.DataFrame({
            "profile": pl.Series([profile] * len(grid), dtype=pl.String),
            "ts": pl.Series(grid.ts).cast(pl.Datetime("us", "UTC")),
            "trade_date": pl.Series(grid.trade_date.astype("datetime64[D]")).cast(pl.Date),
        })
        for profile, grid in grids.items()
    ]  # fmt: skip
    return pl.concat(parts) if parts else _empty_grid()


def _empty_grid() -> pl.DataFrame:
    import polars as pl

    return pl.DataFrame(
        schema={"profile": pl.String, "ts": pl.Datetime("us", "UTC"), "trade_date": pl.Date}
    )


def _statement_grid(profiles: list[str], sel: Selection, now: dt.datetime) -> pl.DataFrame:
    """Quarter ends in range whose publication deadline has passed (one grid for all)."""
    import polars as pl

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
