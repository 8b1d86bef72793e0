"""Futures contracts (listing, expiry) and the main-contract rule."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest

from etl.calendars import trading_days
from etl.synthetic import VARIETIES, contracts, klines, main_contract, universe

pytestmark = pytest.mark.filterwarnings(
    "ignore:Series.values returning an ndarray:DeprecationWarning"
)


def _contract(symbol: str) -> tuple[dt.date, dt.date]:
    match = re.match(r"^([A-Z]+)\d", symbol)
    assert match is not None
    for c in contracts(match[1]):
        if c.symbol == symbol:
            return c.list_date, c.expiry
    raise AssertionError(f"{symbol} not generated")


@pytest.mark.parametrize(
    ("symbol", "listed", "expiry"),
    [
        # Listed the session after IF2311 expired (2023-11-17); third Friday of January.
        ("IF2401.CFE", dt.date(2023, 11, 20), dt.date(2024, 1, 19)),
        # A quarter month lists ~8 months ahead: after IF2307 expired on 2023-07-21.
        ("IF2403.CFE", dt.date(2023, 7, 24), dt.date(2024, 3, 15)),
        # The third Friday, 2018-02-16, was the Spring Festival: expiry moves to 02-22.
        ("IF1802.CFE", dt.date(2017, 12, 18), dt.date(2018, 2, 22)),
        # IF launched on 2010-04-16 with IF1005 as its nearest contract.
        ("IF1005.CFE", dt.date(2010, 4, 16), dt.date(2010, 5, 21)),
        # Treasury futures: second Friday of the contract month, three quarters listed.
        ("T2403.CFE", dt.date(2023, 6, 12), dt.date(2024, 3, 8)),
        # TF launched on 2013-09-06 with TF1312 as its nearest contract.
        ("TF1312.CFE", dt.date(2013, 9, 6), dt.date(2013, 12, 13)),
        # Commodities (simplified): the 15th, listed a year ahead.
        ("RB2405.SHF", dt.date(2023, 5, 16), dt.date(2024, 5, 15)),
        ("SR405.CZC", dt.date(2023, 5, 16), dt.date(2024, 5, 15)),  # three-digit CZCE code
    ],
)
def test_contract_calendar(symbol: str, listed: dt.date, expiry: dt.date) -> None:
    assert _contract(symbol) == (listed, expiry)


def test_index_futures_list_four_contracts_at_a_time() -> None:
    # On 2024-01-22 (after IF2401 expired): 2402, 2403 (next months), 2406, 2409 (quarters).
    day = dt.date(2024, 1, 22)
    live = [c.symbol for c in contracts("IF") if c.list_date <= day <= c.expiry]
    assert live == ["IF2402.CFE", "IF2403.CFE", "IF2406.CFE", "IF2409.CFE"]


def test_treasury_futures_list_three_quarters() -> None:
    day = dt.date(2024, 4, 1)
    live = [c.symbol for c in contracts("T") if c.list_date <= day <= c.expiry]
    assert live == ["T2406.CFE", "T2409.CFE", "T2412.CFE"]


def test_symbols_are_unique_per_variety() -> None:
    for v in VARIETIES:
        symbols = [c.symbol for c in contracts(v.code)]
        assert len(set(symbols)) == len(symbols)


@pytest.mark.parametrize(
    ("variety", "day", "expected"),
    [
        ("IF", dt.date(2024, 1, 11), "IF2401.CFE"),  # 6 sessions before the 01-19 expiry
        ("IF", dt.date(2024, 1, 12), "IF2402.CFE"),  # 5 sessions before: rolled
        ("IF", dt.date(2024, 1, 19), "IF2402.CFE"),  # expiry day of IF2401
        ("IF", dt.date(2024, 1, 22), "IF2402.CFE"),
        ("T", dt.date(2024, 2, 29), "T2403.CFE"),  # T2403 expires 03-08
        ("T", dt.date(2024, 3, 1), "T2406.CFE"),  # 5 sessions before 03-08
        ("RB", dt.date(2024, 1, 10), "RB2405.SHF"),  # liquid months 1, 5, 10
        ("SR", dt.date(2024, 1, 10), "SR405.CZC"),
        ("IM", dt.date(2022, 7, 22), "IM2208.CFE"),  # IM's first day
    ],
)
def test_main_contract_rolls_before_expiry(variety: str, day: dt.date, expected: str) -> None:
    assert main_contract(variety, day) == expected


def test_main_contract_is_listed_and_rolls_before_it_expires() -> None:
    for v in VARIETIES:
        start = max(v.start, dt.date(2015, 1, 1))
        for day in trading_days("SH", start, dt.date(2026, 6, 30))[::7]:
            d = dt.date.fromisoformat(str(day))
            symbol = main_contract(v.code, d)
            listed, expiry = _contract(symbol)
            assert listed <= d < expiry, (v.code, d, symbol)


def test_main_contract_has_the_largest_open_interest() -> None:
    now = dt.datetime(2024, 7, 1, tzinfo=dt.UTC)
    start, end = dt.date(2024, 1, 2), dt.date(2024, 6, 28)
    for code in ("IF", "T", "RB"):
        live = [c.symbol for c in contracts(code) if c.list_date <= end and c.expiry >= start]
        by_day: dict[str, dict[str, float]] = {}
        for symbol in live:
            bars = klines(symbol, "1d", start, end, now)
            assert bars.open_interest is not None and bars.settle is not None
            assert (bars.open_interest > 0).all()
            for day, oi in zip(bars.trade_date, bars.open_interest, strict=True):
                by_day.setdefault(str(day), {})[symbol] = float(oi)
        for day, interest in by_day.items():
            top = max(interest, key=lambda s: interest[s])
            assert top == main_contract(code, dt.date.fromisoformat(day)), (code, day)


def test_futures_outside_their_life_have_no_bars() -> None:
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    bars = klines("IF2401.CFE", "1d", dt.date(2023, 1, 1), dt.date(2024, 12, 31), now)
    days = bars.trade_date
    assert str(days[0]) == "2023-11-20" and str(days[-1]) == "2024-01-19"
    assert universe(0).get("IF2401.CFE") is not None
    assert np.all(np.diff(bars.ts) > 0)
