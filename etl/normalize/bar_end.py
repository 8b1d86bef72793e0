"""When does a bar end? Needed to tell a finished bar from one still forming.

Intraday: open + length. 1d: the close of its session (so a nightly run after the close
stores today's bar). 1w/1M: the close of the period's last session. Products without a
calendar end their 1d bar at the next local midnight.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from etl.calendars.sessions import sessions
from etl.errors import BadInputError
from etl.names import MARKETS

__all__ = ["bar_end"]

_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60}
_RECENT = dt.timedelta(days=45)  # bars older than this before `now` have surely ended


def bar_end(frame: pl.DataFrame, freq: str, now: dt.datetime | None = None) -> pl.Series:
    """End instant (UTC) of each bar of ``frame`` (columns symbol, ts, trade_date)."""
    if freq in _MINUTES:
        return frame.select(pl.col("ts") + pl.duration(minutes=_MINUTES[freq])).to_series()
    tagged = frame.select(
        "ts",
        "trade_date",
        pl.col("symbol").str.extract(r"\.([A-Z]+)$").alias("market"),
    ).with_columns(pl.when(pl.col("market").is_in(list(MARKETS))).then("market").alias("market"))
    recent = tagged.filter(pl.col("market").is_not_null())
    if now is not None:  # only bars near `now` can still be forming: skip the calendar for the rest
        recent = recent.filter(pl.col("ts") >= now - _RECENT)
    pairs = recent.select("market", "trade_date").unique()
    rows: list[tuple[str, dt.date, dt.datetime]] = []
    for (market,), days in pairs.group_by(["market"]):
        dates = days["trade_date"]
        closes = _period_closes(str(market), freq, dates.min(), dates.max())  # type: ignore[arg-type]
        rows += [(m, d, end) for (m, d), end in closes.items()]
    closes_frame = pl.DataFrame(
        rows,
        schema={"market": pl.String, "trade_date": pl.Date, "end": pl.Datetime("us", "UTC")},
        orient="row",
    )
    joined = tagged.join(
        closes_frame, on=["market", "trade_date"], how="left", maintain_order="left"
    )
    return joined.select(
        pl.coalesce(pl.col("end"), pl.col("ts") + pl.duration(days=1)).alias("end")
    ).to_series()


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
