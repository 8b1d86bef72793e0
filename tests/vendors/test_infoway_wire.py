"""Infoway's answers → payloads or error classes, in the SDK's parse order
(docs/vendors/infoway.md "Errors"), and vendor codes ↔ canonical symbols."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from etl.errors import (
    AuthError,
    PermanentVendorError,
    QuotaExhausted,
    RateLimited,
    SchemaError,
    TransientVendorError,
)
from etl.vendors.infoway.wire import (
    HistoryLimit,
    UnknownCodes,
    canonical,
    parse_answer,
    parse_bars,
    vendor_code,
)

PROBLEM = {"type": "about:blank", "title": "Bad Request", "status": 400,
           "detail": "Required parameter 'type' is not present.",
           "instance": "/common/basic/symbols"}  # fmt: skip


def answer(status: int, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return httpx.Response(status, content=content, request=httpx.Request("GET", "http://x/"))


def business(ret: int, msg: str) -> dict[str, Any]:
    return {"ret": ret, "msg": msg, "traceId": "t-1", "data": None}


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        # missing, wrong or expired key
        (401, {"code": 401, "message": "Token invalid", "timestamp": 1786778697472}, AuthError),
        # over rate: 429 detail, also seen as HTTP 200 detail, and ret 501 (per minute)
        (429, {"detail": "Rate limit exceeded"}, RateLimited),
        (200, {"detail": "Rate limit exceeded"}, RateLimited),
        (200, business(501, "Request exceed limit"), RateLimited),
        # daily quota spent: stop using the vendor for the task
        (200, business(502, "Request for day limit"), QuotaExhausted),
        # business errors (HTTP 200): permanent, two with classes of their own
        (200, business(500, "All product not exists"), UnknownCodes),
        (200, business(500, "Timestamp limit error"), HistoryLimit),
        (200, business(500, "Param error：klineType"), PermanentVendorError),
        (200, business(500, "Kline quantity exceeds the limit：500"), PermanentVendorError),
        (200, business(500, "Product quantity exceeds the limit：100"), PermanentVendorError),
        # RFC 7807 on /common/basic/*, and an unknown path
        (400, PROBLEM, PermanentVendorError),
        (404, {"detail": "Not Found"}, PermanentVendorError),
        # ret is read before HTTP >= 400
        (400, business(502, "Request for day limit"), QuotaExhausted),
        # a JSON answer that is no Infoway answer at all
        (200, [1, 2], SchemaError),
    ],
)
def test_error_classes(status: int, body: Any, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        parse_answer(answer(status, body))
    assert type(info.value) is error


def test_gateway_pages_are_not_json() -> None:
    """A gateway's HTML (5xx) never reaches parse: the HTTP layer retries 5xx. Should one
    come with 200, the JSON error is retried too (the layer maps it to transient)."""
    with pytest.raises(json.JSONDecodeError):
        parse_answer(answer(200, b"<html><body>502 Bad Gateway</body></html>"))
    assert issubclass(RateLimited, TransientVendorError)


def test_success_is_data_else_the_object() -> None:
    got = parse_answer(answer(200, {"ret": 200, "msg": "success", "traceId": "a-b", "data": [1]}))
    assert (got.data, got.trace_id) == ([1], "a-b")
    bare = {"packageName": "Premium", "apiNumPerSec": 10}
    assert parse_answer(answer(200, bare)).data == bare


@pytest.mark.parametrize(
    ("code", "kind", "symbol"),
    [
        ("600519.SH", "STOCK_CN", "600519.SH"),
        ("00700.HK", "STOCK_HK", "00700.HK"),
        ("AAPL.US", "STOCK_US", "AAPL.US"),
        ("BRK.B.US", "STOCK_US", "BRK_B.US"),  # another character becomes _
        ("BTCUSDT", "CRYPTO", "BTCUSDT.CC"),
        ("EURUSD", "FOREX", "EURUSD.FX"),
        ("XAUUSD", "METAL", "XAUUSD.INFOWAY"),
        ("USOIL", "ENERGY", "USOIL.INFOWAY"),
        ("430047.BJ", "STOCK_CN", None),  # not a market this vendor serves
    ],
)
def test_codes_both_ways(code: str, kind: str, symbol: str | None) -> None:
    assert canonical(code, kind) == symbol
    if symbol is not None:
        assert vendor_code(symbol) == code


def test_bars_are_typed_not_judged() -> None:
    """Bad prices pass as values (normalize rejects them); a shape error is a SchemaError."""
    data = [{"s": "AAPL.US", "respList": [
        {"t": "1786737540", "o": "NaN", "h": "1.0", "l": "-1.000", "c": "2", "v": "3",
         "vw": "4.5", "x": "1"}]}]  # fmt: skip
    (bar,) = parse_bars(data, "AAPL.US", "t") or []
    assert bar.t == 1786737540 and bar.low == -1.0 and bar.open != bar.open  # NaN
    assert parse_bars(data, "MSFT.US", "t") is None  # no element: the vendor left it out
    for broken in ({"t": "17x"}, {"t": 1.5}, {"o": "abc"}):
        row = {"t": "1", "o": "1", "h": "1", "l": "1", "c": "1", "v": "1", **broken}
        with pytest.raises(SchemaError):
            parse_bars([{"s": "A", "respList": [row]}], "A", None)
