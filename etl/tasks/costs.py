"""What vendor calls cost: requests for a symbol over a range (span limits, pages counted on
the market's calendar), and the seconds a number of requests takes at the vendor's rate.

Shared by the fill planner (:mod:`etl.tasks.plan`) and ``backfill --dry-run``; plain
arithmetic on the calendar, without polars (a backfill imports this on the way to its first
request).
"""

from __future__ import annotations

import datetime as dt
import functools
import math

from etl.calendars.bars import bar_grid
from etl.vendors.base import Capabilities, DatasetCapability

__all__ = ["BARS_PER_SESSION", "bars_between", "range_requests", "seconds_at"]

BARS_PER_SESSION = {"1m": 240, "5m": 48, "15m": 16, "30m": 8, "1h": 4, "1d": 1, "1w": 0.2,
                    "1M": 0.05}  # fmt: skip


def seconds_at(requests: int, caps: Capabilities, rate: float | None) -> tuple[float, float]:
    """(requests per second, seconds) that ``requests`` take at the vendor's limits (``rate``:
    the configured override, else the table's per-second and per-minute limits)."""
    per_second = rate or caps.rate.per_second
    seconds = requests / per_second if per_second else 0.0
    if caps.rate.per_minute:
        seconds = max(seconds, requests / caps.rate.per_minute * 60)
    return per_second, seconds


def range_requests(
    cap: DatasetCapability, freq: str, start: dt.date, end: dt.date, market: str | None = None
) -> int:
    """Requests for one symbol over ``[start, end]``: the span limit, and pages of
    ``rows_per_call`` bars counted on the market's calendar (estimated without one)."""
    days = (end - start).days + 1
    span = cap.span_days_per_call.get(freq)
    calls = math.ceil(days / span) if span else 1
    if cap.rows_per_call:
        if market is not None and freq in BARS_PER_SESSION:
            bars = bars_between(market, freq, start, end)
        else:
            bars = int(BARS_PER_SESSION.get(freq, 1) * max(1, round(days * 5 / 7)))
        calls = max(calls, math.ceil(bars / cap.rows_per_call))
    return max(1, calls)


@functools.lru_cache(maxsize=4096)
def bars_between(market: str, freq: str, start: dt.date, end: dt.date) -> int:
    return len(bar_grid(market, freq, start, end))
