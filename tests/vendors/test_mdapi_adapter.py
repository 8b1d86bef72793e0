"""The mdapi adapter against a scripted server: what it sends (gzip, codes, rows, paging),
how it books answers, and the errors table (IP refusal, unknown product, 429 and its ban)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, ClassVar, TypeVar

import pytest

from etl.config import VendorSettings
from etl.errors import AuthError, CapabilityError, TransientVendorError
from etl.vendors.base import InstrumentMap, Span, Unavailable, VendorContext
from etl.vendors.mdapi import MdapiAdapter
from tests.vendors._stub import Reply, Request, StubServer

T = TypeVar("T")
D = dt.date
UTC = dt.UTC
NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=UTC)  # Friday 20:00 in Shanghai


def ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


def envelope(data: Any, code: int = 200, msg: str = "success") -> Reply:
    body: dict[str, Any] = {"code": code, "msg": msg}
    if code == 200:
        body["data"] = data
    return Reply(body=body, gzip=True)


class FakeMdapi:
    """Categories 4 (230 codes: three pages) and 7, and bars for a few codes; ``next`` holds
    replies to send first, whatever is asked."""

    def __init__(self) -> None:
        self.lists = {
            "4": [{"code": f"c{i:03d}usdt", "name": f"C{i:03d}/USDT"} for i in range(230)],
            "7": [{"code": "HX_HSI", "name": "恒指2512"}, {"code": "hf_OIL", "name": "布伦特"}],
            "1": [{"code": "fx_sgbpusd", "name": "英镑美元"}],
        }
        bar = [ms(2024, 6, 28, 11), 1.0, 2.0, 0.5, 1.5, "2024-06-28 19:00:00", 7]
        self.bars: dict[str, list[Any]] = {"btcusdt": [bar], "hf_OIL": [bar], "HX_HSI": [bar]}
        self.next: list[Reply] = []

    def __call__(self, request: Request) -> Reply:
        if self.next:
            return self.next.pop(0)
        query = request.query
        if request.path == "/getCategory.php":
            ids = [{"id": i, "name": n} for i, n in (("1", "外汇"), ("4", "数字货币"), ("7", "x"))]
            return envelope({"list": ids})
        if request.path == "/getSymbolList.php":
            items = self.lists.get(query["category"], [])
            page, size = int(query["page"]), int(query["pageSize"])
            return envelope({"total": len(items), "list": items[(page - 1) * size : page * size]})
        if request.path == "/redis.php":
            if query["code"] not in self.bars:
                return envelope(None, 404, "产品不存在")
            return Reply(body=self.bars[query["code"]], gzip=True)
        return Reply(404, b"nginx")


@pytest.fixture
def fake() -> Iterator[tuple[FakeMdapi, StubServer]]:
    vendor = FakeMdapi()
    with StubServer(vendor) as server:
        yield vendor, server


def adapter(url: str, codes: dict[str, str] | None = None) -> MdapiAdapter:
    settings = VendorSettings(
        "mdapi", base_url=url, extra={"backoff_base": 0.01, "backoff_jitter": 0.0}
    )
    context = VendorContext(settings, now=lambda: NOW, instruments=InstrumentMap(codes or {}))
    return MdapiAdapter(context)


def run(ad: MdapiAdapter, fn: Callable[[MdapiAdapter], Awaitable[T]]) -> T:
    async def go() -> T:
        try:
            return await fn(ad)
        finally:
            await ad.aclose()

    return asyncio.run(go())


def test_no_key_and_gzip_always(fake: tuple[FakeMdapi, StubServer]) -> None:
    _, server = fake
    assert MdapiAdapter.required_settings == ()
    day = D(2024, 6, 28)
    batch = run(adapter(server.url), lambda a: a.klines(["BTCUSDT.CC"], "1h", day, day))
    assert batch.table.num_rows == 1  # the gzipped answer was read
    assert [r.headers["accept-encoding"] for r in server.requests] == ["gzip"]
    assert "sign" not in server.requests[0].query and "stamp" not in server.requests[0].query


def test_instruments_are_paged_by_100_within_the_list_limit(
    fake: tuple[FakeMdapi, StubServer],
) -> None:
    _, server = fake

    async def twice(a: MdapiAdapter) -> tuple[Any, Any]:
        return await a.instruments("CC"), await a.instruments("MDAPI")

    crypto, other = run(adapter(server.url), twice)
    pages = [(r.query["category"], r.query["page"], r.query["pageSize"])
             for r in server.requests if r.path == "/getSymbolList.php"]  # fmt: skip
    assert pages == [("1", "1", "100"), ("4", "1", "100"), ("4", "2", "100"), ("4", "3", "100"),
                     ("7", "1", "100")]  # fmt: skip
    assert len(server.requests) == 6  # the second call reused the listing
    assert crypto.num_rows == 230 and set(crypto.column("market").to_pylist()) == {"CC"}
    assert crypto.to_pylist()[0]["symbol"] == "C000USDT.CC"
    assert other.column("vendor_code").to_pylist() == ["HX_HSI", "hf_OIL"]
    assert other.column("symbol").to_pylist() == ["HX_HSI.MDAPI", "HF_OIL.MDAPI"]
    # list endpoints: 2 per sliding second together
    arrivals = [r.at for r in server.requests]
    assert all(later - first >= 1.0 for first, later in zip(arrivals, arrivals[2:], strict=False))


def test_kline_requests_and_booking(fake: tuple[FakeMdapi, StubServer]) -> None:
    vendor, server = fake
    vendor.bars["btcusdt"] = [  # newest first; the 20:00 bar is still forming at NOW
        [ms(2024, 6, 28, 12), 3.0, 3.0, 3.0, 3.0, "2024-06-28 20:00:00", 1],
        [ms(2024, 6, 28, 11), 1.0, 2.0, 0.5, 1.5, "2024-06-28 19:00:00", 7],
        [ms(2024, 6, 27, 16), 1.0, 2.0, 0.5, 1.4, "2024-06-28 00:00:00", 7],
    ]
    symbols = ["BTCUSDT.CC", "HF_OIL.MDAPI", "RT_XX.MDAPI"]
    ad = adapter(server.url, {"HF_OIL.MDAPI": "hf_OIL"})
    batch = run(ad, lambda a: a.klines(symbols, "1h", D(2024, 6, 20), D(2024, 6, 28)))
    asked = sorted((r.query["code"], r.query["time"], r.query["rows"]) for r in server.requests)
    assert asked == [("RT_XX", "1h", "300"), ("btcusdt", "1h", "300"), ("hf_OIL", "1h", "300")]
    btc = [r for r in batch.table.to_pylist() if r["symbol"] == "BTCUSDT.CC"]
    assert [(r["ts"], r["trade_date"], r["close"]) for r in btc] == [
        (dt.datetime(2024, 6, 27, 16, tzinfo=UTC), D(2024, 6, 28), 1.4),  # 00:00 local
        (dt.datetime(2024, 6, 28, 11, tzinfo=UTC), D(2024, 6, 28), 1.5),  # 19:00 local
    ]
    window = "beyond mdapi's window (only the latest 300 1h bars)"
    assert Unavailable("BTCUSDT.CC", D(2024, 6, 20), D(2024, 6, 27), window) in batch.unavailable
    assert Unavailable("BTCUSDT.CC", D(2024, 6, 28), D(2024, 6, 28), "not complete yet at now") in (
        batch.unavailable
    )
    assert batch.answered == []  # nothing finished inside the window
    (failure,) = batch.failures
    assert failure.symbol == "RT_XX.MDAPI" and "产品不存在" in failure.reason
    assert "guessed" in failure.reason and "instruments sync" in failure.reason
    assert batch.requests == 3


def test_monthly_rows_and_refusals_before_any_request(fake: tuple[FakeMdapi, StubServer]) -> None:
    vendor, server = fake
    vendor.bars["btcusdt"] = [[ms(2024, 4, 30, 16), 1.0, 2.0, 0.5, 1.5, "2024-05-01 00:00:00", 7]]
    months = (D(2024, 1, 1), D(2024, 5, 31))
    batch = run(adapter(server.url), lambda a: a.klines(["BTCUSDT.CC"], "1M", *months))
    assert server.requests[0].query["rows"] == "100"
    assert batch.answered == [Span("BTCUSDT.CC", D(2024, 5, 1), D(2024, 5, 31))]
    week = (D(2024, 6, 1), D(2024, 6, 2))
    with pytest.raises(CapabilityError, match="1w"):  # mdapi has no weekly bars
        run(adapter(server.url), lambda a: a.klines(["BTCUSDT.CC"], "1w", *week))
    with pytest.raises(CapabilityError, match="SH"):  # the whole call is refused
        run(adapter(server.url), lambda a: a.klines(["BTCUSDT.CC", "600000.SH"], "1d", *week))
    assert len(server.requests) == 1


def test_ip_refusal_is_an_auth_error(fake: tuple[FakeMdapi, StubServer]) -> None:
    vendor, server = fake
    vendor.next = [envelope(None, 403, "IP未授权")] * 2
    day = D(2024, 6, 28)
    with pytest.raises(AuthError) as info:
        run(adapter(server.url), lambda a: a.klines(["BTCUSDT.CC"], "1h", day, day))
    assert info.value.exit_code == 3 and "IP未授权" in str(info.value)
    assert "allow-list" in str(info.value)
    check = run(adapter(server.url), lambda a: a.check())
    assert not check.success and "allow-list" in check.message
    assert len(server.requests) == 2  # never retried
    assert run(adapter(server.url), lambda a: a.check()).success


class QuickBan(MdapiAdapter):
    ban_seconds: ClassVar[float] = 0.6  # mdapi's is 10 s; the same logic, shorter


def test_429_bans_only_that_bucket_then_retries(fake: tuple[FakeMdapi, StubServer]) -> None:
    vendor, server = fake
    too_many = envelope(None, 429, "请求过于频繁")

    def handler(request: Request) -> Reply:
        if request.query.get("code") == "btcusdt" and not any(
            r.query.get("code") == "btcusdt" for r in server.requests[:-1]
        ):
            return too_many
        return vendor(request)

    server.handler = handler
    day = D(2024, 6, 28)

    async def both(a: MdapiAdapter) -> Any:
        first = asyncio.create_task(a.klines(["BTCUSDT.CC"], "1h", day, day))
        await asyncio.sleep(0.2)
        other = await a.klines(["HX_HSI.MDAPI"], "1h", day, day)  # another bucket: not banned
        return await first, other

    settings = VendorSettings("mdapi", base_url=server.url, extra={"backoff_jitter": 0.0})
    (btc, hsi) = run(QuickBan(VendorContext(settings, now=lambda: NOW)), both)
    refused, hx, retried = (server.requests[i] for i in range(3))
    assert (refused.query["code"], hx.query["code"], retried.query["code"]) == (
        "btcusdt", "HX_HSI", "btcusdt",
    )  # fmt: skip
    assert retried.at - refused.at >= 0.6 > hx.at - refused.at
    assert btc.table.num_rows == 1 and btc.requests == 2 and hsi.table.num_rows == 1
    assert len(server.requests) == 3


def test_server_errors_are_retried_three_times(fake: tuple[FakeMdapi, StubServer]) -> None:
    vendor, server = fake
    vendor.next = [Reply(500, b"")] * 4
    day = D(2024, 6, 28)
    with pytest.raises(TransientVendorError, match="HTTP 500"):
        run(adapter(server.url), lambda a: a.klines(["BTCUSDT.CC"], "1h", day, day))
    assert len(server.requests) == 4
    vendor.next = [Reply(200, b"<br />\n<b>Warning</b>: Redis::connect()"), Reply(500, b"")]
    batch = run(adapter(server.url), lambda a: a.klines(["BTCUSDT.CC"], "1h", day, day))
    assert batch.table.num_rows == 1 and batch.requests == 3


def test_quote(fake: tuple[FakeMdapi, StubServer]) -> None:
    vendor, server = fake
    body = {"StockCode": "btcusdt", "Price": 2.5, "Open": 2.0, "LastClose": 2.1, "High": 3.0,
            "Low": 1.0, "Time": "2024-06-28 20:00:00", "LastTime": "1719576000",
            "TotalVol": 9}  # fmt: skip
    vendor.next = [envelope({"body": body})]
    quote = run(adapter(server.url), lambda a: a.quote("BTCUSDT.CC"))
    assert (quote.price, quote.time) == (2.5, NOW)
    assert server.requests[0].path == "/getQuote.php" and server.requests[0].query == {
        "code": "btcusdt"
    }
    assert quote.total_volume == 9.0
