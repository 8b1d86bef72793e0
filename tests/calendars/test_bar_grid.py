"""Expected bars against exchange_calendars' own schedule, including breaks and early closes."""

from __future__ import annotations

import datetime as dt
import math

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.calendars import bar_grid

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MINUTES = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60}
XCAL = {"SH": "XSHG", "HK": "XHKG", "US": "XNYS"}


def reference_bars(market: str, freq: str, day: dt.date) -> list[pd.Timestamp]:
    """Bars of one session computed straight from the exchange_calendars schedule."""
    cal = xcals.get_calendar(XCAL[market], start="2005-01-01")
    key = pd.Timestamp(day)
    if key not in cal.schedule.index:
        return []
    row = cal.schedule.loc[key]
    step = pd.Timedelta(minutes=MINUTES[freq])
    segments = [(row["open"], row["close"])]
    if not pd.isna(row["break_start"]):
        segments = [(row["open"], row["break_start"]), (row["break_end"], row["close"])]
    bars = []
    for start, end in segments:
        n = math.ceil((end - start) / step)
        bars += [start + i * step for i in range(n)]
    return bars


# (market, day, freq, bars): literal answers, each checked by hand
LITERAL = [
    ("SH", dt.date(2024, 1, 2), "1m", 240),  # 09:30-11:30 + 13:00-15:00
    ("SH", dt.date(2024, 1, 2), "1h", 4),  # 09:30 10:30 13:00 14:00
    ("HK", dt.date(2024, 1, 2), "1h", 6),  # 09:30 10:30 11:30 | 13:00 14:00 15:00
    ("HK", dt.date(2024, 12, 24), "1m", 150),  # Christmas Eve half day, no lunch break
    ("US", dt.date(2023, 11, 24), "30m", 7),  # day after Thanksgiving closes at 13:00
    ("US", dt.date(2024, 1, 2), "1m", 390),
    ("SH", dt.date(2024, 2, 12), "1m", 0),  # Spring Festival holiday
]


@pytest.mark.parametrize(("market", "day", "freq", "count"), LITERAL)
def test_literal_session_counts(market: str, day: dt.date, freq: str, count: int) -> None:
    assert len(bar_grid(market, freq, day, day)) == count


@settings(max_examples=60, deadline=None)
@given(
    market=st.sampled_from(sorted(XCAL)),
    freq=st.sampled_from(sorted(MINUTES)),
    day=st.dates(dt.date(2015, 1, 1), dt.date(2025, 12, 31)),
)
def test_grid_matches_exchange_calendars(market: str, freq: str, day: dt.date) -> None:
    grid = bar_grid(market, freq, day, day)
    got = pd.to_datetime(grid.ts, unit="us", utc=True).tolist()
    assert got == reference_bars(market, freq, day)
    assert set(grid.trade_date.astype("datetime64[D]").tolist()) <= {day}


def test_daily_bars_sit_at_local_midnight() -> None:
    grid = bar_grid("US", "1d", dt.date(2024, 3, 8), dt.date(2024, 3, 12))
    local = pd.to_datetime(grid.ts, unit="us", utc=True).tz_convert("America/New_York")
    assert all(ts.hour == 0 and ts.minute == 0 for ts in local)  # across the DST change
    assert [str(d) for d in grid.trade_date] == ["2024-03-08", "2024-03-11", "2024-03-12"]


def test_weekly_and_monthly_take_the_first_session() -> None:
    weekly = bar_grid("SH", "1w", dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    # the week of 2024-02-05; 02-12..16 is the holiday week; then 02-19 and 02-26
    assert [str(d) for d in weekly.trade_date] == ["2024-02-05", "2024-02-19", "2024-02-26"]
    monthly = bar_grid("SH", "1M", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    assert [str(d) for d in monthly.trade_date] == ["2024-01-02", "2024-02-01", "2024-03-01"]
    assert np.all(np.diff(monthly.ts) > 0)
