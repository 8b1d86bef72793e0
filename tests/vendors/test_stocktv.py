"""The StockTV adapter against a scripted fake of its API (tests/vendors/_stub.py): paging,
the unavailable rule, the pid map, error classes and the key's redaction."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from etl.calendars import trading_days
from etl.config import Secret, VendorSettings
from etl.errors import AuthError, TransientVendorError
from etl.vendors import ADAPTERS, adapter_class
from etl.vendors.base import InstrumentMap, KlineBatch, Span, VendorContext
from etl.vendors.stocktv import StockTVAdapter
from tests.vendors._stub import Reply, Request, StubServer, script

T = TypeVar("T")
D = dt.date
UTC = dt.UTC
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=UTC)  # NSE closed at 10:00Z
KEY = "stv-KEY-9f8e7d6c"
PIDS = {"RELIANCE.IN": "7310", "TCS.IN": "7311"}


def envelope(data: Any, code: int = 200, message: str = "操作成功") -> dict[str, Any]:
    return {"code": code, "message": message, "data": data}


def nse_daily(first: D, last: D) -> list[dict[str, Any]]:
    """1d bars at 00:00 IST of each NSE session in ``[first, last]``, oldest first."""
    out = []
    for i, day in enumerate(trading_days("IN", first, last).astype(dt.date)):
        ms = int(dt.datetime.combine(day, dt.time(0), tzinfo=IST).timestamp()) * 1000
        price = 100.0 + i % 7
        bar = {"time": ms, "open": price, "high": price + 2, "low": price - 1, "close": price + 1}
        out.append({**bar, "volume": 1000 + i, "vo": 0 if i % 2 else 1e5 + i})
    return out


class FakeKline:
    """``/stock/kline`` as docs/vendors/stocktv.md fixes it: the latest 1000 bars in
    [startTime, endTime]."""

    def __init__(self, bars: dict[str, list[dict[str, Any]]]) -> None:
        self.bars = bars

    def __call__(self, request: Request) -> Reply:
        q = request.query
        if q.get("key") != KEY:
            return Reply(body=envelope(None, 401, "key无效"))
        if q["pid"] not in self.bars:
            return Reply(body=envelope(None, 404, "数据不存在"))
        lo, hi = int(q.get("startTime", 0)), int(q.get("endTime", 2**62))
        inside = [b for b in self.bars[q["pid"]] if lo <= b["time"] <= hi]
        return Reply(body=envelope(inside[-1000:]))


@pytest.fixture
def stub() -> Iterator[Callable[[Any], StubServer]]:
    servers: list[StubServer] = []

    def start(handler: Any) -> StubServer:
        server = StubServer(handler).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def adapter(url: str, ids: dict[str, str] | None = None, key: str = KEY) -> StockTVAdapter:
    settings = VendorSettings(
        "stocktv", base_url=url, api_key=Secret(key), rate=1000.0,
        extra={"backoff_base": 0.01, "backoff_jitter": 0.0},
    )  # fmt: skip
    instruments = InstrumentMap(ids=PIDS if ids is None else ids)
    return StockTVAdapter(VendorContext(settings, now=lambda: NOW, instruments=instruments))


def klines(url: str, symbols: list[str], freq: str, start: D, end: D, **kw: Any) -> KlineBatch:
    return run(adapter(url, **kw), lambda a: a.klines(symbols, freq, start, end))


def run(ad: StockTVAdapter, fn: Callable[[StockTVAdapter], Awaitable[T]]) -> T:
    async def go() -> T:
        try:
            return await fn(ad)
        finally:
            await ad.aclose()

    return asyncio.run(go())


def test_registered() -> None:
    assert ADAPTERS["stocktv"] is StockTVAdapter is adapter_class("stocktv")
    assert StockTVAdapter.required_settings == ("api_key",)
    assert StockTVAdapter.public_base_url == "https://api.stocktv.top"


def test_long_range_is_paged_backwards_until_a_short_page(stub: Any) -> None:
    bars = nse_daily(D(2010, 1, 1), D(2024, 6, 28))  # 3563 sessions
    server = stub(FakeKline({"7310": bars}))
    batch = klines(server.url, ["RELIANCE.IN"], "1d", D(2012, 1, 1), D(2024, 6, 28))
    wanted = [b for b in bars if b["time"] >= 1325356200000]  # 2012-01-01 00:00 IST
    calls = [r.query for r in server.requests]
    assert len(calls) == batch.requests == -(-len(wanted) // 1000)  # 4 pages: 3 full, 1 short
    assert {c["startTime"] for c in calls} == {"1325356200000"}
    assert calls[0]["endTime"] == "1719599399999"  # 2024-06-28 23:59:59.999 IST
    for before, after in itertools.pairwise(calls):
        page = [b["time"] for b in wanted if b["time"] <= int(before["endTime"])][-1000:]
        assert int(after["endTime"]) == min(page) - 1  # next endTime = oldest - 1
    assert all(c["interval"] == "P1D" and c["pid"] == "7310" for c in calls)
    rows = batch.table.to_pylist()
    assert [int(r["ts"].timestamp() * 1000) for r in rows] == [b["time"] for b in wanted]
    assert [r["amount"] for r in rows] == [b["vo"] or None for b in wanted]  # vo 0 → null
    assert batch.answered == [Span("RELIANCE.IN", D(2012, 1, 1), D(2024, 6, 28))]
    assert not batch.unavailable and not batch.failures


def test_nothing_older_is_unavailable_not_filled(stub: Any) -> None:
    bars = nse_daily(D(2016, 1, 4), D(2024, 6, 28))  # StockTV's history starts 2016-01-04
    exact = bars[-2000:]  # exactly two full pages: the third page comes back empty
    server = stub(FakeKline({"7310": bars, "7311": exact}))
    first_exact = dt.datetime.fromtimestamp(exact[0]["time"] / 1000, IST).date()
    batch = klines(server.url, ["RELIANCE.IN", "TCS.IN"], "1d", D(2015, 1, 1), D(2024, 6, 28))
    assert batch.table.num_rows == len(bars) + 2000
    why = {u.symbol: u for u in batch.unavailable}
    # NSE traded on Friday 2016-01-01, before the oldest bar StockTV has.
    assert (why["RELIANCE.IN"].start, why["RELIANCE.IN"].end) == (D(2015, 1, 1), D(2016, 1, 1))
    assert why["TCS.IN"].start == D(2015, 1, 1) and why["TCS.IN"].end < first_exact
    assert "no 1d bars before" in why["RELIANCE.IN"].reason
    assert Span("RELIANCE.IN", D(2016, 1, 2), D(2024, 6, 28)) in batch.answered
    assert (
        Span("TCS.IN", why["TCS.IN"].end + dt.timedelta(days=1), D(2024, 6, 28)) in batch.answered
    )
    # RELIANCE: full pages, then a short one; TCS: two full pages, then an empty one.
    assert len(server.requests) == -(-len(bars) // 1000) + 3 and not batch.failures


def test_an_old_range_is_asked_and_its_answer_decides(stub: Any) -> None:
    """StockTV's depth is not published: a range older than the emulator's 180-day convention
    is asked for all the same, and is unavailable because the answer is empty (regression:
    it was refused without a request, on the local clock)."""
    server = stub(FakeKline({"7310": []}))
    batch = klines(server.url, ["RELIANCE.IN"], "5m", D(2023, 1, 1), D(2023, 6, 30))
    (gap,) = batch.unavailable
    assert (gap.symbol, gap.start) == ("RELIANCE.IN", D(2023, 1, 1))
    assert gap.end == D(2023, 6, 30) and "returned no 5m bars" in gap.reason
    assert len(server.requests) == 1 and not batch.answered


def test_symbol_without_pid_fails_and_asks_for_a_sync(stub: Any) -> None:
    server = stub(FakeKline({"7310": nse_daily(D(2024, 6, 3), D(2024, 6, 28))}))
    ids = {"RELIANCE.IN": "7310"}
    batch = klines(
        server.url, ["TCS.IN", "RELIANCE.IN"], "1d", D(2024, 6, 3), D(2024, 6, 28), ids=ids
    )
    (failure,) = batch.failures
    assert failure.symbol == "TCS.IN"
    assert "etl instruments sync --vendor stocktv" in failure.reason
    assert batch.table.num_rows == 19 and len(server.requests) == 1  # only RELIANCE asked


def test_unknown_pid_fails_that_symbol_only(stub: Any) -> None:
    server = stub(FakeKline({"7310": nse_daily(D(2024, 6, 3), D(2024, 6, 28))}))
    ids = {"RELIANCE.IN": "7310", "TCS.IN": "999"}
    batch = klines(
        server.url, ["TCS.IN", "RELIANCE.IN"], "1d", D(2024, 6, 3), D(2024, 6, 28), ids=ids
    )
    (failure,) = batch.failures
    assert failure.symbol == "TCS.IN" and "数据不存在" in failure.reason
    assert "instruments sync" in failure.reason and batch.table.num_rows == 19


def test_transient_answers_are_retried(stub: Any) -> None:
    ok = Reply(body=envelope(nse_daily(D(2024, 6, 24), D(2024, 6, 28))))
    server = stub(script(
        Reply(body=envelope(None, 429, "请求过于频繁")),  # over the limit: transient
        Reply(body=b"<html>gateway</html>"),  # not JSON: malformed
        Reply(status=502, body=b"Bad Gateway"),  # a real HTTP error
        ok,
    ))  # fmt: skip
    batch = klines(server.url, ["RELIANCE.IN"], "1d", D(2024, 6, 24), D(2024, 6, 28))
    assert batch.table.num_rows == 5 and batch.requests == 4 and len(server.requests) == 4


def test_refused_parameter_is_a_failure_and_refused_key_an_auth_error(stub: Any) -> None:
    server = stub(script(Reply(body=envelope(None, 400, "参数错误"))))
    batch = klines(server.url, ["RELIANCE.IN"], "1d", D(2024, 6, 24), D(2024, 6, 28))
    assert "参数错误" in batch.failures[0].reason and len(server.requests) == 1
    bad = stub(FakeKline({}))
    with pytest.raises(AuthError, match="ETL_STOCKTV_API_KEY") as info:
        klines(bad.url, ["RELIANCE.IN"], "1d", D(2024, 6, 24), D(2024, 6, 28), key="wrong-key")
    assert len(bad.requests) == 1 and "wrong-key" not in str(info.value)


def test_the_key_is_sent_but_never_logged_or_raised(
    stub: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = stub(script(Reply(status=500, body=f"upstream saw key={KEY}".encode())))
    with pytest.raises(TransientVendorError) as info:
        klines(server.url, ["RELIANCE.IN"], "1d", D(2024, 6, 24), D(2024, 6, 28))
    assert all(r.query["key"] == KEY for r in server.requests) and len(server.requests) == 4
    text = str(info.value) + repr(info.value.fields) + caplog.text
    assert KEY not in text and "key=***" in str(info.value)
    assert "retry 3 of 3" in caplog.text


def stocks_page(request: Request) -> Reply:
    """``/stock/stocks`` with 1203 NSE stocks (BSE twins), 2 NYSE + 1 NASDAQ, 1 Tokyo;
    ``/stock/indices`` with one index per country."""
    q = request.query
    if request.path == "/stock/indices":
        symbol = {"14": "NSEI", "5": "SPX", "2": "N225"}[q["countryId"]]
        return Reply(body=envelope([{"id": 90000 + int(q["countryId"]), "name": symbol,
                                     "symbol": symbol, "last": 1.0, "chg": 0, "chgPct": 0,
                                     "isOpen": False}]))  # fmt: skip
    country, exchange = int(q["countryId"]), int(q.get("exchangeId", 0))
    listed = {
        (14, 46): [f"NSE{i:04d}" for i in range(1202)] + ["M&M"],
        (14, 74): ["M&M"],
        (5, 1): ["BRK.B", "BRK/B"],  # the second collides with the first: kept once
        (5, 2): ["AAPL"],
        (5, 0): ["BRK.B", "BRK/B", "AAPL"],  # the whole country (check)
        (2, 0): ["7203"],
    }.get((country, exchange), [])
    page, size = int(q["page"]), int(q["pageSize"])
    records = [{"id": 1000 * country + exchange * 100000 + i, "symbol": s, "name": s,
                "exchangeId": exchange or 20, "countryId": country, "time": 1719571200}
               for i, s in enumerate(listed)][(page - 1) * size : page * size]  # fmt: skip
    pages = -(-len(listed) // size)
    return Reply(body=envelope({"records": records, "total": len(listed), "current": page,
                                "pages": pages, "size": size}))  # fmt: skip


def test_instruments_are_paged_per_country_and_exchange(stub: Any) -> None:
    server = stub(stocks_page)
    table = run(adapter(server.url), lambda a: a.instruments())
    calls = [(r.path, r.query) for r in server.requests]
    stock_calls = [q for p, q in calls if p == "/stock/stocks"]
    assert [(q["countryId"], q.get("exchangeId"), q["page"]) for q in stock_calls] == [
        ("14", "46", "1"), ("14", "46", "2"), ("14", "46", "3"),  # 1203 NSE records
        ("5", "1", "1"), ("5", "2", "1"), ("2", None, "1"),
    ]  # fmt: skip
    assert {q["pageSize"] for q in stock_calls} == {"500"}
    assert sorted(q["countryId"] for p, q in calls if p == "/stock/indices") == ["14", "2", "5"]
    rows = {r["symbol"]: r for r in table.to_pylist()}
    assert len(rows) == 1203 + 1 + 1 + 1 + 3
    assert (rows["M_M.IN"]["vendor_code"], json.loads(rows["M_M.IN"]["vendor_extra"])) == (
        "M&M", {"countryId": 14, "exchangeId": 46},
    )  # fmt: skip
    assert rows["BRK_B.US"]["vendor_code"] == "BRK.B"  # the first of the two kept
    assert rows["7203.JP"]["market"] == "JP" and rows["SPX.STOCKTV"]["type"] == "index"
    assert all(r.query["key"] == KEY for r in server.requests)


def test_check(stub: Any) -> None:
    server = stub(stocks_page)
    result = run(adapter(server.url), lambda a: a.check())
    assert result.success and "3 US stocks" in result.message
    refused = stub(script(Reply(body=envelope(None, 401, "key无效"))))
    result = run(adapter(refused.url), lambda a: a.check())
    assert not result.success and "key无效" in result.message and KEY not in result.message
