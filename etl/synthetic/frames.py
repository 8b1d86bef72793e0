"""Calendar frames: the expected bars of a market and, for each, the instants it spans.

The bar times come from :func:`etl.calendars.bar_grid`, the grid detect-missing judges by,
so the synthetic market can never disagree with it. A frame adds what prices need: the
instant a bar opens and closes (the first session's open and the last session's close for
1d/1w/1M) and the trading minutes it covers. Frames depend only on the calendar, so they are
cached and shared by every symbol of a market.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt

from etl.calendars import bar_grid, sessions
from etl.calendars.markets import CFE_TREASURY_SEGMENTS
from etl.names import parse_freq

__all__ = ["Frame", "frame"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Days = npt.NDArray[np.datetime64]

_US_PER_MINUTE: Final = 60_000_000
# A week or month bar whose first day is in range may end up to a month after it.
_PERIOD_LOOKAROUND: Final = dt.timedelta(days=40)


@dataclass(frozen=True)
class Frame:
    """Bars of one (market, freq, range). Per bar: ``ts`` and ``trade_date`` (the grid),
    ``first``/``last`` (indices into ``days`` of the sessions it covers). Per session day:
    ``day_open``/``day_close`` (UTC us) and ``day_minutes``. Intraday bars also carry their
    own ``t0``/``t1`` (a segment's last bar may be short)."""

    ts: I64
    trade_date: Days
    first: I64
    last: I64
    t0: I64
    t1: I64
    days: Days
    day_open: I64
    day_close: I64
    cum_minutes: F64  # cumulative trading minutes before each day (len(days) + 1)
    intraday: bool

    def __len__(self) -> int:
        return len(self.ts)


def frame(market: str, freq: str, start: dt.date, end: dt.date, *, treasury: bool = False) -> Frame:
    """The frame of ``market``/``freq`` for trade dates in ``[start, end]`` (cached)."""
    return _frame(market, freq, start, end, treasury)


@lru_cache(maxsize=256)
def _frame(market: str, freq: str, start: dt.date, end: dt.date, treasury: bool) -> Frame:
    f = parse_freq(freq)
    segments = CFE_TREASURY_SEGMENTS if treasury else None
    grid = bar_grid(market, f, start, end, segments=segments)
    if f.name in ("1w", "1M"):
        found = sessions(
            market, start - _PERIOD_LOOKAROUND, end + _PERIOD_LOOKAROUND, segments=segments
        )
    else:
        found = sessions(market, start, end, segments=segments)
    n_days = len(found.days)
    day_ids = np.arange(n_days)
    first_seg = np.searchsorted(found.seg_day, day_ids, side="left")
    last_seg = np.searchsorted(found.seg_day, day_ids, side="right") - 1
    day_open = found.seg_start[first_seg] if n_days else np.zeros(0, np.int64)
    day_close = found.seg_end[last_seg] if n_days else np.zeros(0, np.int64)
    seg_minutes = (found.seg_end - found.seg_start).astype(np.float64) / _US_PER_MINUTE
    per_day = np.bincount(found.seg_day, weights=seg_minutes, minlength=n_days)
    cum = np.concatenate([[0.0], np.cumsum(per_day)])
    at = np.searchsorted(found.days, grid.trade_date).astype(np.int64)
    if f.intraday:
        assert f.minutes is not None
        seg = np.searchsorted(found.seg_start, grid.ts, side="right") - 1
        t0 = grid.ts
        t1 = np.minimum(grid.ts + f.minutes * _US_PER_MINUTE, found.seg_end[seg])
        first = last = at
    elif f.name == "1d":
        first = last = at
        t0, t1 = day_open[at], day_close[at]
    else:
        if f.name == "1w":
            key = (found.days.astype(np.int64) + 3) // 7  # Monday-based weeks
        else:
            key = found.days.astype("datetime64[M]").astype(np.int64)
        group_end = np.searchsorted(key, key, side="right") - 1
        first = at
        last = group_end[at].astype(np.int64)
        t0, t1 = day_open[first], day_close[last]
    return _frozen(
        Frame(
            ts=grid.ts,
            trade_date=grid.trade_date,
            first=np.asarray(first, dtype=np.int64),
            last=np.asarray(last, dtype=np.int64),
            t0=np.asarray(t0, dtype=np.int64),
            t1=np.asarray(t1, dtype=np.int64),
            days=found.days,
            day_open=day_open,
            day_close=day_close,
            cum_minutes=cum,
            intraday=f.intraday,
        )
    )


def _frozen(fr: Frame) -> Frame:
    """Cached arrays are shared between callers: make them read-only."""
    for value in vars(fr).values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return fr
