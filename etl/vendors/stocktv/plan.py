"""What StockTV serves (its capability table) and how a range becomes kline calls: pure
helpers of the adapter, no I/O.

StockTV publishes no calendar and no depth, so the capability table declares none: every
range is asked for, and what StockTV does not return is recorded unavailable from its answer
(the emulator's convention, 1m–1h over the last 180 days and 1d–1M since 2010-01-01, is the
emulator's business, not an assumption of the adapter's). Which bars *should* exist in a
range comes from the warehouse's exchange calendars (:mod:`etl.calendars`); the adapter needs
that twice: to tell a range the vendor could not serve from one with no sessions, and to tell
a finished day from one still trading at ``now``.
"""

from __future__ import annotations

import datetime as dt
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np

from etl.calendars import bar_grid, market_spec, sessions
from etl.errors import BadInputError
from etl.vendors.base import Capabilities, DatasetCapability, RateLimits
from etl.vendors.stocktv.wire import COUNTRIES, INTERVALS

__all__ = [
    "BARS_PER_CALL",
    "PAGE_SIZE",
    "capabilities",
    "complete_through",
    "day_bounds_ms",
    "missing_before",
]

MARKETS: Final = frozenset(COUNTRIES)
INTRADAY: Final = ("1m", "5m", "15m", "30m", "1h")
BARS_PER_CALL: Final = 1000
PAGE_SIZE: Final = 500  # /stock/stocks pageSize ceiling
DEFAULT_RATE: Final = 5.0  # requests per second per key (convention)
_DAY: Final = dt.timedelta(days=1)
_MS: Final = 1000


def capabilities(vendor: str, rate: float | None, now: dt.datetime) -> Capabilities:
    """The table of docs/vendors/stocktv.md "Capabilities"; ``rate`` is ETL_STOCKTV_RATE.
    ``now`` is kept for the signature every adapter shares.

    Index klines (``.STOCKTV``) are left out on purpose: their bars sit in their country's
    zone (docs/vendors/README.md), but validation dates vendor-suffix symbols in Asia/Shanghai,
    so their day bars would all be refused. Indices are listed (pid map) all the same."""
    return Capabilities(
        vendor=vendor,
        datasets=(
            DatasetCapability(
                "klines", MARKETS, frozenset(INTERVALS),
                rows_per_call=BARS_PER_CALL,
                note="depth not published: asked, and where its answer ends is recorded; "
                "1000 bars a call, paged backwards",
            ),
            DatasetCapability(
                "instruments", MARKETS | {"STOCKTV"},
                note="IN (NSE), US (NYSE, NASDAQ), JP stocks with pid; indices as .STOCKTV",
            ),
        ),
        rate=RateLimits(
            per_second=rate or DEFAULT_RATE, scope="key",
            note="5 requests in any sliding second per key (convention); no ban",
        ),
    )  # fmt: skip


def _zone(market: str) -> ZoneInfo:
    return market_spec(market).zone


def day_bounds_ms(market: str, first: dt.date, last: dt.date) -> tuple[int, int]:
    """``startTime``/``endTime`` (epoch ms, both inclusive) covering every bar whose trade
    date is in ``[first, last]``: 00:00 local of ``first`` to just before 00:00 local of
    the day after ``last``. Sessions of IN, US and JP never cross local midnight."""
    zone = _zone(market)
    lo = dt.datetime.combine(first, dt.time(0), tzinfo=zone)
    hi = dt.datetime.combine(last + _DAY, dt.time(0), tzinfo=zone)
    return int(lo.timestamp()) * _MS, int(hi.timestamp()) * _MS - 1


def complete_through(
    market: str, freq: str, first: dt.date, last: dt.date, now: dt.datetime
) -> dt.date:
    """The last day ``d`` of ``[first - 1, last]`` such that every bar with a trade date up
    to ``d`` has ended at ``now`` (a 1w/1M bar ends with its period's last session). Days
    beyond the calendars' horizon are never complete."""
    today = now.astimezone(_zone(market)).date()
    if first > today:
        return first - _DAY
    period = freq in ("1w", "1M")
    try:
        found = sessions(market, first, last + dt.timedelta(days=40 if period else 0))
    except BadInputError:
        return first - _DAY
    if len(found.days) == 0:
        return min(last, today)
    closes = np.full(len(found.days), np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(closes, found.seg_day, found.seg_end)
    days = found.days
    if period:  # close of a period = close of its last session, for each of its days
        if freq == "1w":  # ISO weeks: day numbers shifted so that weeks start on Monday
            group = (days.astype("int64") + 3) // 7
        else:
            group = days.astype("datetime64[M]").astype("int64")
        for g in np.unique(group):
            members = group == g
            closes[members] = closes[members].max()
    now_us = int(now.timestamp() * 1_000_000)
    pending = np.flatnonzero((closes > now_us) & (days <= np.datetime64(last, "D")))
    done = last
    if len(pending):
        done = days[pending[0]].astype(dt.date) - _DAY
    return max(first - _DAY, min(done, today))


def missing_before(market: str, freq: str, first: dt.date, before_ms: int) -> dt.date | None:
    """The trade date of the last bar the calendar expects from ``first`` on that opens
    before ``before_ms``, or None if it expects none (a holiday stretch): used when StockTV
    has nothing older, to say which part of the range it cannot serve."""
    last = dt.datetime.fromtimestamp(before_ms / _MS, dt.UTC).astimezone(_zone(market)).date()
    if last < first:
        return None
    try:
        grid = bar_grid(market, freq, first, last)
    except BadInputError:
        return None
    inside = np.flatnonzero(grid.ts < before_ms * _MS)
    if len(inside) == 0:
        return None
    found: dt.date = grid.trade_date[inside[-1]].astype("datetime64[D]").astype(dt.date)
    return found
