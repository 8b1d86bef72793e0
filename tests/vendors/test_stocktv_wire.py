"""StockTV's wire mappings and request planning, on the payloads of docs/vendors/stocktv.md.

StockTV's own document (its Python client) holds no recorded answer; the real payloads are
the ones docs/vendors/stocktv.md quotes from it: the bar, the 1d ``time`` examples, the
envelope and its errors. Expected rows are literal: timestamps to the second, prices to the
digit.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest

from etl.config import VendorSettings
from etl.errors import (
    AuthError,
    PermanentVendorError,
    RateLimited,
    SchemaError,
    TransientVendorError,
)
from etl.vendors.base import VendorContext
from etl.vendors.stocktv import StockTVAdapter
from etl.vendors.stocktv.plan import complete_through, day_bounds_ms, missing_before
from etl.vendors.stocktv.wire import (
    COUNTRIES,
    UnknownPid,
    bars_table,
    canonical,
    index_row,
    parse_envelope,
    stock_row,
)

D = dt.date
UTC = dt.UTC


def T(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=UTC)  # Friday: 17:30 in Mumbai, 08:00 in New York
# docs/vendors/stocktv.md "Endpoints", the bar, verbatim.
SPEC_BAR = {"time": 1719818400000, "open": 239.42, "high": 239.6, "low": 239.42,
            "close": 239.6, "volume": 1200, "vo": 287304.0}  # fmt: skip


def response(doc: Any, status: int = 200) -> httpx.Response:
    body = doc if isinstance(doc, bytes) else json.dumps(doc, ensure_ascii=False).encode()
    return httpx.Response(status, content=body, request=httpx.Request("GET", "http://x/"))


def row(table: Any, i: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = table.to_pylist()[i]
    return out


def test_spec_bar_parses_to_the_canonical_row() -> None:
    table = bars_table([SPEC_BAR], "RELIANCE.IN", "5m", "Asia/Kolkata", "r1")
    # 1719818400000 ms = 2024-07-01 07:20:00Z = 12:50 IST, a 5m bar of that NSE session.
    assert row(table) == {
        "symbol": "RELIANCE.IN", "freq": "5m",
        "ts": dt.datetime(2024, 7, 1, 7, 20, 0, tzinfo=UTC), "trade_date": D(2024, 7, 1),
        "open": 239.42, "high": 239.6, "low": 239.42, "close": 239.6,
        "volume": 1200.0, "amount": 287304.0, "settle": None, "open_interest": None,
        "vendor": "stocktv", "request_id": "r1", "source": "rest",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("time_ms", "symbol", "zone", "ts", "day"),
    [
        # docs/vendors/stocktv.md "Time": NSE 1d bar of 2024-01-02 → 00:00 IST = 2024-01-01 18:30Z.
        (1704133800000, "RELIANCE.IN", "Asia/Kolkata", T(2024, 1, 1, 18, 30), D(2024, 1, 2)),
        # the US 1d bar of 2024-01-02 → 00:00 EST = 05:00Z.
        (1704171600000, "AAPL.US", "America/New_York", T(2024, 1, 2, 5, 0), D(2024, 1, 2)),
        # a Tokyo 1d bar of 2024-01-04 (00:00 JST = 2024-01-03 15:00Z), same convention.
        (1704294000000, "7203.JP", "Asia/Tokyo", T(2024, 1, 3, 15, 0), D(2024, 1, 4)),
    ],
)  # fmt: skip
def test_daily_time_is_local_midnight_of_the_trade_date(
    time_ms: int, symbol: str, zone: str, ts: dt.datetime, day: D
) -> None:
    bar = {**SPEC_BAR, "time": time_ms}
    got = row(bars_table([bar], symbol, "1d", zone, "r"))
    assert (got["ts"], got["trade_date"]) == (ts, day)


def test_zero_or_absent_turnover_is_null_and_extra_fields_are_ignored() -> None:
    bars = [
        {**SPEC_BAR, "vo": 0},  # vo 0 = not provided → amount null (convention)
        {k: v for k, v in SPEC_BAR.items() if k != "vo"} | {"time": 1719818700000},  # no vo
        {**SPEC_BAR, "time": 1719819000000, "amount": 0},  # schema_drift:extra's field
    ]
    got = bars_table(bars, "RELIANCE.IN", "5m", "Asia/Kolkata", "r").to_pylist()
    assert [r["amount"] for r in got] == [None, None, 287304.0]
    assert [r["ts"].minute for r in got] == [20, 25, 30]


def test_nan_and_negative_prices_pass_through_for_validation() -> None:
    raw = b'[{"time":1719818400000,"open":239.42,"high":239.6,"low":-1,"close":NaN,' \
          b'"volume":1200,"vo":287304.0}]'  # fmt: skip
    got = row(bars_table(json.loads(raw), "RELIANCE.IN", "5m", "Asia/Kolkata", "r"))
    assert got["low"] == -1.0 and got["close"] != got["close"]  # NaN kept: validate rejects


@pytest.mark.parametrize(
    "bad",
    [
        {k: v for k, v in SPEC_BAR.items() if k != "time"} | {"timestamp": 1719818400000},
        {**SPEC_BAR, "close": "239.6"},
        {**SPEC_BAR, "time": "1719818400000"},
        {k: v for k, v in SPEC_BAR.items() if k != "volume"},
    ],
    ids=["time-renamed", "price-as-string", "time-as-string", "no-volume"],
)
def test_a_changed_bar_shape_is_a_schema_error(bad: dict[str, Any]) -> None:
    with pytest.raises(SchemaError):
        bars_table([SPEC_BAR, bad], "RELIANCE.IN", "5m", "Asia/Kolkata", "r")


@pytest.mark.parametrize(
    ("vendor", "suffix", "expected"),
    [
        ("M&M", "IN", "M_M.IN"),  # docs/vendors/stocktv.md's own example
        ("BRK.B", "US", "BRK_B.US"),  # docs/vendors/stocktv.md's own example
        ("RELIANCE", "IN", "RELIANCE.IN"),
        ("7203", "JP", "7203.JP"),
        ("bajaj-auto", "IN", "BAJAJ-AUTO.IN"),  # lower case is upper-cased, "-" kept
        ("NSEI", "STOCKTV", "NSEI.STOCKTV"),  # an index
        (" ", "IN", None),  # nothing left
        ("&", "IN", None),  # only replaced characters
        ("X" * 41, "US", None),  # longer than a canonical code
    ],
)
def test_canonical_symbols(vendor: str, suffix: str, expected: str | None) -> None:
    assert canonical(vendor, suffix) == expected


def test_stock_and_index_records_become_instrument_rows() -> None:
    record = {"id": 7310, "symbol": "M&M", "name": "Mahindra & Mahindra", "exchangeId": 46,
              "countryId": 14, "last": 2884.5, "chg": 12.3, "chgPct": 0.43, "high": 2890.0,
              "low": 2860.1, "volume": 1234567, "time": 1719571200, "flag": "IN"}  # fmt: skip
    assert stock_row(record, COUNTRIES["IN"]) == {
        "symbol": "M_M.IN", "market": "IN", "name": "Mahindra & Mahindra", "type": "stock",
        "currency": "INR", "list_date": None, "delist_date": None, "vendor_code": "M&M",
        "vendor_id": "7310", "vendor_extra": '{"countryId": 14, "exchangeId": 46}',
        "vendor": "stocktv",
    }  # fmt: skip
    assert stock_row({**record, "exchangeId": 74}, COUNTRIES["IN"]) is None  # BSE: not used
    index = {"id": 17940, "name": "Nifty 50", "symbol": "NSEI", "last": 23500.1, "chg": 10,
             "chgPct": 0.04, "isOpen": False}  # fmt: skip
    got = index_row(index, COUNTRIES["IN"])
    assert got is not None
    assert (got["symbol"], got["market"], got["type"], got["vendor_id"]) == (
        "NSEI.STOCKTV", "STOCKTV", "index", "17940",
    )  # fmt: skip
    with pytest.raises(SchemaError):
        stock_row({**record, "id": "7310"}, COUNTRIES["IN"])


def test_envelope_codes_map_to_failure_classes() -> None:
    ok = {"code": 200, "message": "操作成功", "data": [SPEC_BAR]}
    assert parse_envelope(response(ok)) == [SPEC_BAR]
    cases: list[tuple[Any, type[Exception]]] = [
        ({"code": 400, "message": "参数错误", "data": None}, PermanentVendorError),
        ({"code": 401, "message": "key无效", "data": None}, AuthError),
        ({"code": 404, "message": "数据不存在", "data": None}, UnknownPid),
        ({"code": 429, "message": "请求过于频繁", "data": None}, RateLimited),
        ({"code": "200", "data": []}, TransientVendorError),  # not the envelope
        ([SPEC_BAR], TransientVendorError),  # a bare array: not the envelope
    ]
    for doc, cls in cases:
        with pytest.raises(cls) as info:
            parse_envelope(response(doc))
        assert type(info.value) is cls, doc
    with pytest.raises(AuthError, match="ETL_STOCKTV_API_KEY"):
        parse_envelope(response(cases[1][0]))
    with pytest.raises(ValueError):  # not JSON at all: the HTTP layer makes it transient
        parse_envelope(response(b"<html>502 Bad Gateway</html>"))


def test_capabilities_follow_the_spec() -> None:
    adapter = StockTVAdapter(VendorContext(VendorSettings("stocktv"), now=lambda: NOW))
    caps = adapter.capabilities()
    for market in ("IN", "US", "JP"):
        for freq in ("1m", "5m", "15m", "30m", "1h", "1d", "1w", "1M"):
            cap = caps.require("klines", market, freq)
            got = (cap.since, cap.rows_per_call, cap.symbols_per_call)
            # no depth declared: StockTV publishes none, so its answers decide
            assert got == (None, 1000, 1)
        assert caps.serves("instruments", market) and not caps.serves("calendar", market)
    assert caps.serves("instruments", "STOCKTV") and not caps.serves("klines", "STOCKTV", "1d")
    for dataset in ("balance_sheet", "income", "cash_flow", "future_varieties", "main_contracts"):
        assert not caps.serves(dataset)
    assert not caps.serves("klines", "SH", "1d") and not caps.serves("klines", "HK", "1d")
    assert (caps.rate.per_second, caps.rate.in_flight, caps.rate.scope) == (5.0, None, "key")
    slow = StockTVAdapter(VendorContext(VendorSettings("stocktv", rate=2.5), now=lambda: NOW))
    assert slow.capabilities().rate.per_second == 2.5


def test_day_bounds_cover_local_days() -> None:
    # 00:00 IST 2024-01-02 to 23:59:59.999 IST 2024-01-02 (the spec's 1d example opens it).
    assert day_bounds_ms("IN", D(2024, 1, 2), D(2024, 1, 2)) == (1704133800000, 1704220199999)
    # New York in summer (EDT, UTC-4): 2024-07-01 00:00 to 2024-07-02 23:59:59.999.
    assert day_bounds_ms("US", D(2024, 7, 1), D(2024, 7, 2)) == (1719806400000, 1719979199999)


@pytest.mark.parametrize(
    ("market", "freq", "first", "last", "done"),
    [
        ("IN", "1d", D(2024, 6, 24), D(2024, 6, 28), D(2024, 6, 28)),  # NSE closed at 15:30
        ("US", "1d", D(2024, 6, 24), D(2024, 6, 28), D(2024, 6, 27)),  # NYSE not open yet
        ("US", "5m", D(2024, 6, 29), D(2024, 6, 30), D(2024, 6, 28)),  # the weekend ahead
        ("JP", "1w", D(2024, 6, 1), D(2024, 6, 28), D(2024, 6, 28)),  # TSE's week is over
        ("US", "1w", D(2024, 6, 1), D(2024, 6, 28), D(2024, 6, 23)),  # this week still runs
        ("IN", "1M", D(2024, 5, 1), D(2024, 6, 28), D(2024, 6, 28)),  # NSE's June is over
        ("US", "1M", D(2024, 5, 1), D(2024, 6, 28), D(2024, 6, 2)),  # June (from the 3rd) runs
    ],
)
def test_complete_through(market: str, freq: str, first: D, last: D, done: D) -> None:
    assert complete_through(market, freq, first, last, NOW) == done


def test_missing_before_uses_the_exchange_calendar() -> None:
    # Oldest NSE 1d bar 2016-01-04 (00:00 IST): NSE last traded on Friday 2016-01-01.
    oldest = int(dt.datetime(2016, 1, 3, 18, 30, tzinfo=UTC).timestamp()) * 1000
    assert missing_before("IN", "1d", D(2015, 1, 1), oldest) == D(2016, 1, 1)
    assert missing_before("IN", "1d", D(2016, 1, 2), oldest) is None  # only a weekend before
    # Oldest US 1h bar 2024-06-03 09:30 EDT: the session of 2024-05-31 lacks.
    first_bar = int(dt.datetime(2024, 6, 3, 13, 30, tzinfo=UTC).timestamp()) * 1000
    assert missing_before("US", "1h", D(2024, 5, 27), first_bar) == D(2024, 5, 31)
    assert missing_before("US", "1h", D(2024, 6, 1), first_bar) is None
