"""The synthetic universe: sizes, code shapes, listing life and visibility at ``now``."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

import pytest

from etl.calendars import trading_days
from etl.names import parse_symbol
from etl.synthetic import instrument_for_any, instruments, universe

# exchange_calendars (on pandas 3) warns from inside pandas while it builds a calendar; the
# project's filter only ignores warnings raised from exchange_calendars' own modules.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Series.values returning an ndarray:DeprecationWarning"
)

NOW = dt.datetime(2024, 6, 28, 8, 0, tzinfo=dt.UTC)

# market -> pattern every instrument code of the market matches (docs/contract.md "Names").
CODE_SHAPES = {
    "SH": r"^(60[013]\d{3}|688\d{3}|000\d{3}|51\d{4}|588\d{3})\.SH$",  # shares, indices, ETFs
    "SZ": r"^(000\d{3}|002\d{3}|300\d{3}|399\d{3}|159\d{3})\.SZ$",
    "BJ": r"^(430047|8[37]\d{4})\.BJ$",
    "HK": r"^\d{5}\.HK$",  # five digits, zero-padded
    "US": r"^[A-Z_]+\.US$",
    "IN": r"^[A-Z_]+\.IN$",
    "JP": r"^\d{4}\.JP$",
    "CFE": r"^(IF|IH|IC|IM|TS|TF|T|TL)\d{4}\.CFE$",
    "SHF": r"^(RB|CU)\d{4}\.SHF$",
    "DCE": r"^M\d{4}\.DCE$",
    "CZC": r"^SR\d{3}\.CZC$",  # one year digit
    "INE": r"^SC\d{4}\.INE$",
    "CC": r"^(BTC|ETH)USDT\.CC$",
    "FX": r"^[A-Z]{6}\.FX$",
}


def test_every_symbol_is_canonical_and_has_its_market_shape() -> None:
    for inst in universe(0).all:
        assert str(parse_symbol(inst.symbol)) == inst.symbol
        assert re.match(CODE_SHAPES[inst.market], inst.symbol), inst.symbol


def test_sizes_at_a_fixed_now() -> None:
    listed = instruments(NOW)
    stocks = Counter(i.market for i in listed if i.type == "stock")
    live_sh_sz = [
        i
        for i in listed
        if i.type == "stock" and i.market in ("SH", "SZ") and i.delist_date is None
    ]
    assert len(live_sh_sz) >= 400  # a demo can pick ~300
    assert 3 <= stocks["BJ"] <= 10
    assert 28 <= stocks["HK"] <= 40
    assert 28 <= stocks["US"] <= 40
    assert 13 <= stocks["IN"] <= 20
    assert 13 <= stocks["JP"] <= 20


@pytest.mark.parametrize(
    ("symbol", "kind", "currency"),
    [
        ("600000.SH", "stock", "CNY"),  # a named SSE share
        ("000001.SZ", "stock", "CNY"),  # 平安银行, not the index 000001.SH
        ("000001.SH", "index", "CNY"),  # SSE Composite
        ("000300.SH", "index", "CNY"),  # CSI 300
        ("399001.SZ", "index", "CNY"),  # SZSE Component
        ("510300.SH", "etf", "CNY"),
        ("159919.SZ", "etf", "CNY"),
        ("430047.BJ", "stock", "CNY"),
        ("00700.HK", "stock", "HKD"),
        ("00005.HK", "stock", "HKD"),
        ("AAPL.US", "stock", "USD"),
        ("BRK_B.US", "stock", "USD"),  # BRK.B in canonical form
        ("RELIANCE.IN", "stock", "INR"),
        ("M_M.IN", "stock", "INR"),  # M&M in canonical form
        ("7203.JP", "stock", "JPY"),
        ("IF2401.CFE", "future", "CNY"),
        ("SR405.CZC", "future", "CNY"),
        ("BTCUSDT.CC", "crypto", "USDT"),
        ("USDJPY.FX", "forex", "JPY"),  # quoted in the second currency
    ],
)
def test_named_instruments_exist(symbol: str, kind: str, currency: str) -> None:
    inst = universe(0).get(symbol)
    assert inst is not None
    assert (inst.type, inst.currency) == (kind, currency)
    assert inst.name


def test_some_stocks_are_delisted_and_some_list_recently() -> None:
    stocks = [i for i in universe(0).all if i.type == "stock" and i.market in ("SH", "SZ")]
    delisted = [i for i in stocks if i.delist_date is not None]
    assert 0.015 <= len(delisted) / len(stocks) <= 0.05
    for inst in delisted:
        assert inst.list_date is not None and inst.delist_date is not None
        assert inst.list_date < inst.delist_date <= dt.date(2025, 6, 30)
    recent = [i for i in stocks if i.list_date and i.list_date >= dt.date(2024, 12, 1)]
    assert 5 <= len(recent) <= 20


def test_now_decides_what_is_visible() -> None:
    u = universe(0)
    late = next(i for i in u.all if i.type == "stock" and i.list_date and i.list_date.year == 2026)
    assert late.list_date is not None
    before = dt.datetime.combine(late.list_date, dt.time(0), tzinfo=dt.UTC) - dt.timedelta(days=2)
    after = dt.datetime.combine(late.list_date, dt.time(12), tzinfo=dt.UTC)
    assert u.visible(late.symbol, before) is None
    assert u.visible(late.symbol, after) is not None
    gone = next(i for i in u.all if i.type == "stock" and i.delist_date is not None)
    assert gone.delist_date is not None
    earlier = dt.datetime.combine(gone.delist_date, dt.time(0), tzinfo=dt.UTC) - dt.timedelta(
        days=30
    )
    seen = u.visible(gone.symbol, earlier)
    assert seen is not None and seen.delist_date is None  # not announced yet
    # A future contract's expiry is known from its listing on.
    contract = u.visible("IF2412.CFE", NOW)
    assert contract is not None and contract.delist_date == dt.date(2024, 12, 20)


def test_listing_days_are_sessions() -> None:
    days = {str(d) for d in trading_days("SH", dt.date(2005, 1, 4), dt.date(2026, 12, 31))}
    for inst in universe(0).all:
        if inst.market in ("SH", "SZ") and inst.list_date and inst.list_date.year >= 2005:
            assert str(inst.list_date) in days, inst
        if inst.market in ("SH", "SZ") and inst.delist_date:
            assert str(inst.delist_date) in days, inst


def test_the_universe_depends_on_the_seed_only() -> None:
    a, b = universe(0), universe(1)
    assert [i.symbol for i in a.all] == [i.symbol for i in universe(0).all]
    generated_a = {i.symbol for i in a.all if i.type == "stock"}
    generated_b = {i.symbol for i in b.all if i.type == "stock"}
    assert generated_a != generated_b
    assert "600519.SH" in generated_a & generated_b  # named stocks stay


@pytest.mark.parametrize(
    ("symbol", "kind", "market"),
    [
        ("XAUUSD.INFOWAY", "other", "INFOWAY"),  # vendor-only product
        ("HX_HSI.MDAPI", "other", "MDAPI"),
        ("999999.SH", "stock", "SH"),  # valid code outside the universe
        ("DOGEUSDT.CC", "crypto", "CC"),
        ("AUDUSD.FX", "forex", "FX"),
    ],
)
def test_instrument_for_any(symbol: str, kind: str, market: str) -> None:
    inst = instrument_for_any(symbol)
    assert (inst.type, inst.market, inst.list_date) == (kind, market, None)
