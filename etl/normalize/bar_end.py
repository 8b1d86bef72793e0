"""When does a bar end? Needed to tell a finished bar from one still forming.

Intraday: open + length. 1d: the close of its session (so a nightly run after the close
stores today's bar). 1w/1M: the close of the period's last session. Products without a
calendar end their 1d bar at the next local midnight.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from etl.calendars.markets import market_of_symbol
from etl.calendars.sessions import sessions
from etl.errors import BadInputError

__all__ = ["bar_end"]

_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60}
_RECENT = dt.timedelta(days=45)  # bars older than this before `now` have surely ended


def bar_end(frame: pl.DataFrame, freq: str, now: dt.datetime | None = None) -> pl.Series:
    """End instant (UTC) of each bar of ``frame`` (columns symbol, ts, trade_date)."""
    if freq in _MINUTES:
        return frame.select(pl.col("ts") + pl.duration(minutes=_MINUTES[freq])).to_series()
    ends = frame.select(pl.col("ts") + pl.duration(days=1)).to_series().to_list()
    markets = [market_of_symbol(s) for s in frame["symbol"].to_list()]
    dates = frame["trade_date"].to_list()
    ts_list = frame["ts"].to_list()
    cutoff = (now - _RECENT) if now is not None else None
    wanted: dict[str, set[dt.date]] = {}
    for i, (market, day) in enumerate(zip(markets, dates, strict=True)):
        if market is None or (cutoff is not None and ts_list[i] < cutoff):
            continue
        wanted.setdefault(market, set()).add(day)
    closes: dict[tuple[str, dt.date], dt.datetime] = {}
    for market, days in wanted.items():
        closes.update(_period_closes(market, freq, min(days), max(days)))
    for i, (market, day) in enumerate(zip(markets, dates, strict=True)):
        if market is not None and (market, day) in closes:
            ends[i] = closes[(market, day)]
    return pl.Series("end", ends, dtype=pl.Datetime("us", "UTC"))


def _period_closes(
    market: str, freq: str, first: dt.date, last: dt.date
) -> dict[tuple[str, dt.date], dt.datetime]:
    """trade_date (first session of its period) -> close of the period's last session."""
    try:
        found = sessions(market, first, last + dt.timedelta(days=35))
    except BadInputError:
        return {}
    if len(found) == 0:
        return {}
    close_us = np.full(len(found.days), np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(close_us, found.seg_day, found.seg_end)
    days = found.days
    if freq == "1w":
        group = (days.astype("int64") + 3) // 7
    elif freq == "1M":
        group = days.astype("datetime64[M]").astype("int64")
    else:
        group = np.arange(len(days))
    out: dict[tuple[str, dt.date], dt.datetime] = {}
    start = 0
    for i in range(1, len(days) + 1):
        if i == len(days) or group[i] != group[start]:
            first_day = days[start].astype(dt.date)
            end_us = int(close_us[i - 1])
            out[(market, first_day)] = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
                microseconds=end_us
            )
            start = i
    return out
