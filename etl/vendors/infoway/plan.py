"""What Infoway serves (its capability table), the plan it reports, and the date arithmetic
of its kline calls: pure helpers of the adapter, no I/O.

Two limits shape every kline fetch (docs/vendors/infoway.md):

- minute and hour bars are paged back from the newest, as far as the plan's
  ``maxYearHisData`` years (older: ``Timestamp limit error``);
- day, week and month bars are only the latest 500 (``timestamp`` is ignored), so a range
  older than that is *unavailable*, and the table says so with ``depth``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np

from etl.calendars import market_spec, sessions
from etl.errors import BadInputError, SchemaError
from etl.vendors.base import Capabilities, DatasetCapability, RateLimits

__all__ = [
    "DEPTH",
    "KLINE_MARKETS",
    "MINUTE_FREQS",
    "PAGE",
    "Plan",
    "calendar_market",
    "capabilities",
    "complete_through",
    "history_start",
    "latest_count",
    "local_midnight",
    "parse_plan",
    "zone_of",
]

KLINE_MARKETS: Final = frozenset({"SH", "SZ", "HK", "US", "CC", "FX", "INFOWAY"})
# Stock markets with adjustment factors, and the ``market`` parameter each is asked under.
FACTOR_MARKETS: Final = frozenset({"SH", "SZ", "HK", "US"})
FACTOR_MARKET_PARAM: Final = {"SH": "CN", "SZ": "CN", "HK": "HK", "US": "US"}
CALENDAR_MARKETS: Final = frozenset({"SH", "SZ", "HK", "US"})
MINUTE_FREQS: Final = frozenset({"1m", "5m", "15m", "30m", "1h"})
LONG_FREQS: Final = frozenset({"1d", "1w", "1M"})
PAGE: Final = 500  # klineNum of one code: 1..500
DEPTH: Final = 500  # day bars and longer: only the latest 500
DEFAULT_RATE: Final = 1.0  # requests/s when neither ETL_INFOWAY_RATE nor /package/info says
# Our own cap on requests open at once (Infoway documents none): enough to keep a 10/s plan
# busy at ~300 ms per call from outside China, while paging one symbol stays sequential.
IN_FLIGHT: Final = 4
_DAY: Final = dt.timedelta(days=1)


@dataclass(frozen=True)
class Plan:
    """What ``/package/info`` says about our key: name, requests per second, and how many
    years of minute history (``maxYearHisData``; None if not reported)."""

    name: str
    per_second: float
    years: int | None
    expires: dt.datetime | None = None


def _int(doc: dict[str, Any], key: str, *, required: bool) -> int | None:
    value = doc.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SchemaError(f"/package/info {key} is not a whole number: {value!r}", vendor="infoway")
    return value


def parse_plan(data: Any) -> Plan:
    """``/package/info``'s ``data`` as a :class:`Plan` (a SchemaError if it is not one)."""
    if not isinstance(data, dict):
        raise SchemaError("/package/info is not an object", vendor="infoway")
    per_second = _int(data, "apiNumPerSec", required=True)
    if not per_second:
        raise SchemaError("/package/info apiNumPerSec is 0", vendor="infoway")
    expires_ms = _int(data, "expireTime", required=False)
    expires = (
        None
        if expires_ms is None
        else dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=expires_ms)
    )
    name = data.get("packageName")
    return Plan(
        name=name if isinstance(name, str) else "?",
        per_second=float(per_second),
        years=_int(data, "maxYearHisData", required=False),
        expires=expires,
    )


def calendar_market(exchange: str) -> str:
    """The calendar a suffix trades on; ``.INFOWAY`` products trade like FX (README)."""
    return "FX" if exchange == "INFOWAY" else exchange


def zone_of(exchange: str) -> ZoneInfo:
    return market_spec(calendar_market(exchange)).zone


def local_midnight(day: dt.date, zone: ZoneInfo) -> int:
    """Epoch seconds of 00:00 of ``day`` in ``zone``."""
    return int(dt.datetime.combine(day, dt.time(0), tzinfo=zone).timestamp())


def history_start(now: dt.datetime, years: int) -> dt.datetime:
    """The oldest instant of minute history a plan of ``years`` serves at ``now``: the same
    wall time ``years`` calendar years earlier (29 February → 28th). Emulator and adapter
    share this reading of ``maxYearHisData`` *(convention)*."""
    year = now.year - years
    try:
        return now.replace(year=year)
    except ValueError:
        return now.replace(year=year, day=28)


def capabilities(
    vendor: str, rate: float | None, plan: Plan | None, now: dt.datetime
) -> Capabilities:
    """The table of docs/vendors/infoway.md "Capabilities". ``rate`` is ETL_INFOWAY_RATE; ``plan``
    what /package/info said (None until read: 1 req/s, and minute history unbounded here,
    since the vendor then says ``Timestamp limit error`` itself)."""
    per_second = rate or (plan.per_second if plan else DEFAULT_RATE)
    since = None
    years = plan.years if plan else None
    if years:
        since = history_start(now, years).astimezone(dt.UTC).date() + _DAY
    minute_note = (
        f"by paging, {years} years (maxYearHisData)"
        if years
        else "by paging, as far back as the plan's maxYearHisData (/package/info)"
    )
    return Capabilities(
        vendor=vendor,
        datasets=(
            DatasetCapability(
                "klines", KLINE_MARKETS, MINUTE_FREQS, since, symbols_per_call=1,
                rows_per_call=PAGE, note=minute_note,
            ),
            DatasetCapability(
                "klines", KLINE_MARKETS, LONG_FREQS, depth={f: DEPTH for f in LONG_FREQS},
                symbols_per_call=1, rows_per_call=DEPTH, note="latest 500 bars only",
            ),
            DatasetCapability("calendar", CALENDAR_MARKETS, note="CN days for SH and SZ"),
            DatasetCapability(
                "adj_factors", FACTOR_MARKETS, symbols_per_call=1,
                note="forward factors per ex-date, since listing",
            ),
            DatasetCapability("instruments", KLINE_MARKETS, note="current list"),
        ),
        rate=RateLimits(
            per_second=per_second, per_minute=60 * per_second, in_flight=IN_FLIGHT, scope="key",
            note="per key; the plan's apiNumPerSec from /package/info unless ETL_INFOWAY_RATE",
        ),
    )  # fmt: skip


def latest_count(freq: str, first: dt.date, today: dt.date) -> int:
    """klineNum for a day-or-longer call that must reach back to ``first``: at most one bar
    per period from ``first`` to ``today``, plus the one still forming, capped at 500."""
    days = max(0, (today - first).days)
    if freq == "1w":
        periods = days // 7 + 2
    elif freq == "1M":
        periods = (today.year - first.year) * 12 + today.month - first.month + 1
    else:
        periods = days + 1
    return max(1, min(DEPTH, periods + 1))


def _period_start(freq: str, day: dt.date) -> dt.date:
    if freq == "1w":
        return day - dt.timedelta(days=day.weekday())
    if freq == "1M":
        return day.replace(day=1)
    return day


def _period_end(freq: str, day: dt.date) -> dt.date:
    if freq == "1w":
        return day + dt.timedelta(days=6 - day.weekday())
    if freq == "1M":
        nxt = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return nxt - _DAY
    return day


def complete_through(
    exchange: str, freq: str, first: dt.date, last: dt.date, now: dt.datetime
) -> dt.date:
    """The last trade date of ``[first, last]`` whose ``freq`` bars have all ended at ``now``
    (``first - 1 day`` if none): a day's bars end at its session's close, a week's or
    month's at the close of the period's last session. Later dates are not complete yet,
    so the vendor's still-forming newest bar is never stored."""
    market = calendar_market(exchange)
    zone = market_spec(market).zone
    today = now.astimezone(zone).date()
    top = min(last, today)
    if top < first:
        return first - _DAY
    try:
        found = sessions(market, first, _period_end(freq, top))
    except BadInputError:  # beyond the calendars: only what surely ended, yesterday
        return max(first - _DAY, min(last, today - _DAY))
    close = np.full(len(found.days), np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(close, found.seg_day, found.seg_end)
    now_us = int(now.timestamp() * 1_000_000)
    pending = np.flatnonzero(close > now_us)
    done = top
    if len(pending):
        day = dt.date.fromisoformat(str(found.days[pending[0]]))
        done = min(done, _period_start(freq, day) - _DAY)
    return max(done, first - _DAY)
