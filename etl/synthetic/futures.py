"""Futures varieties, their contracts (listing and expiry) and the main-contract rule.

Contracts follow each exchange's listing pattern closely enough for detect-missing and the
main-contract history to meet realistic shapes (a contract that lists months ahead, expires
on a fixed Friday, rolls). Nothing here depends on the seed: contract calendars are rules.
All dates are Asia/Shanghai trade dates, on the SSE calendar (which CFFEX and the commodity
exchanges share).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from etl.calendars import trading_days
from etl.errors import BadInputError

__all__ = [
    "VARIETIES",
    "Contract",
    "Variety",
    "contracts",
    "main_contract",
    "main_months",
    "variety",
]

Days = npt.NDArray[np.datetime64]
I64 = npt.NDArray[np.int64]
Kind = Literal["index", "treasury", "commodity"]

_ALL_MONTHS: Final = tuple(range(1, 13))
_QUARTERS: Final = (3, 6, 9, 12)
# How far ahead contracts are generated: the SSE calendar of exchange_calendars ends with the
# year after its release; contracts listing later than this do not exist yet anyway.
_HORIZON: Final = dt.date(2027, 12, 31)
_CALENDAR_FIRST: Final = dt.date(2005, 1, 1)  # exchange_calendars' first year (calendars)
# A contract that would expire within this many days of the product's launch is not listed
# at the launch: IF started on 2010-04-16 with IF1005 (not IF1004), IM on 2022-07-22 with
# IM2208; T on 2015-03-20 with T1509 (not T1506), TF on 2013-09-06 with TF1312.
_LAUNCH_MARGIN: Final[dict[str, dt.timedelta]] = {
    "index": dt.timedelta(days=7),
    "treasury": dt.timedelta(days=90),
    "commodity": dt.timedelta(days=30),
}


@dataclass(frozen=True)
class Variety:
    """One futures product and the facts its contracts and prices need."""

    code: str
    exchange: str
    name: str
    start: dt.date  # first trading day of the product
    kind: Kind
    months: tuple[int, ...]  # contract months that exist
    main_months: tuple[int, ...]  # contract months that become the main contract
    roll_sessions: int  # the main rolls this many sessions before the expiry
    level: float  # typical price
    decimals: int
    multiplier: float  # contract size: amount = volume x price x multiplier
    open_interest: float  # typical open interest of the main contract
    first_month: dt.date | None = None  # no contract months before this (see CZC)

    @property
    def symbol_key(self) -> str:
        """Name of the variety's latent price path (all its contracts follow it)."""
        return f"{self.code}.{self.exchange}"


# CZCE codes carry one year digit (SR405), so a code repeats every ten years: only the ten
# years of contract months 2019-2028 are generated, which keeps symbols unique. SR therefore
# starts, here, on the day SR901 listed (2018-01-16), not in 2006.
_CZC_FIRST: Final = dt.date(2019, 1, 1)

VARIETIES: Final[tuple[Variety, ...]] = (
    # CFFEX equity index futures: current month, next month, next two quarter months;
    # the last trading day is the third Friday of the contract month.
    Variety("IF", "CFE", "沪深300股指期货", dt.date(2010, 4, 16), "index", _ALL_MONTHS,
            _ALL_MONTHS, 5, 3900.0, 1, 300.0, 150_000.0),
    Variety("IH", "CFE", "上证50股指期货", dt.date(2015, 4, 16), "index", _ALL_MONTHS,
            _ALL_MONTHS, 5, 2600.0, 1, 300.0, 60_000.0),
    Variety("IC", "CFE", "中证500股指期货", dt.date(2015, 4, 16), "index", _ALL_MONTHS,
            _ALL_MONTHS, 5, 5800.0, 1, 200.0, 120_000.0),
    Variety("IM", "CFE", "中证1000股指期货", dt.date(2022, 7, 22), "index", _ALL_MONTHS,
            _ALL_MONTHS, 5, 6200.0, 1, 200.0, 100_000.0),
    # CFFEX treasury futures: the three nearest quarter months; last trading day the second
    # Friday of the contract month; trade until 15:15 (CFE_TREASURY_SEGMENTS).
    Variety("TS", "CFE", "2年期国债期货", dt.date(2018, 8, 17), "treasury", _QUARTERS,
            _QUARTERS, 5, 101.0, 3, 20_000.0, 50_000.0),
    Variety("TF", "CFE", "5年期国债期货", dt.date(2013, 9, 6), "treasury", _QUARTERS,
            _QUARTERS, 5, 101.5, 3, 10_000.0, 100_000.0),
    Variety("T", "CFE", "10年期国债期货", dt.date(2015, 3, 20), "treasury", _QUARTERS,
            _QUARTERS, 5, 100.0, 3, 10_000.0, 150_000.0),
    Variety("TL", "CFE", "30年期国债期货", dt.date(2023, 4, 21), "treasury", _QUARTERS,
            _QUARTERS, 5, 100.0, 3, 10_000.0, 40_000.0),
    # Commodities, simplified: every listed month trades for a year, the last trading day is
    # the 15th of the contract month (next session if closed), and the main contract moves
    # among the liquid months about a month before the expiry.
    Variety("RB", "SHF", "螺纹钢", dt.date(2009, 3, 27), "commodity", _ALL_MONTHS,
            (1, 5, 10), 20, 3800.0, 0, 10.0, 1_500_000.0),
    Variety("CU", "SHF", "铜", dt.date(2005, 1, 4), "commodity", _ALL_MONTHS,
            _ALL_MONTHS, 20, 62_000.0, 0, 5.0, 150_000.0),
    Variety("M", "DCE", "豆粕", dt.date(2005, 1, 4), "commodity", (1, 3, 5, 7, 8, 9, 11, 12),
            (1, 5, 9), 20, 3400.0, 0, 10.0, 1_200_000.0),
    Variety("SR", "CZC", "白糖", dt.date(2018, 1, 16), "commodity", (1, 3, 5, 7, 9, 11),
            (1, 5, 9), 20, 6000.0, 0, 10.0, 500_000.0, _CZC_FIRST),
    Variety("SC", "INE", "原油", dt.date(2018, 3, 26), "commodity", _ALL_MONTHS,
            _ALL_MONTHS, 20, 550.0, 1, 1000.0, 40_000.0),
)  # fmt: skip
_BY_CODE: Final = {v.code: v for v in VARIETIES}


@dataclass(frozen=True)
class Contract:
    """One futures contract: ``month`` is ``year * 12 + month - 1``."""

    symbol: str
    variety: str
    exchange: str
    month: int
    list_date: dt.date
    expiry: dt.date  # last trading day

    @property
    def code(self) -> str:
        return self.symbol.split(".", 1)[0]


def variety(code: str) -> Variety:
    try:
        return _BY_CODE[code]
    except KeyError:
        known = " ".join(_BY_CODE)
        raise BadInputError(f"unknown futures variety {code!r}: use one of {known}") from None


@cache
def _cn_days() -> Days:
    """SSE sessions, with plain weekdays before and after what the calendar knows."""
    known = trading_days("SH", _CALENDAR_FIRST, _HORIZON)
    head = np.arange(np.datetime64("1990-01-01", "D"), np.datetime64(_CALENDAR_FIRST, "D"))
    tail = np.arange(known[-1] + 1, np.datetime64(_HORIZON, "D") + 400)
    days: Days = np.concatenate([_weekdays(head), known, _weekdays(tail)])
    return days


def _weekdays(days: Days) -> Days:
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    out: Days = days[weekday < 5]
    return out


def _session_on_or_after(day: dt.date) -> dt.date:
    days = _cn_days()
    i = int(np.searchsorted(days, np.datetime64(day, "D")))
    return _as_date(days[min(i, len(days) - 1)])


def _next_session(day: dt.date) -> dt.date:
    return _session_on_or_after(day + dt.timedelta(days=1))


def _as_date(value: np.datetime64) -> dt.date:
    return dt.date.fromordinal(int(value.astype(np.int64)) + _EPOCH_ORDINAL)


_EPOCH_ORDINAL: Final = dt.date(1970, 1, 1).toordinal()


def _nth_friday(year: int, month: int, n: int) -> dt.date:
    first = dt.date(year, month, 1)
    offset = (4 - first.weekday()) % 7  # Friday is weekday 4
    return first + dt.timedelta(days=offset + 7 * (n - 1))


def _month_date(month: int) -> tuple[int, int]:
    return month // 12, month % 12 + 1


def _expiry(v: Variety, month: int) -> dt.date:
    year, mon = _month_date(month)
    if v.kind == "index":
        nominal = _nth_friday(year, mon, 3)
    elif v.kind == "treasury":
        nominal = _nth_friday(year, mon, 2)
    else:
        nominal = dt.date(year, mon, 15)
    return _session_on_or_after(nominal)  # a holiday moves the last day to the next session


def _listed_after(v: Variety, month: int) -> set[int]:
    """Contract months trading right after the contract of ``month`` expired."""
    if v.kind == "index":
        later = [m for m in range(month + 3, month + 12) if m % 12 + 1 in _QUARTERS]
        return {month + 1, month + 2, *later[:2]}
    if v.kind == "treasury":
        return {month + 3, month + 6, month + 9}
    return {month + 12}


def _list_date(v: Variety, month: int) -> dt.date:
    for earlier in range(month - 12, month):
        if month in _listed_after(v, earlier):
            return max(_next_session(_expiry(v, earlier)), v.start)
    raise AssertionError(f"no listing rule for {v.code} month {month}")  # pragma: no cover


def _code(v: Variety, month: int) -> str:
    year, mon = _month_date(month)
    digits = f"{year % 10}{mon:02d}" if v.exchange == "CZC" else f"{year % 100:02d}{mon:02d}"
    return f"{v.code}{digits}.{v.exchange}"


@cache
def contracts(code: str) -> tuple[Contract, ...]:
    """Every contract of a variety from its start to the horizon, in expiry order."""
    v = variety(code)
    first = v.first_month or v.start
    month = first.year * 12 + first.month - 1
    last = _HORIZON.year * 12 + _HORIZON.month - 1 + 12
    found: list[Contract] = []
    for m in range(month, last + 1):
        if m % 12 + 1 not in v.months:
            continue
        expiry = _expiry(v, m)
        if expiry <= v.start + _LAUNCH_MARGIN[v.kind]:
            continue
        listed = _list_date(v, m)
        if listed > _HORIZON:
            continue  # quarter months list earlier than the months before them: go on
        found.append(Contract(_code(v, m), v.code, v.exchange, m, listed, expiry))
    assert len({c.symbol for c in found}) == len(found), f"{code}: contract codes repeat"
    return tuple(found)


@cache
def _rolls(code: str) -> tuple[tuple[Contract, ...], Days]:
    """Main-month contracts and, for each, the first day it is no longer the main one."""
    v = variety(code)
    mains = tuple(c for c in contracts(code) if c.month % 12 + 1 in v.main_months)
    days = _cn_days()
    expiries = np.array([c.expiry for c in mains], dtype="datetime64[D]")
    idx = np.searchsorted(days, expiries) - v.roll_sessions
    rolls: Days = days[np.maximum(idx, 0)]
    return mains, rolls


def main_months(code: str, dates: Sequence[dt.date] | Days) -> I64:
    """The main contract's ``month`` for each trade date (vectorised :func:`main_contract`).

    Rule: the nearest main-month contract is the main one until ``roll_sessions`` sessions
    before its expiry; from that session on, the next one is. Vendors define the main
    contract as the one with the largest open interest, and the synthetic open interest is
    built so that this rule gives exactly that contract.
    """
    mains, rolls = _rolls(code)
    arr = np.asarray(dates, dtype="datetime64[D]")
    pos = np.searchsorted(rolls, arr, side="right")
    pos = np.minimum(pos, len(mains) - 1)
    months = np.array([c.month for c in mains], dtype=np.int64)
    out: I64 = months[pos]
    return out


def main_contract(code: str, trade_date: dt.date) -> str:
    """The main contract of variety ``code`` (``"IF"``) on ``trade_date``, e.g. IF2401.CFE."""
    v = variety(code)
    if trade_date < v.start:
        raise BadInputError(
            f"{code} started trading on {v.start}; no main contract on {trade_date}"
        )
    month = int(main_months(code, [trade_date])[0])
    return _code(v, month)
