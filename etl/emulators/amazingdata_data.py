"""AmazingData's answers as data: what each endpoint's ``data`` holds, from etl.synthetic.

Pure functions of (now, seed, parameters), kept apart from the HTTP side in amazingdata.py.
Wire types follow docs/vendors/amazingdata.md to the letter: ``trade_date`` strings (``YYYY-MM-DD``,
or ``YYYY-MM-DD HH:MM:SS`` Asia/Shanghai bar start for minute periods), ``volume`` and
``open_interest`` ints, ``settle`` null on minute bars, statement identity columns as strings
with ``YYYYMMDD`` dates and upper-case item names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final, Literal

from etl.calendars import trading_days
from etl.emulators.payload import Bar, bars_of
from etl.errors import BadInputError
from etl.names import parse_symbol
from etl.synthetic import (
    STATEMENT_ITEMS,
    VARIETIES,
    Instrument,
    instruments,
    klines,
    local_today,
    main_contract,
    statements,
    universe,
)
from etl.synthetic.actions import actions
from etl.vendors.amazingdata import api

__all__ = [
    "FINANCE_DATASETS",
    "PERIODS",
    "SECURITY_TYPES",
    "Board",
    "adj_factor_rows",
    "calendar_days",
    "code_info",
    "codes_of",
    "encode_bar",
    "finance_rows",
    "future_varieties",
    "kline_bars",
    "known",
    "main_contracts",
]

Board = Literal["stock", "future", "finance"]

PERIODS: Final = api.PERIODS
SECURITY_TYPES: Final = tuple(api.SECURITY_TYPES)
CALENDAR_MARKETS: Final = api.CALENDAR_MARKETS
# URL name -> etl dataset.
FINANCE_DATASETS: Final = {
    path.rsplit("/", 1)[1]: dataset for dataset, path in api.FINANCE_PATHS.items()
}
# Capabilities (docs/vendors/amazingdata.md): A shares from 2013, CFFEX from its first day
# (2010-04).
STOCK_SINCE: Final = dt.date(2013, 1, 1)
CFE_SINCE: Final = dt.date(2010, 4, 16)
_A_MARKETS: Final = ("SH", "SZ", "BJ")
_MARKET_ORDER: Final = {"SH": 0, "SZ": 1, "BJ": 2, "CFE": 3}


def _today(now: dt.datetime) -> dt.date:
    return local_today("SH", now)


def _in_scope(inst: Instrument, board: Board) -> bool:
    if board == "future":
        return inst.type == "future" and inst.market == "CFE"
    return inst.market in _A_MARKETS and inst.type in ("stock", "etf", "index")


def known(code: str, board: Board, now: dt.datetime, seed: int) -> Instrument | None:
    """The instrument behind ``code`` if the platform knows it at ``now`` on that board."""
    try:
        parse_symbol(code)
    except BadInputError:
        return None
    inst = universe(seed).visible(code, now)
    return inst if inst is not None and _in_scope(inst, board) else None


def codes_of(security_type: str, now: dt.datetime, seed: int) -> list[str]:
    """Today's list of one security type: listed at ``now`` and not delisted."""
    today = _today(now)
    kind = {
        "EXTRA_STOCK_A": "stock",
        "EXTRA_FUTURE": "future",
        "EXTRA_ETF": "etf",
        "EXTRA_INDEX_A": "index",
    }[security_type]
    board: Board = "future" if kind == "future" else "stock"
    found = [
        i
        for i in instruments(now, seed=seed)
        if i.type == kind and _in_scope(i, board) and i.listed_on(today)
    ]
    found.sort(key=lambda i: (_MARKET_ORDER[i.market], i.symbol))
    return [i.symbol for i in found]


def calendar_days(market: str, start: dt.date, end: dt.date, now: dt.datetime) -> list[str]:
    """Trading days in ``[start, end]``, clipped to what the platform has: 2013 (CFE 2010)
    to the end of the current year."""
    first = max(start, CFE_SINCE if market == "CFE" else STOCK_SINCE)
    last = min(end, dt.date(_today(now).year, 12, 31))
    if first > last:
        return []
    try:
        days = trading_days(market, first, last)
    except BadInputError:  # beyond the calendars' horizon: no sessions are known there
        return []
    return [str(d).replace("-", "") for d in days]


def code_info(code: str, now: dt.datetime, seed: int) -> dict[str, Any] | None:
    inst = known(code, "stock", now, seed) or known(code, "future", now, seed)
    if inst is None:
        return None
    return api.encode_info(
        inst.symbol,
        name=inst.name,
        market=inst.market,
        type=inst.type,
        list_date=inst.list_date,
        delist_date=inst.delist_date,
    )


def kline_bars(
    inst: Instrument, period: str, start: dt.date, end: dt.date, now: dt.datetime, seed: int
) -> list[Bar]:
    """Completed bars of ``inst`` with trade dates in ``[start, end]``, oldest first."""
    since = CFE_SINCE if inst.market == "CFE" else STOCK_SINCE
    first = max(start, since)
    if first > end:
        return []
    try:
        return bars_of(klines(inst.symbol, PERIODS[period], first, end, now, seed=seed))
    except BadInputError:  # a range beyond the calendars: nothing has traded there yet
        return []


def encode_bar(bar: Bar, period: str, *, future: bool) -> dict[str, Any]:
    """One bar in AmazingData's wire form (stocks: 7 fields; futures: 9)."""
    return api.encode_bar(
        ts=bar.ts,
        trade_date=bar.trade_date,
        open=bar.open,
        high=bar.high,
        low=bar.low,
        close=bar.close,
        volume=bar.volume,
        amount=bar.amount,
        settle=bar.settle,
        open_interest=bar.open_interest,
        period=period,
        future=future,
    )


def finance_rows(
    dataset: str,
    inst: Instrument,
    start: dt.date | None,
    end: dt.date | None,
    now: dt.datetime,
    seed: int,
) -> list[dict[str, Any]]:
    """Every version announced by ``now`` for reporting periods in ``[start, end]``,
    ordered by ``REPORTING_PERIOD`` then ``ACTUAL_ANN_DATE``."""
    items = STATEMENT_ITEMS[dataset]
    return [
        api.encode_statement(str(r["symbol"]), r, items)
        for r in statements(dataset, inst.symbol, now, seed=seed, start=start, end=end)
    ]


def _cfe_varieties(now: dt.datetime) -> Sequence[Any]:
    today = _today(now)
    return [v for v in VARIETIES if v.exchange == "CFE" and v.start <= today]


def future_varieties(now: dt.datetime) -> list[dict[str, str]]:
    """CFFEX varieties trading at ``now``."""
    return [{"variety": v.code, "name": v.name, "exchange": "CFE"} for v in _cfe_varieties(now)]


def main_contracts(now: dt.datetime) -> dict[str, str]:
    """Today's main contract of each CFFEX variety (the platform keeps no history)."""
    today = _today(now)
    return {v.code: main_contract(v.code, today) for v in _cfe_varieties(now)}


def adj_factor_rows(
    inst: Instrument, start: dt.date, end: dt.date, now: dt.datetime, seed: int
) -> list[dict[str, Any]]:
    """The ex-dates of ``inst`` in ``[start, end]`` that have happened by ``now``, each with the
    cumulative backward factor in force from that day on."""
    acts = actions(inst, seed)
    last = min(end, _today(now))
    return [
        api.encode_factor(acts.ex_dates[i], acts.backward[i]) for i in acts.between(start, last)
    ]
