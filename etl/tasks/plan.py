"""Planning fill-missing: from absent slots and a vendor's capability table to vendor calls.

What the vendor cannot serve by its documentation (older than the history it documents, a
market or frequency it lacks) is marked ``unfillable`` and never requested; a limit relative
to the vendor's clock (its latest N bars) is left to the vendor's answer. The rest is cut
into calls: per symbol, runs of absent trade dates are merged while one merged call costs no
more requests than separate ones, under the vendor's span limit; then symbols asking for the
same range share calls up to the vendor's symbols-per-call.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from etl.calendars.bars import bar_grid
from etl.calendars.markets import market_of_symbol
from etl.tasks.costs import range_requests, seconds_at
from etl.tasks.depths import Depth
from etl.tasks.expected import Selection
from etl.vendors.base import Capabilities, DatasetCapability

__all__ = ["FillPlan", "PlannedCall", "plan_fill"]

MAX_SYMBOLS_PER_UNIT = 50
MAX_UNIT_BARS = 1_000_000
RUN_BREAK_DAYS = 7


@dataclass(frozen=True)
class PlannedCall:
    symbols: tuple[str, ...]
    start: dt.date
    end: dt.date
    slots: int  # absent slots this call should fill
    requests: int  # estimated vendor requests (paging, span limits)


@dataclass
class FillPlan:
    vendor: str
    calls: list[PlannedCall] = field(default_factory=list)
    unfillable: pl.DataFrame = field(
        default_factory=pl.DataFrame
    )  # symbol, ts, trade_date, state, reason

    @property
    def requests(self) -> int:
        return sum(c.requests for c in self.calls)

    @property
    def slots(self) -> int:
        return sum(c.slots for c in self.calls)

    def summary(self, caps: Capabilities, rate: float | None) -> dict[str, Any]:
        per_second, seconds = seconds_at(self.requests, caps, rate)
        return {
            "vendor": self.vendor,
            "requests": self.requests,
            "calls": len(self.calls),
            "rows_expected": self.slots,
            "quota_used": self.requests,
            "seconds_at_rate_limit": round(seconds, 1),
            "rate_limit_per_second": per_second,
            "unfillable": self.unfillable.height,
            "plan": [
                {
                    "symbols": list(c.symbols),
                    "start": c.start.isoformat(),
                    "end": c.end.isoformat(),
                    "rows_expected": c.slots,
                    "requests": c.requests,
                }
                for c in self.calls[:1000]
            ],
        }


def plan_fill(
    sel: Selection,
    slots: pl.DataFrame,
    vendor: str,
    caps: Capabilities,
    now: dt.datetime,
    *,
    others: Mapping[str, Capabilities] | None = None,
    depths: dict[str, Depth] | None = None,
) -> FillPlan:
    """``slots``: the absent slots to fill (symbol, ts, trade_date, state, reason).
    ``depths``: where the vendor's answers showed a symbol's history starts (slots before
    are unfillable with that answer as the reason, not asked again)."""
    plan = FillPlan(vendor=vendor)
    if slots.height == 0:
        plan.unfillable = slots.head(0)
        return plan
    exchanges = slots.select(pl.col("symbol").str.extract(r"\.([A-Z]+)$").alias("x"))["x"]
    frame = slots.with_columns(exchanges.alias("exchange"))
    reasons = []
    for (exchange,), group in frame.group_by(["exchange"], maintain_order=True):
        cap = caps.find(sel.dataset, exchange, sel.freq)
        what = " ".join(x for x in (sel.dataset, sel.freq) if x)
        if cap is None:
            able = sorted(
                n for n, c in (others or {}).items() if c.serves(sel.dataset, exchange, sel.freq)
            )
            hint = f"; vendors that can: {', '.join(able)}" if able else ""
            reasons.append(
                group.with_columns(
                    pl.lit(f"{vendor} does not serve {what} for {exchange}{hint}").alias("why")
                )
            )
            continue
        why = pl.lit(None, dtype=pl.String)
        if cap.since:
            why = (
                pl.when(pl.col("trade_date") < cap.since)
                .then(pl.lit(f"older than {vendor}'s history ({what} since {cap.since})"))
                .otherwise(why)
            )
        # A latest-N-bars window (cap.depth) makes nothing unfillable here: which bars are the
        # latest depends on the vendor's clock and calendar, not ours, and its one call per
        # symbol answers for the whole range anyway, so the answer decides (the adapter
        # records what lies beyond it as unavailable). Regression: slots older than N bars
        # by the local clock were marked unfillable without a request.
        reasons.append(group.with_columns(why.alias("why")))
    tagged = pl.concat(reasons, how="vertical_relaxed")
    if depths:
        learned = pl.DataFrame(
            {
                "symbol": list(depths),
                "_since": [d.since for d in depths.values()],
                "_why": [d.why() for d in depths.values()],
            },
            schema={"symbol": pl.String, "_since": pl.Date, "_why": pl.String},
        )
        tagged = (
            tagged.join(learned, on="symbol", how="left")
            .with_columns(
                pl.when(pl.col("why").is_null() & (pl.col("trade_date") < pl.col("_since")))
                .then(pl.col("_why"))
                .otherwise(pl.col("why"))
                .alias("why")
            )
            .drop("_since", "_why")
        )
    plan.unfillable = (
        tagged.filter(pl.col("why").is_not_null())
        .select("symbol", "ts", "trade_date", pl.lit("unfillable").alias("state"),
                pl.col("why").alias("reason"))
    )  # fmt: skip
    fetch = tagged.filter(pl.col("why").is_null())
    plan.calls = _calls(sel, fetch, caps)
    return plan


def _calls(sel: Selection, fetch: pl.DataFrame, caps: Capabilities) -> list[PlannedCall]:
    if fetch.height == 0:
        return []
    freq = sel.freq or "period"
    # Runs of absent trade dates per symbol, broken only by long pauses (a week or more), so
    # a full-market fill of ten years yields a few runs per symbol, not one per weekend.
    runs = (
        fetch.group_by("symbol", "exchange", "trade_date").len()
        .sort("symbol", "trade_date")
        .with_columns(
            (pl.col("trade_date").diff().over("symbol") > pl.duration(days=RUN_BREAK_DAYS))
            .fill_null(True).cum_sum().over("symbol").alias("run")
        )
        .group_by("symbol", "exchange", "run")
        .agg(pl.col("trade_date").min().alias("start"), pl.col("trade_date").max().alias("end"),
             pl.col("len").sum().alias("slots"))
        .sort("symbol", "start")
    )  # fmt: skip
    ranges: dict[tuple[str, dt.date, dt.date], list[tuple[str, int]]] = defaultdict(list)
    current: list[Any] | None = None
    for symbol, exchange, _run, start, end, slots in runs.iter_rows():
        cap = caps.find(sel.dataset, exchange, sel.freq)
        assert cap is not None
        if current is not None and current[0] == symbol:
            market = market_of_symbol(symbol)
            merged = range_requests(cap, freq, current[2], end, market)
            apart = range_requests(cap, freq, current[2], current[3], market) + range_requests(
                cap, freq, start, end, market
            )
            if merged <= apart:
                current[3], current[4] = end, current[4] + slots
                continue
        if current is not None:
            ranges[(current[1], current[2], current[3])].append((current[0], current[4]))
        current = [symbol, exchange, start, end, slots]
    if current is not None:
        ranges[(current[1], current[2], current[3])].append((current[0], current[4]))
    per_date = fetch.group_by("symbol", "trade_date").len()
    calls = []
    for (exchange, start, end), members in sorted(
        ranges.items(), key=lambda kv: (kv[0][1], kv[0][0])
    ):
        cap = caps.find(sel.dataset, exchange, sel.freq)
        assert cap is not None
        size = max(1, min(cap.symbols_per_call, MAX_SYMBOLS_PER_UNIT))
        for i in range(0, len(members), size):
            chunk = members[i : i + size]
            symbols = tuple(s for s, _ in chunk)
            # A page per call for paging vendors; otherwise about a million bars per call,
            # so memory stays bounded and a killed fill loses little.
            budget = cap.rows_per_call or max(1, MAX_UNIT_BARS // len(symbols))
            windows = _windows(cap, sel.freq, exchange, start, end, budget)
            if len(windows) == 1:
                market = market_of_symbol(symbols[0])
                per_symbol_cost = range_requests(cap, freq, start, end, market)
                requests = per_symbol_cost * (len(chunk) if cap.symbols_per_call == 1 else 1)
                calls.append(PlannedCall(symbols, start, end, sum(n for _, n in chunk), requests))
                continue
            counts = per_date.filter(pl.col("symbol").is_in(symbols))
            for w_start, w_end in windows:
                n = int(counts.filter(pl.col("trade_date").is_between(w_start, w_end))["len"].sum())
                if n:
                    market = market_of_symbol(symbols[0])
                    cost = range_requests(cap, freq, w_start, w_end, market) * (
                        len(symbols) if cap.symbols_per_call == 1 else 1
                    )
                    calls.append(PlannedCall(symbols, w_start, w_end, n, cost))
    return calls


def _windows(
    cap: DatasetCapability,
    freq: str | None,
    exchange: str,
    start: dt.date,
    end: dt.date,
    budget: int,
) -> list[tuple[dt.date, dt.date]]:
    """Cut a range into windows of at most ``budget`` bars (per symbol).

    For a paging vendor the budget is one page: a killed or failed fill loses a page, and
    progress and resume move page by page. A vendor with a span limit (AmazingData: 31 days
    of minute bars a request) gets windows of at most that span, so a call is one request
    (regression: a half-year hole was one call of 6 requests, and a kill lost all it had
    received). Vendors that only serve their latest N bars are not cut (every call would
    return the same N bars)."""
    market = market_of_symbol(f"X.{exchange}")
    if not freq or cap.depth.get(freq) or market is None:
        return [(start, end)]
    return _by_span(_by_bars(market, freq, start, end, budget), cap.span_days_per_call.get(freq))


def _by_span(
    windows: list[tuple[dt.date, dt.date]], span: int | None
) -> list[tuple[dt.date, dt.date]]:
    """Each window cut into windows of at most ``span`` calendar days (as the vendor cuts)."""
    if not span:
        return windows
    out = []
    for first, hi in windows:
        lo = first
        while lo <= hi:
            last = min(hi, lo + dt.timedelta(days=span - 1))
            out.append((lo, last))
            lo = last + dt.timedelta(days=1)
    return out


def _by_bars(
    market: str, freq: str, start: dt.date, end: dt.date, budget: int
) -> list[tuple[dt.date, dt.date]]:
    """``[start, end]`` cut at day boundaries into windows of at most ``budget`` bars."""
    grid = bar_grid(market, freq, start, end)
    if len(grid) <= budget:
        return [(start, end)]
    days, counts = np.unique(grid.trade_date, return_counts=True)
    windows: list[tuple[dt.date, dt.date]] = []
    first = last = days[0].astype(dt.date)
    filled = 0
    for day64, n in zip(days, counts, strict=True):
        day = day64.astype(dt.date)
        if filled and filled + int(n) > budget:
            windows.append((first, last))
            first, filled = day, 0
        filled += int(n)
        last = day
    windows.append((first, last))
    # Contiguous over [start, end]: no calendar day falls between two windows.
    cut = [windows[i][1] for i in range(len(windows) - 1)]
    starts = [start, *(d + dt.timedelta(days=1) for d in cut)]
    return list(zip(starts, [*cut, end], strict=True))
