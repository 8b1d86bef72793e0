"""mdapi's wire mappings on the vendor document's own payloads (mdapi's market API
document).

Expected rows are literal: timestamps to the second, prices to the digit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from etl.errors import AuthError, PermanentVendorError, RateLimited, SchemaError
from etl.vendors.base import Span, Unavailable
from etl.vendors.mdapi.window import bar_end_ms, capabilities, coverage, governor_limits
from etl.vendors.mdapi.wire import (
    IpRefused,
    UnknownProduct,
    bars_table,
    decode_bars,
    guess_code,
    instrument_row,
    parse_bars,
    parse_envelope,
    parse_quote,
    symbol_for,
)

UTC = dt.UTC
D = dt.date

# 三、获取K线图接口, "返回数据格式" (as printed: element 0 is the same in both rows, only the
# text time differs; element 0 is authoritative, so both are one bar).
KLINE_EXAMPLE: list[list[Any]] = [
    [1623061860000, 36500, 36540.08, 36500, 36510.65, "2021-06-07 18:31:00", 100],
    [1623061860000, 36500, 36540.08, 36500, 36510.65, "2021-06-07 18:30:00", 100],
]
# 四、查询产品分类接口
CATEGORY_EXAMPLE = {
    "code": 200,
    "msg": "success",
    "data": {
        "list": [
            {"id": "1", "name": "外汇"},
            {"id": "2", "name": "国际期货"},
            {"id": "3", "name": "国内期货"},
            {"id": "4", "name": "数字货币"},
            {"id": "7", "name": "国际股指期货"},
        ]
    },
}
# 五、查询产品订阅代码接口 (category=7&page=1&pageSize=10; the document lists 8 of 25)
SYMBOLS_EXAMPLE = {
    "code": 200,
    "msg": "success",
    "data": {
        "total": 25,
        "list": [
            {"code": "HX_HSI", "name": "恒指2512"},
            {"code": "ZY_DAX", "name": "德指"},
            {"code": "HX_MHI", "name": "小恒指2512"},
            {"code": "HX_CN", "name": "富时A50"},
            {"code": "HX_NQ", "name": "小纳指"},
            {"code": "HX_ES", "name": "小标普"},
            {"code": "ZY_YM", "name": "小道指"},
            {"code": "TW_TXF", "name": "台指期2512【日】"},
        ],
    },
}
# 二、获取实时数据接口 (getQuote.php?code=btcusdt), depth cut to 2 levels; "Se11" is printed so.
QUOTE_EXAMPLE = {
    "code": 200,
    "msg": "success",
    "data": {
        "body": {
            "StockCode": "btcusdt", "Price": 90722.15, "Open": 91058.94, "LastClose": 90722.15,
            "High": 91161.61, "Low": 90158.12, "Time": "2025-11-30 14:10:03",
            "LastTime": "1764483003", "BP1": 90722.15, "BV1": 0.58, "SP1": 90722.16, "SV1": 0.25,
            "TotalVol": 1444.62,
            "Depth": {
                "Buy": [{"BP1": 90722.15, "BV1": 0.58}, {"BP2": 90719.58, "BV2": 0}],
                "Se11": [{"SP1": 90722.16, "SV1": 0.25}, {"SP2": 90725.09, "SV2": 0}],
            },
            "BS": [
                {"time": "14:10:03", "price": 90722.15, "size": 0.58, "direction": 2},
                {"time": "14:10:03", "price": 90722.16, "size": 0.25, "direction": 1},
            ],
            "Info": [], "lastSize": 0.00018, "Diff": -336.79, "DiffRate": -0.37,
        }
    },
}  # fmt: skip
# 一、Websocket实时数据推送: a push carries the same quote object in "body".
PUSH_EXAMPLE = {
    "body": {
        "StockCode": "btcusdt", "Price": 27206.02, "Open": 26689.98, "LastClose": 27206.02,
        "High": 27287.74, "Low": 26554.35, "Time": "2023-05-28 15:43:51",
        "LastTime": "1685259831", "BP1": 27206.02, "BV1": 0.21, "SP1": 27206.03, "SV1": 0.78,
        "TotalVol": 2293.14,
        "Depth": {"Buy": [{"BP1": 27206.02, "BV1": 0.39}],
                  "Sell": [{"SP1": 27206.03, "SV1": 0.78}]},
    }
}  # fmt: skip


def answer(body: Any, status: int = 200) -> httpx.Response:
    request = httpx.Request("GET", "http://mdapi.test/x.php")
    if isinstance(body, bytes):
        return httpx.Response(status, content=body, request=request)
    return httpx.Response(status, json=body, request=request)


def test_kline_example_is_one_canonical_bar() -> None:
    now = dt.datetime(2021, 6, 8, tzinfo=UTC)
    day = D(2021, 6, 7)
    rows = parse_bars(answer(KLINE_EXAMPLE))
    base = {"freq": "1m", "trade_date": day, "amount": None, "settle": None,
            "open_interest": None, "vendor": "mdapi"}  # fmt: skip
    crypto = bars_table(
        decode_bars(rows, "btcusdt", volume=True), "BTCUSDT.CC", "1m",
        start=day, end=day, now=now, request_id="r",
    ).to_pylist()  # fmt: skip
    assert crypto == [
        # 1623061860000 ms = 10:31:00Z = "2021-06-07 18:31:00" UTC+8; the row saying 18:30
        # has the same element 0, so it is the same bar (an exact copy: kept once)
        {**base, "symbol": "BTCUSDT.CC", "ts": dt.datetime(2021, 6, 7, 10, 31, tzinfo=UTC),
         "open": 36500.0, "high": 36540.08, "low": 36500.0, "close": 36510.65,
         "volume": 100.0, "request_id": "r", "source": "rest"},
    ]  # fmt: skip
    # The document's URL asks fx_sgbpusd: forex has no volume, whatever element 6 says.
    forex = bars_table(
        decode_bars(rows, "fx_sgbpusd", volume=False), "GBPUSD.FX", "1m",
        start=day, end=day, now=now, request_id="r",
    ).to_pylist()  # fmt: skip
    assert [(r["symbol"], r["close"], r["volume"]) for r in forex] == [
        ("GBPUSD.FX", 36510.65, None),  # the same bar, volume null
    ]


def test_category_and_symbol_list_examples() -> None:
    categories = parse_envelope(answer(CATEGORY_EXAMPLE))["list"]
    assert [(c["id"], c["name"]) for c in categories] == [
        ("1", "外汇"), ("2", "国际期货"), ("3", "国内期货"), ("4", "数字货币"),
        ("7", "国际股指期货"),
    ]  # fmt: skip
    listed = parse_envelope(answer(SYMBOLS_EXAMPLE))
    assert listed["total"] == 25
    rows = [instrument_row(i["code"], i["name"], "7") for i in listed["list"]]
    assert rows[0] == {
        "symbol": "HX_HSI.MDAPI", "market": "MDAPI", "name": "恒指2512", "type": "future",
        "currency": None, "list_date": None, "delist_date": None, "vendor_code": "HX_HSI",
        "vendor_id": None, "vendor_extra": '{"category":"7"}', "vendor": "mdapi",
    }  # fmt: skip
    assert [(r["symbol"], r["name"]) for r in rows if r] == [
        ("HX_HSI.MDAPI", "恒指2512"), ("ZY_DAX.MDAPI", "德指"), ("HX_MHI.MDAPI", "小恒指2512"),
        ("HX_CN.MDAPI", "富时A50"), ("HX_NQ.MDAPI", "小纳指"), ("HX_ES.MDAPI", "小标普"),
        ("ZY_YM.MDAPI", "小道指"), ("TW_TXF.MDAPI", "台指期2512【日】"),
    ]  # fmt: skip


def test_quote_examples() -> None:
    quote = parse_quote(parse_envelope(answer(QUOTE_EXAMPLE)))
    # LastTime 1764483003 = 06:10:03Z = Time "2025-11-30 14:10:03" UTC+8
    assert (quote.code, quote.time) == ("btcusdt", dt.datetime(2025, 11, 30, 6, 10, 3, tzinfo=UTC))
    assert (quote.price, quote.open, quote.high, quote.low, quote.last_close) == (
        90722.15, 91058.94, 91161.61, 90158.12, 90722.15,
    )  # fmt: skip
    assert quote.total_volume == 1444.62
    push = parse_quote(PUSH_EXAMPLE)
    # LastTime 1685259831 = 07:43:51Z = Time "2023-05-28 15:43:51" UTC+8
    assert (push.time, push.price, push.low) == (
        dt.datetime(2023, 5, 28, 7, 43, 51, tzinfo=UTC), 27206.02, 26554.35,
    )  # fmt: skip
    renamed = {"price" if k == "Price" else k: v for k, v in PUSH_EXAMPLE["body"].items()}
    with pytest.raises(SchemaError, match="Price"):  # schema_drift:rename
        parse_quote({"body": renamed})
    assert parse_quote({"body": {**PUSH_EXAMPLE["body"], "Amplitude": 0.0}}).price == 27206.02


@pytest.mark.parametrize(
    ("code", "category", "symbol"),
    [
        ("btcusdt", "4", "BTCUSDT.CC"),  # category 4
        ("ethusdt", None, "ETHUSDT.CC"),  # ...usdt, whatever the category
        ("btcusd", "4", "BTCUSD.CC"),  # category 4 without usdt
        ("fx_sgbpusd", "1", "GBPUSD.FX"),  # fx_s + the pair
        ("fx_susdjpy", None, "USDJPY.FX"),
        ("HX_HSI", "7", "HX_HSI.MDAPI"),  # anything else: upper case + .MDAPI
        ("RT_AU", "3", "RT_AU.MDAPI"),
        ("600519", "3", "600519.MDAPI"),
        ("hf_OIL", "2", "HF_OIL.MDAPI"),  # lossy: the map keeps hf_OIL
        ("XAU.USD", "2", "XAU_USD.MDAPI"),  # other characters become _
        ("fx_seurusd1", "1", "FX_SEURUSD1.MDAPI"),  # not a pair: no .FX
        ("", "2", None),  # nothing to name
    ],
)
def test_symbol_for(code: str, category: str | None, symbol: str | None) -> None:
    assert symbol_for(code, category) == symbol


@pytest.mark.parametrize(
    ("symbol", "code"),
    [
        ("BTCUSDT.CC", "btcusdt"),  # the rule inverted
        ("GBPUSD.FX", "fx_sgbpusd"),
        ("HX_HSI.MDAPI", "HX_HSI"),  # as is: right for most codes
        ("HF_OIL.MDAPI", "HF_OIL"),  # wrong (hf_OIL): only the instruments map knows
    ],
)
def test_guess_code(symbol: str, code: str) -> None:
    assert guess_code(symbol) == code


@pytest.mark.parametrize(
    ("body", "error", "fragment"),
    [
        ({"code": 400, "msg": "参数错误"}, PermanentVendorError, "400 参数错误"),
        ({"code": 403, "msg": "IP未授权"}, IpRefused, "allow-list"),
        ({"code": 404, "msg": "产品不存在"}, UnknownProduct, "404 产品不存在"),
        ({"code": 429, "msg": "请求过于频繁"}, RateLimited, "429 请求过于频繁"),
        ({"code": "403", "msg": "IP未授权"}, IpRefused, "IP未授权"),  # a string code
    ],
)
def test_errors_table(body: dict[str, Any], error: type[Exception], fragment: str) -> None:
    for parse in (parse_envelope, parse_bars):
        with pytest.raises(error, match=fragment) as info:
            parse(answer(body))
        assert type(info.value) is error or error is PermanentVendorError
    refused = IpRefused("x")
    assert isinstance(refused, AuthError) and refused.exit_code == 3


def test_answers_of_the_wrong_shape() -> None:
    with pytest.raises(SchemaError, match="not an array"):  # success envelope from redis.php
        parse_bars(answer({"code": 200, "msg": "success", "data": []}))
    with pytest.raises(SchemaError, match="not an array"):
        parse_bars(answer("busy"))
    with pytest.raises(SchemaError, match="envelope"):
        parse_envelope(answer([1, 2]))
    with pytest.raises(IpRefused):  # a firewall's own 403
        parse_bars(answer(b"<html>Forbidden</html>", status=403))
    with pytest.raises(PermanentVendorError, match="HTTP 404"):  # a wrong base URL
        parse_envelope(answer(b"<html>Not Found</html>", status=404))


def test_decode_bars_rules() -> None:
    old = [1623061860000, 1.0, 2.0, 0.5, 1.5, "2021-06-07 18:31:00"]  # 6 elements: no volume
    extra = [1623061920000, 1.0, 2.0, 0.5, 1.5, "2021-06-07 18:32:00", 7, 0]  # 8th ignored
    nan = [1623061980000, 1.0, 2.0, 0.5, float("nan"), "2021-06-07 18:33:00", 7]
    bars = decode_bars([old, extra, nan], "btcusdt", volume=True)
    assert [(b.ms, b.volume) for b in bars] == [
        (1623061860000, None), (1623061920000, 7.0), (1623061980000, 7.0),
    ]  # fmt: skip
    assert bars[2].close != bars[2].close  # NaN passes through, for validation to reject
    bad_rows: list[tuple[Any, str]] = [
        ({"ts": 1623061860000, "open": 1.0}, "not an array"),  # schema_drift:rename
        ([1623061860000, 1.0, 2.0, 0.5, 1.5], "not an array"),  # 5 elements
        ([1623061860000.0, 1.0, 2.0, 0.5, 1.5, "t", 1], "epoch ms"),
        ([1623061860000, "1.0", 2.0, 0.5, 1.5, "t", 1], "open"),
        ([1623061860000, 1.0, True, 0.5, 1.5, "t", 1], "high"),
        ([1623061860000, 1.0, 2.0, 0.5, 1.5, "t", "7"], "volume"),
    ]
    for row, fragment in bad_rows:
        with pytest.raises(SchemaError, match=fragment):
            decode_bars([row], "btcusdt", volume=True)


def test_bars_table_sorts_dedupes_drops_the_forming_bar_and_trims() -> None:
    def row(hh: int, mm: int, close: float) -> list[Any]:
        ms = int(dt.datetime(2024, 6, 28, hh, mm, tzinfo=UTC).timestamp() * 1000)
        return [ms, 10.0, 11.0, 9.0, close, "ignored", 1]

    now = dt.datetime(2024, 6, 28, 16, 0, 30, tzinfo=UTC)  # 00:00:30 on the 29th in Shanghai
    rows = [
        row(16, 0, 10.2),  # forming at now: dropped
        row(15, 59, 10.1),
        row(15, 59, 10.1),  # an exact copy: kept once
        row(15, 58, 10.0),
        row(15, 58, 10.5),  # a copy that disagrees: both kept, validation rejects them
        row(15, 57, 9.9),  # 23:57 on the 28th: trimmed when only the 29th is asked
    ]
    bars = decode_bars(rows, "btcusdt", volume=True)
    day = D(2024, 6, 28)
    got = bars_table(bars, "BTCUSDT.CC", "1m", start=day, end=day, now=now, request_id="r")
    assert [(r["ts"].minute, r["close"]) for r in got.to_pylist()] == [
        (57, 9.9), (58, 10.0), (58, 10.5), (59, 10.1),
    ]  # fmt: skip
    after = bars_table(bars, "BTCUSDT.CC", "1m", start=D(2024, 6, 29), end=D(2024, 6, 29),
                       now=now, request_id="r")  # fmt: skip
    assert after.num_rows == 0  # 16:00Z is the 29th in Shanghai, and it is still forming


@pytest.mark.parametrize(
    ("open_", "freq", "end"),
    [
        (dt.datetime(2024, 6, 28, 1, 30), "1m", dt.datetime(2024, 6, 28, 1, 31)),
        (dt.datetime(2024, 6, 28, 1, 0), "1h", dt.datetime(2024, 6, 28, 2, 0)),
        # 1d: 00:00 Shanghai (16:00Z the day before) to the next local midnight
        (dt.datetime(2024, 6, 27, 16, 0), "1d", dt.datetime(2024, 6, 28, 16, 0)),
        # 1M: the month's first trading day to the 1st of the next month, across a year
        (dt.datetime(2023, 12, 3, 16, 0), "1M", dt.datetime(2023, 12, 31, 16, 0)),
    ],
)
def test_bar_end(open_: dt.datetime, freq: str, end: dt.datetime) -> None:
    ms = int(open_.replace(tzinfo=UTC).timestamp() * 1000)
    assert bar_end_ms(ms, freq) == int(end.replace(tzinfo=UTC).timestamp() * 1000)


def test_coverage_books_every_day_once() -> None:
    now = dt.datetime(2024, 6, 28, 12, 0, tzinfo=UTC)  # Friday 20:00 in Shanghai
    mid_day = int(dt.datetime(2024, 6, 16, 1, 0, tzinfo=UTC).timestamp() * 1000)  # 09:00 local
    spans, gone = coverage("X.CC", "1h", D(2024, 6, 10), D(2024, 6, 30), mid_day, now)
    window = "beyond mdapi's window (only the latest 300 1h bars)"
    assert gone == [
        Unavailable("X.CC", D(2024, 6, 10), D(2024, 6, 16), window),  # 16th: from 09:00 only
        Unavailable("X.CC", D(2024, 6, 28), D(2024, 6, 30), "not complete yet at now"),
    ]
    assert spans == [Span("X.CC", D(2024, 6, 17), D(2024, 6, 27))]
    midnight = int(dt.datetime(2024, 6, 15, 16, 0, tzinfo=UTC).timestamp() * 1000)  # 16th 00:00
    spans, _ = coverage("X.CC", "1h", D(2024, 6, 10), D(2024, 6, 20), midnight, now)
    assert spans == [Span("X.CC", D(2024, 6, 16), D(2024, 6, 20))]  # the whole 16th served
    monthly = int(dt.datetime(2016, 2, 29, 16, 0, tzinfo=UTC).timestamp() * 1000)  # 2016-03-01
    spans, gone = coverage("X.CC", "1M", D(2016, 1, 1), D(2024, 6, 30), monthly, now)
    assert spans == [Span("X.CC", D(2016, 3, 1), D(2024, 5, 31))]  # June is still forming
    assert [(u.start, u.end) for u in gone] == [
        (D(2016, 1, 1), D(2016, 2, 29)), (D(2024, 6, 1), D(2024, 6, 30)),
    ]  # fmt: skip
    assert coverage("X.CC", "1d", D(2024, 6, 1), D(2024, 6, 2), None, now) == (
        [], [Unavailable("X.CC", D(2024, 6, 1), D(2024, 6, 2), "mdapi answered no 1d bars")],
    )  # fmt: skip


def test_capabilities_and_limits() -> None:
    caps = capabilities("mdapi", None)
    for exchange in ("CC", "FX", "MDAPI"):
        cap = caps.require("klines", exchange, "1m")
        assert cap.depth == {"1m": 600, "5m": 300, "15m": 300, "30m": 300, "1h": 300,
                             "1d": 300, "1M": 100}  # fmt: skip
        assert cap.symbols_per_call == 1 and cap.since is None
        assert not caps.serves("klines", exchange, "1w")  # mdapi has no weekly bars
        assert caps.serves("instruments", exchange)
    for market in ("SH", "HK", "US"):
        assert not caps.serves("klines", market, "1d")
    assert (caps.rate.per_second, caps.rate.scope) == (5.0, "product")
    assert capabilities("mdapi", 2.5).rate.per_second == 2.5
    rules = {(lim.kind, lim.requests, lim.per_bucket) for lim in governor_limits(None)}
    assert rules == {("kline", 5, True), ("quote", 3, True), ("list", 2, False)}
