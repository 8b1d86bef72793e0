"""The Infoway adapter against a scripted server answering with the vendor documents' own
payloads (Infoway's guides, and the example in docs/vendors/infoway.md).

Expected rows are literal: timestamps to the second, prices to the digit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest

from etl.config import Secret, VendorSettings
from etl.errors import AuthError, CapabilityError, QuotaExhausted, SchemaError
from etl.vendors.base import Failure, InstrumentMap, Span, Unavailable, VendorContext
from etl.vendors.infoway import InfowayAdapter
from tests.vendors._stub import Reply, Request, StubServer

T = TypeVar("T")
D = dt.date
UTC = dt.UTC
KEY = "iw-test-key-123"
NOW = dt.datetime(2026, 8, 15, 12, 0, tzinfo=UTC)  # every seed bar below has ended
PACKAGE = {"packageName": "Premium", "expireTime": 1818000000000, "apiNumPerSec": 10,
           "maxWsConNum": 3, "maxNum": 500, "maxYearHisData": 5, "allWsNum": 1500}  # fmt: skip

# Kline elements exactly as the vendor documents print them.
SEED_HK = {"s": "00005.HK", "respList": [  # Infoway's HK stocks guide, 4.1
    {"t": "1752825540", "h": "98.250", "o": "98.200", "l": "98.150", "c": "98.150",
     "v": "44000", "vw": "4320240.000", "pc": "-0.05%", "pca": "-0.050"}]}  # fmt: skip
SEED_SZ = {"s": "002594.SZ", "respList": [  # Infoway's WebSocket guide, 实时K线解析
    {"t": "1751958000", "h": "326.880", "o": "326.880", "l": "326.880", "c": "326.880",
     "v": "1410", "vw": "460900.80", "pc": "0.00%", "pca": "0.000"}]}  # fmt: skip
SPEC_US = {"s": "AAPL.US", "respList": [  # docs/vendors/infoway.md, "Endpoints"
    {"t": "1786737540", "o": "305.830", "h": "305.990", "l": "305.675", "c": "305.930",
     "v": "331559", "vw": "101402874.954", "pc": "0.03%", "pca": "0.090"}]}  # fmt: skip


def envelope(data: Any, ret: int = 200, msg: str = "success") -> dict[str, Any]:
    return {"ret": ret, "msg": msg, "traceId": "0d9f-seed", "data": data}


class FakeInfoway:
    """Answers ``/package/info`` and the POST kline form from a code -> element table;
    ``script`` replies come first, in order, for kline calls."""

    def __init__(self, elements: dict[str, dict[str, Any]] | None = None) -> None:
        self.elements = elements or {}
        self.script: list[Reply] = []
        self.calls: list[Request] = []
        self.package_calls = 0

    def __call__(self, request: Request) -> Reply:
        assert request.headers.get("apikey") == KEY
        if request.path == "/package/info":
            self.package_calls += 1
            return Reply(body=envelope(PACKAGE))
        self.calls.append(request)
        if self.script:
            return self.script.pop(0)
        if request.path == "/common/basic/symbols":
            return Reply(body=envelope([
                {"symbol": "BRK.B.US", "name_cn": "", "name_hk": "",
                 "name_en": "Berkshire Hathaway Inc. Class B", "index": False},
                {"symbol": "AAPL.US", "name_cn": "苹果", "name_hk": "", "name_en": "Apple Inc.",
                 "index": False},
            ]))  # fmt: skip
        if request.path == "/common/basic/markets/trading_days":
            days = ["20241223", "20241224", "20241227", "20241230", "20241231"]
            return Reply(body=envelope({"trade_days": days, "half_trade_days": ["20241224"]}))
        body = request.json()
        element = self.elements.get(body["codes"])
        return Reply(body=envelope([element] if element else []))


@pytest.fixture
def fake() -> Iterator[tuple[FakeInfoway, str]]:
    vendor = FakeInfoway({e["s"]: e for e in (SEED_HK, SEED_SZ, SPEC_US)})
    with StubServer(vendor) as server:
        yield vendor, server.url


def adapter(
    url: str,
    *,
    now: dt.datetime = NOW,
    rate: float | None = None,
    instruments: InstrumentMap | None = None,
    retries: int = 3,
) -> InfowayAdapter:
    settings = VendorSettings(
        name="infoway",
        base_url=url,
        api_key=Secret(KEY),
        rate=rate,
        extra={"backoff_base": 0.01, "backoff_jitter": 0.0, "retries": retries},
    )
    instruments = instruments or InstrumentMap()
    return InfowayAdapter(VendorContext(settings, now=lambda: now, instruments=instruments))


def run(ad: InfowayAdapter, fn: Callable[[InfowayAdapter], Awaitable[T]]) -> T:
    async def go() -> T:
        try:
            return await fn(ad)
        finally:
            await ad.aclose()

    return asyncio.run(go())


BASE = {"freq": "1m", "settle": None, "open_interest": None, "vendor": "infoway",
        "request_id": "0d9f-seed", "source": "rest"}  # fmt: skip


@pytest.mark.parametrize(
    ("symbol", "day", "row"),
    [
        # "1752825540" = 2025-07-18 07:59:00Z, 15:59 in Hong Kong: the day's last minute;
        # vw is turnover: amount 4,320,240.000.
        ("00005.HK", D(2025, 7, 18), {
            "ts": dt.datetime(2025, 7, 18, 7, 59, tzinfo=UTC), "trade_date": D(2025, 7, 18),
            "open": 98.2, "high": 98.25, "low": 98.15, "close": 98.15, "volume": 44000.0,
            "amount": 4320240.0}),
        # "1751958000" = 2025-07-08 07:00:00Z, 15:00 in Shanghai; vw "460900.80" = 460,900.8.
        ("002594.SZ", D(2025, 7, 8), {
            "ts": dt.datetime(2025, 7, 8, 7, 0, tzinfo=UTC), "trade_date": D(2025, 7, 8),
            "open": 326.88, "high": 326.88, "low": 326.88, "close": 326.88, "volume": 1410.0,
            "amount": 460900.8}),
        # "1786737540" = 2026-08-14 19:59:00Z, 15:59 in New York (EDT).
        ("AAPL.US", D(2026, 8, 14), {
            "ts": dt.datetime(2026, 8, 14, 19, 59, tzinfo=UTC), "trade_date": D(2026, 8, 14),
            "open": 305.83, "high": 305.99, "low": 305.675, "close": 305.93, "volume": 331559.0,
            "amount": 101402874.954}),
    ],
)  # fmt: skip
def test_seed_payloads_become_canonical_rows(
    fake: tuple[FakeInfoway, str], symbol: str, day: D, row: dict[str, Any]
) -> None:
    vendor, url = fake
    batch = run(adapter(url), lambda a: a.klines([symbol], "1m", day, day))
    assert batch.table.to_pylist() == [{"symbol": symbol, **BASE, **row}]
    assert batch.answered == [Span(symbol, day, day)] and not batch.unavailable
    (call,) = vendor.calls  # one bar: a short page, so no second page
    assert call.method == "POST" and call.path == "/stock/v2/batch_kline"
    body = call.json()
    assert {k: body[k] for k in ("codes", "klineType", "klineNum")} == {
        "codes": symbol, "klineType": 1, "klineNum": 500}  # fmt: skip
    # timestamp = 00:00 local of the day after: bars strictly before it.
    zone = {"HK": "Asia/Hong_Kong", "SZ": "Asia/Shanghai", "US": "America/New_York"}
    after = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0))
    assert body["timestamp"] == int(after.replace(tzinfo=ZoneInfo(zone[symbol[-2:]])).timestamp())
    assert vendor.package_calls == 1 and batch.requests == 1


def test_day_bar_times_of_the_spec(fake: tuple[FakeInfoway, str]) -> None:
    """docs/vendors/infoway.md "Time": an SH 1d bar of 2024-01-02 is "1704124800", a US one
    "1704171600" (00:00 local of the trade date)."""
    vendor, url = fake
    bar = {"o": "10.000", "h": "11.000", "l": "9.500", "c": "10.500", "v": "100", "vw": "1050.0"}
    vendor.elements = {
        "600519.SH": {"s": "600519.SH", "respList": [{"t": "1704124800", **bar}]},
        "AAPL.US": {"s": "AAPL.US", "respList": [{"t": "1704171600", **bar}]},
    }
    day = D(2024, 1, 2)
    got = run(
        adapter(url, now=dt.datetime(2024, 1, 3, 12, tzinfo=UTC)),
        lambda a: a.klines(["600519.SH", "AAPL.US"], "1d", day, day),
    )
    rows = {r["symbol"]: (r["ts"], r["trade_date"]) for r in got.table.to_pylist()}
    assert rows == {
        "600519.SH": (dt.datetime(2024, 1, 1, 16, tzinfo=UTC), day),  # 00:00 Shanghai
        "AAPL.US": (dt.datetime(2024, 1, 2, 5, tzinfo=UTC), day),  # 00:00 New York (EST)
    }
    # Day bars ignore timestamp: klineNum reaches back to the range, newest first.
    assert all("timestamp" not in c.json() and c.json()["klineType"] == 8 for c in vendor.calls)


def test_sorted_deduplicated_trimmed_and_forming_bar_dropped(fake: tuple[FakeInfoway, str]) -> None:
    vendor, url = fake

    def bar(t: int, close: str) -> dict[str, str]:
        return {"t": str(t), "o": "10.00", "h": "10.50", "l": "9.90", "c": close, "v": "5",
                "vw": "50.5"}  # fmt: skip

    base = 1719538200  # 2024-06-28 09:30 Shanghai
    vendor.elements = {"600000.SH": {"s": "600000.SH", "respList": [
        bar(base + 120, "10.20"),  # 09:32, still forming at now (09:32:30)
        bar(base + 60, "10.10"), bar(base + 60, "10.10"),  # an exact copy: dropped
        bar(base - 86_400, "10.00"),  # the day before: outside the range asked for
        bar(base, "10.05"),  # out of order: sorted
    ]}}  # fmt: skip
    now = dt.datetime.fromtimestamp(base + 150, UTC)
    day = D(2024, 6, 28)
    got = run(adapter(url, now=now), lambda a: a.klines(["600000.SH"], "1m", day, day))
    # Today is not over at now: nothing of it is stored, and it is reported unavailable.
    assert got.table.num_rows == 0 and not vendor.calls
    assert got.unavailable == [Unavailable("600000.SH", day, day, "not complete yet at now")]
    later = dt.datetime(2024, 6, 28, 12, tzinfo=UTC)  # 20:00 Shanghai: the day is complete
    got = run(adapter(url, now=later), lambda a: a.klines(["600000.SH"], "1m", day, day))
    assert [(r["ts"].minute, r["close"]) for r in got.table.to_pylist()] == [
        (30, 10.05), (31, 10.1), (32, 10.2)]  # fmt: skip
    assert got.answered == [Span("600000.SH", day, day)]


def test_instruments_keep_the_vendor_code(fake: tuple[FakeInfoway, str]) -> None:
    vendor, url = fake
    table = run(adapter(url), lambda a: a.instruments("US"))
    rows = [(r["symbol"], r["vendor_code"], r["name"], r["currency"]) for r in table.to_pylist()]
    assert rows == [
        ("BRK_B.US", "BRK.B.US", "Berkshire Hathaway Inc. Class B", "USD"),
        ("AAPL.US", "AAPL.US", "Apple Inc.", "USD"),
    ]
    assert vendor.calls[0].query == {"type": "STOCK_US"}
    # Klines of BRK_B.US ask for the map's code; without a map, the rule gives the same.
    vendor.calls.clear()
    mapped = InstrumentMap(codes={"BRK_B.US": "BRK.B.US"})
    day = D(2026, 8, 14)
    run(adapter(url, instruments=mapped), lambda a: a.klines(["BRK_B.US"], "1d", day, day))
    run(adapter(url), lambda a: a.klines(["BRK_B.US"], "1d", day, day))
    assert [c.json()["codes"] for c in vendor.calls] == ["BRK.B.US", "BRK.B.US"]


def test_calendar_uses_cn_for_sh_and_flags_half_days(fake: tuple[FakeInfoway, str]) -> None:
    vendor, url = fake
    table = run(adapter(url), lambda a: a.calendar("SZ", D(2024, 12, 23), D(2024, 12, 25)))
    assert vendor.calls[0].query == {"market": "CN", "beginDay": "20241223", "endDay": "20241225"}
    assert [(r["trade_date"], r["is_open"], r["is_half_day"]) for r in table.to_pylist()] == [
        (D(2024, 12, 23), True, False),
        (D(2024, 12, 24), True, True),  # a half day is open too
        (D(2024, 12, 25), False, False),
    ]


def test_capability_table() -> None:
    caps = adapter("http://unused").capabilities()
    for market in ("SH", "SZ", "HK", "US", "CC", "FX", "INFOWAY"):
        for freq in ("1m", "5m", "15m", "30m", "1h"):
            cap = caps.require("klines", market, freq)
            assert cap.symbols_per_call == 1 and cap.rows_per_call == 500 and not cap.depth
        for freq in ("1d", "1w", "1M"):
            assert caps.require("klines", market, freq).depth == {"1d": 500, "1w": 500, "1M": 500}
        assert caps.serves("instruments", market)
    assert {m for m in ("SH", "SZ", "HK", "US", "CC", "FX") if caps.serves("calendar", m)} == {
        "SH", "SZ", "HK", "US"}  # fmt: skip
    for dataset in ("balance_sheet", "future_varieties", "main_contracts"):
        assert not caps.serves(dataset)
    assert not caps.serves("klines", "BJ", "1d")
    assert (caps.rate.per_second, caps.rate.per_minute) == (1.0, 60.0)  # until /package/info
    assert adapter("http://unused", rate=4.0).capabilities().rate.per_minute == 240.0
    with pytest.raises(CapabilityError):
        run(
            adapter("http://unused"),
            lambda a: a.klines(["430047.BJ"], "1d", NOW.date(), NOW.date()),
        )


def test_plan_rate_is_read_once_unless_set(fake: tuple[FakeInfoway, str]) -> None:
    vendor, url = fake
    day = D(2026, 8, 14)

    async def twice(a: InfowayAdapter) -> list[tuple[int | None, float, int | None]]:
        await a.klines(["AAPL.US"], "1m", day, day)
        await a.klines(["AAPL.US"], "1d", day, day)
        assert a.http.governor is not None
        return [(lim.requests, lim.seconds, lim.in_flight) for lim in a.http.governor.limits]

    # apiNumPerSec 10; per minute 60 x 10; our own cap of 4 requests open at once.
    assert run(adapter(url), twice) == [(10, 1.0, None), (600, 60.0, None), (None, 1.0, 4)]
    assert vendor.package_calls == 1
    # ETL_INFOWAY_RATE: no plan read.
    assert run(adapter(url, rate=2.0), twice) == [(2, 1.0, None), (120, 60.0, None), (None, 1.0, 4)]
    assert vendor.package_calls == 1


def test_check(fake: tuple[FakeInfoway, str]) -> None:
    _, url = fake
    result = run(adapter(url), lambda a: a.check())
    assert result.success and result.response_time > 0
    assert (
        result.message
        == "plan Premium: 10 requests/s, 5 years of minute history, expires 2027-08-11"
    )
    with StubServer(lambda r: Reply(401, {"code": 401, "message": "Token invalid"})) as bad:
        refused = run(adapter(bad.url), lambda a: a.check())
    assert not refused.success and "Token invalid" in refused.message
    assert KEY not in refused.message


def test_paging_walks_back_with_exclusive_timestamps(fake: tuple[FakeInfoway, str]) -> None:
    """Three pages back from the end of the range; the third reaches before its start."""
    vendor, url = fake
    first = 1719538200  # 2024-06-28 09:30 Shanghai

    def page(start: int, n: int) -> Reply:
        rows = [{"t": str(start + 60 * i), "o": "1.0", "h": "1.0", "l": "1.0", "c": "1.0",
                 "v": "1", "vw": "1.0"} for i in reversed(range(n))]  # fmt: skip
        return Reply(body=envelope([{"s": "600000.SH", "respList": rows}]))

    # Bars every minute (a made-up 24 h market): 09:30 + 100 min .. + 599 min, then
    # 500 before each oldest bar; the third page reaches into the 27th.
    vendor.script = [page(first + m * 60, 500) for m in (100, -400, -900)]
    day = D(2024, 6, 28)
    got = run(
        adapter(url, now=dt.datetime(2024, 6, 29, tzinfo=UTC)),
        lambda a: a.klines(["600000.SH"], "1m", day, day),
    )
    stamps = [c.json().get("timestamp") for c in vendor.calls]
    # 00:00 Shanghai on the 29th, then each page's oldest t
    assert stamps == [1719590400, first + 100 * 60, first - 400 * 60]
    # 1000 bars of the first two pages, and 170 of the third from 00:00 (09:30 - 570 min).
    assert got.table.num_rows == 1170 and got.requests == 3
    assert got.answered == [Span("600000.SH", day, day)]


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        # HTTP 200 business errors: this symbol fails, the call goes on.
        (envelope(None, 500, "All product not exists"), "failure"),
        (envelope(None, 500, "Param error：klineType"), "failure"),
        # The plan's history ends: unavailable, not a failure.
        (envelope(None, 500, "Timestamp limit error"), "unavailable"),
        # Daily quota: the task stops (QuotaExhausted).
        (envelope(None, 502, "Request for day limit"), QuotaExhausted),
        # A missing, wrong or expired key: exit 3.
        ({"code": 401, "message": "Token invalid", "timestamp": 1786778697472}, AuthError),
        # schema_drift:rename (t -> ts): nothing of the answer is kept.
        (envelope([{"s": "AAPL.US", "respList": [{"ts": "1786737540", "o": "1", "h": "1",
                                                  "l": "1", "c": "1", "v": "1"}]}]),
         SchemaError),
    ],
)  # fmt: skip
def test_kline_errors(fake: tuple[FakeInfoway, str], reply: Any, outcome: Any) -> None:
    vendor, url = fake
    status = 401 if isinstance(reply, dict) and reply.get("code") == 401 else 200
    vendor.script = [Reply(status, reply)]
    day = D(2026, 8, 14)
    call = lambda a: a.klines(["AAPL.US"], "1m", day, day)  # noqa: E731
    if isinstance(outcome, type):
        with pytest.raises(outcome) as info:
            run(adapter(url), call)
        assert KEY not in str(info.value)
        return
    got = run(adapter(url), call)
    assert got.table.num_rows == 0 and not got.answered
    if outcome == "failure":
        assert [(f.symbol, f.start, f.end) for f in got.failures] == [("AAPL.US", day, day)]
        assert isinstance(got.failures[0], Failure) and "AAPL.US" in got.failures[0].reason
    else:
        assert [(u.symbol, u.start, u.end) for u in got.unavailable] == [("AAPL.US", day, day)]


def test_transient_answers_are_retried(fake: tuple[FakeInfoway, str]) -> None:
    vendor, url = fake
    vendor.script = [
        Reply(429, {"detail": "Rate limit exceeded"}),
        Reply(200, {"detail": "Rate limit exceeded"}),
        Reply(200, envelope(None, 501, "Request exceed limit")),
        Reply(524, "<html><body>A timeout occurred</body></html>", {"Content-Type": "text/html"}),
    ]
    day = D(2026, 8, 14)
    got = run(adapter(url, retries=4), lambda a: a.klines(["AAPL.US"], "1m", day, day))
    assert got.table.num_rows == 1 and got.requests == 5
    assert json.loads(vendor.calls[-1].body)["codes"] == "AAPL.US"


def test_history_ending_mid_range_is_unavailable_before_the_oldest_day(
    fake: tuple[FakeInfoway, str],
) -> None:
    """A full page, then ``Timestamp limit error``: the day of the oldest bar received may
    be partial, so it and the days before are unavailable; the newer days are answered."""
    vendor, url = fake
    newest = 1719590400 - 3600  # 2024-06-28 23:00 Shanghai; hourly bars back from it
    rows = [{"t": str(newest - 3600 * i), "o": "1.0", "h": "1.0", "l": "1.0", "c": "1.0",
             "v": "1", "vw": "1.0"} for i in range(500)]  # fmt: skip
    vendor.script = [
        Reply(body=envelope([{"s": "BTCUSDT", "respList": rows}])),
        Reply(body=envelope(None, 500, "Timestamp limit error")),
    ]
    first, last = D(2024, 6, 1), D(2024, 6, 28)
    got = run(
        adapter(url, now=dt.datetime(2024, 6, 29, tzinfo=UTC)),
        lambda a: a.klines(["BTCUSDT.CC"], "1h", first, last),
    )
    # The oldest bar, 499 hours before the newest, opens on 8 June at 04:00 Shanghai.
    why = "older than Infoway's minute history (Timestamp limit error)"
    assert got.unavailable == [Unavailable("BTCUSDT.CC", first, D(2024, 6, 8), why)]
    assert got.answered == [Span("BTCUSDT.CC", D(2024, 6, 9), last)]
    assert got.table.num_rows == 20 * 24  # 9 to 28 June, every hour (crypto never closes)
    assert [c.path for c in vendor.calls] == ["/crypto/v2/batch_kline"] * 2
