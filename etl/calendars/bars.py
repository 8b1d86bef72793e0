"""The bars a calendar says should exist: the grid both the `sim` vendor and detect-missing use.

Rules (docs/vendors/README.md): intraday bars are aligned to each segment's open and cover
regular sessions only, the last one of a segment possibly shorter; 1d, 1w and 1M bars sit at
00:00 exchange-local of their first trading day, which is also their ``trade_date``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from etl.calendars.markets import Segment, market_spec
from etl.calendars.sessions import Sessions, sessions
from etl.names import Freq, parse_freq

__all__ = ["BarGrid", "bar_grid", "grid_from_sessions"]

US_PER_MINUTE = 60_000_000


@dataclass(frozen=True)
class BarGrid:
    """Expected bars: ``ts`` (UTC microseconds, ascending) and their ``trade_date``."""

    ts: npt.NDArray[np.int64]
    trade_date: npt.NDArray[np.datetime64]

    def __len__(self) -> int:
        return len(self.ts)


def bar_grid(
    market: str,
    freq: str | Freq,
    start: dt.date,
    end: dt.date,
    *,
    segments: Sequence[Segment] | None = None,
    days: Sequence[dt.date] | None = None,
) -> BarGrid:
    """Every bar of ``freq`` whose trade date lies in ``[start, end]`` (inclusive).

    ``days`` replaces the calendar's trading days (a calendar synced into the lake)."""
    f = freq if isinstance(freq, Freq) else parse_freq(freq)
    if f.name in ("1w", "1M"):
        # A period's bar belongs to its first session, which may precede `start`: look back
        # far enough to see the whole period, then keep only first sessions inside the range.
        lookback = start - dt.timedelta(days=40)
        found = sessions(market, lookback, end, segments=segments, days=days)
        grid = grid_from_sessions(found, f)
        keep = grid.trade_date >= np.datetime64(start, "D")
        return BarGrid(grid.ts[keep], grid.trade_date[keep])
    return grid_from_sessions(sessions(market, start, end, segments=segments, days=days), f)


def grid_from_sessions(found: Sessions, freq: Freq) -> BarGrid:
    if freq.intraday:
        assert freq.minutes is not None
        return _intraday(found, freq.minutes * US_PER_MINUTE)
    days = found.days
    if freq.name == "1w":
        # ISO week: Monday-based; days since a Monday epoch (1969-12-29) // 7.
        key = (days.astype("int64") + 3) // 7
        days = days[_first_of_groups(key)]
    elif freq.name == "1M":
        key = days.astype("datetime64[M]").astype("int64")
        days = days[_first_of_groups(key)]
    return BarGrid(local_midnights(days, market_spec(found.market).tz), days)


def local_midnights(days: npt.NDArray[np.datetime64], tz: str) -> npt.NDArray[np.int64]:
    """00:00 local time of each day in zone ``tz``, in UTC microseconds, as pandas'
    ``tz_localize`` gives it for our markets (none moves its clocks at midnight). Without
    pandas: a 1d grid is on the path to a command's first request (issue 10)."""
    zone = ZoneInfo(tz)
    day_numbers = days.astype("datetime64[D]").astype(np.int64)
    out = np.empty(len(day_numbers), dtype=np.int64)
    epoch = dt.date(1970, 1, 1).toordinal()
    for i, number in enumerate(day_numbers.tolist()):
        day = dt.date.fromordinal(epoch + number)
        offset = dt.datetime(day.year, day.month, day.day, tzinfo=zone).utcoffset()
        assert offset is not None
        seconds = number * 86_400 - int(offset.total_seconds())
        out[i] = seconds * 1_000_000
    return out


def _first_of_groups(key: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    first = np.ones(len(key), dtype=np.bool_)
    first[1:] = key[1:] != key[:-1]
    return first


def _intraday(found: Sessions, step: int) -> BarGrid:
    length = found.seg_end - found.seg_start
    counts = -(-length // step)  # ceil: a segment's last bar may be shorter
    counts = np.maximum(counts, 0)
    total = int(counts.sum())
    if total == 0:
        return BarGrid(np.zeros(0, np.int64), np.zeros(0, "datetime64[D]"))
    seg_of_bar = np.repeat(np.arange(len(counts)), counts)
    first_index = np.cumsum(counts) - counts
    k = np.arange(total) - np.repeat(first_index, counts)
    ts = found.seg_start[seg_of_bar] + k * step
    trade_date = found.days[found.seg_day[seg_of_bar]]
    return BarGrid(ts.astype(np.int64), trade_date)
