"""The mdapi emulator on the wire: endpoints, row order and types, errors verbatim, per-bucket
limits with the 10 s ban (on a hand-driven clock), and every fault's mdapi wire form."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from etl.emulators.limits import Limiter
from etl.emulators.mdapi import MdapiEmulator
from etl.emulators.server import EmulatorServer
from etl.emulators.testing import options, running
from etl.emulators.wire import Request
from etl.errors import BadInputError
from etl.synthetic import klines_for_any, spot_price

UTC = dt.UTC
NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=UTC)  # Friday 20:00 in Shanghai
SHANGHAI = ZoneInfo("Asia/Shanghai")
LISTS = ("/getCategory.php", "/getSymbolList.php")


class Vendor:
    """An emulator answered directly (no sockets), on a clock the test moves by hand."""

    def __init__(self, faults: str = "") -> None:
        self.emulator = MdapiEmulator(options(now=NOW, faults=faults))
        self.t = 0.0
        self.emulator.limiter = Limiter(clock=lambda: self.t)

    def get(self, path: str, *, at: float | None = None, **params: object) -> tuple[int, Any]:
        """``GET path`` at clock ``at`` (default: 1 s after the previous one, so that no
        limit trips unless a test means it): HTTP status and the JSON body (or raw bytes)."""
        self.t = self.t + 1.0 if at is None else at
        query = {k: str(v) for k, v in params.items()}
        outcome = self.emulator.answer(Request("GET", path, query, {}, b"", "10.0.0.1"))
        assert outcome.reply is not None
        try:
            return outcome.reply.status, json.loads(outcome.reply.body)
        except ValueError:
            return outcome.reply.status, outcome.reply.body

    def stats(self) -> dict[str, Any]:
        return self.emulator.stats.snapshot()


def local(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def test_category_and_symbol_lists() -> None:
    v = Vendor()
    names = ["外汇", "国际期货", "国内期货", "数字货币", "国际股指期货"]
    listed = [{"id": i, "name": n} for i, n in zip("12347", names, strict=True)]
    assert v.get("/getCategory.php") == (
        200, {"code": 200, "msg": "success", "data": {"list": listed}},
    )  # fmt: skip
    _, indices = v.get("/getSymbolList.php", category=7)  # pageSize 10 by default
    assert indices["data"]["total"] == 8
    assert [i["code"] for i in indices["data"]["list"]] == [
        "HX_HSI", "ZY_DAX", "HX_MHI", "HX_CN", "HX_NQ", "HX_ES", "ZY_YM", "TW_TXF",
    ]  # fmt: skip
    _, page2 = v.get("/getSymbolList.php", category=4, page=2, pageSize=10)
    assert (page2["data"]["total"], len(page2["data"]["list"])) == (16, 6)
    assert page2["data"]["list"][0] == {"code": "linkusdt", "name": "LINK/USDT"}
    _, clamped = v.get("/getSymbolList.php", category=4, pageSize=500)  # above 100: clamped
    assert len(clamped["data"]["list"]) == 16
    _, past = v.get("/getSymbolList.php", category=4, page=3, pageSize=10)
    assert past["data"] == {"total": 16, "list": []}
    _, unknown = v.get("/getSymbolList.php", category=9)
    assert unknown["data"] == {"total": 0, "list": []}
    for bad in ({}, {"category": 4, "page": 0}, {"category": 4, "pageSize": "ten"}):
        assert v.get("/getSymbolList.php", **bad) == (200, {"code": 400, "msg": "参数错误"})


def test_redis_rows_are_the_latest_bars_newest_first() -> None:
    v = Vendor()
    status, rows = v.get("/redis.php", code="btcusdt", time="1m")  # rows: the maximum
    assert status == 200 and len(rows) == 600 and all(len(r) == 7 for r in rows)
    assert [r[0] for r in rows] == sorted((r[0] for r in rows), reverse=True)
    assert all(r[5] == local(r[0]) for r in rows)  # element 5 is element 0 in UTC+8
    # the newest row is the 20:00 bar, still forming at NOW: the price at NOW is its close
    assert rows[0][0] == int(NOW.timestamp() * 1000) and rows[0][5] == "2024-06-28 20:00:00"
    assert rows[0][4] == spot_price("BTCUSDT.CC", NOW)
    done = klines_for_any("BTCUSDT.CC", "1m", dt.date(2024, 6, 27), dt.date(2024, 6, 28), NOW)
    expected = [
        [int(done.ts[i]) // 1000, done.open[i], done.high[i], done.low[i], done.close[i]]
        for i in range(len(done) - 1, len(done) - 600, -1)
    ]
    assert [r[:5] for r in rows[1:]] == expected  # then the complete bars, as synthesised
    assert [float(r[6]) for r in rows[1:3]] == [float(done.volume[-1]), float(done.volume[-2])]
    _, fx = v.get("/redis.php", code="fx_sgbpusd", time="1h", rows=1000)  # clamped to 300
    assert len(fx) == 300 and {r[6] for r in fx} == {0}  # forex has no volume
    _, few = v.get("/redis.php", code="HX_HSI", time="5m", rows=5)
    assert len(few) == 5
    _, months = v.get("/redis.php", code="btcusdt", time="1M")
    assert len(months) == 82  # since 2017-09 (synthetic BTC): fewer than 100 months exist
    assert months[0][5] == "2024-06-01 00:00:00" and months[-1][5] == "2017-09-01 00:00:00"


@pytest.mark.parametrize(
    ("params", "answer"),
    [
        ({"time": "1m"}, {"code": 400, "msg": "参数错误"}),  # no code
        ({"code": "btcusdt", "time": "1w"}, {"code": 400, "msg": "参数错误"}),  # no 1w
        ({"code": "btcusdt"}, {"code": 400, "msg": "参数错误"}),  # no time
        ({"code": "btcusdt", "time": "1m", "rows": 0}, {"code": 400, "msg": "参数错误"}),
        ({"code": "btcusdt", "time": "1m", "rows": "1.5"}, {"code": 400, "msg": "参数错误"}),
        ({"code": "btcusdt", "time": "1m", "rows": ""}, {"code": 400, "msg": "参数错误"}),
        ({"code": "BTCUSDT", "time": "1m"}, {"code": 404, "msg": "产品不存在"}),  # codes are exact
    ],
)
def test_redis_errors_are_http_200_envelopes(params: dict[str, object], answer: Any) -> None:
    assert Vendor().get("/redis.php", **params) == (200, answer)


def test_quote() -> None:
    v = Vendor()
    _, doc = v.get("/getQuote.php", code="btcusdt")
    body = doc["data"]["body"]
    assert list(body)[:8] == ["StockCode", "Price", "Open", "LastClose", "High", "Low", "Time",
                              "LastTime"]  # fmt: skip
    assert (body["StockCode"], body["Price"]) == ("btcusdt", spot_price("BTCUSDT.CC", NOW))
    assert (body["Time"], body["LastTime"]) == ("2024-06-28 20:00:00", "1719576000")
    assert body["Low"] <= body["Price"] <= body["High"]
    levels = [next(iter(level)) for level in body["Depth"]["Buy"]]
    assert levels == ["BP1", "BP2", "BP3", "BP4", "BP5"]
    assert [t["direction"] for t in body["BS"]] == [2, 1] and body["Info"] == []
    _, fx = v.get("/getQuote.php", code="fx_seurusd")
    assert fx["data"]["body"]["TotalVol"] == 0
    assert v.get("/getQuote.php", code="nope") == (200, {"code": 404, "msg": "产品不存在"})
    assert v.get("/getQuote.php") == (200, {"code": 400, "msg": "参数错误"})


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with running(MdapiEmulator, now=NOW) as srv:
        yield srv


def test_gzip_when_asked_and_unknown_paths(server: EmulatorServer) -> None:
    url = server.base_url + "/getQuote.php?code=ethusdt"
    with httpx.Client() as client:
        zipped = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert json.loads(zipped.content)["code"] == 200  # httpx decoded it
        raw = client.get(url, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in raw.headers and raw.json()["code"] == 200
        assert client.get(server.base_url + "/market").status_code == 404
        assert client.post(server.base_url + "/redis.php").status_code == 405
    with (
        httpx.Client(headers={"Accept-Encoding": "gzip"}) as client,
        client.stream("GET", server.base_url + "/getCategory.php") as reply,
    ):
        body = b"".join(reply.iter_raw())
    assert json.loads(gzip.decompress(body))["data"]["list"][0]["id"] == "1"


def test_limits_per_bucket_and_the_ban() -> None:
    v = Vendor()
    too_many = (200, {"code": 429, "msg": "请求过于频繁"})
    for i in range(5):
        assert v.get("/redis.php", at=0.1 * i, code="btcusdt", time="1m", rows=1)[0] == 200
    assert v.get("/redis.php", at=0.5, code="btcusdt", time="1m", rows=1) == too_many  # 6th
    # other buckets are not affected: another code, or quotes of the same code
    assert v.get("/redis.php", at=0.6, code="ethusdt", time="1m", rows=1)[1][0][0] > 0
    assert v.get("/getQuote.php", at=0.6, code="btcusdt")[1]["code"] == 200
    # the ban runs 10 s from the refused request; requests in it do not extend it
    assert v.get("/redis.php", at=5.0, code="btcusdt", time="1m", rows=1) == too_many
    assert v.get("/redis.php", at=10.4, code="btcusdt", time="1m", rows=1) == too_many
    assert v.get("/redis.php", at=10.6, code="btcusdt", time="1m", rows=1)[0] == 200
    assert [v.get("/getQuote.php", at=20 + 0.1 * i, code="xrpusdt")[1]["code"]
            for i in range(4)] == [200, 200, 200, 429]  # fmt: skip
    assert [v.get(LISTS[i % 2], at=40 + 0.1 * i, category=4)[1]["code"]
            for i in range(3)] == [200, 200, 429]  # fmt: skip
    stats = v.stats()
    assert stats["violations"] == 5 and stats["by_path"]["/redis.php"]["violations_banned"] == 2


@pytest.mark.parametrize("fault", ["ip_refused", "auth_expired"])
def test_ip_refused_everywhere(fault: str) -> None:
    v = Vendor(fault)
    for path, params in (("/getCategory.php", {}), ("/getSymbolList.php", {"category": 1}),
                         ("/getQuote.php", {"code": "btcusdt"}),
                         ("/redis.php", {"code": "btcusdt", "time": "1d"})):  # fmt: skip
        assert v.get(path, **params) == (200, {"code": 403, "msg": "IP未授权"})


def test_rate_limit_burst_answers_429_and_bans_that_bucket() -> None:
    v = Vendor("rate_limit_burst@1")
    too_many = (200, {"code": 429, "msg": "请求过于频繁"})
    assert v.get("/redis.php", at=0.0, code="btcusdt", time="1d") == too_many
    assert v.get("/redis.php", at=9.0, code="btcusdt", time="1d") == too_many  # banned
    assert v.get("/redis.php", at=9.0, code="ethusdt", time="1d")[0] == 200
    assert v.get("/redis.php", at=10.1, code="btcusdt", time="1d")[0] == 200
    stats = v.stats()
    assert stats["faults_by_name"] == {"rate_limit_burst": 1} and stats["violations"] == 1


def rows_with(fault: str, **params: object) -> Any:
    return Vendor(fault).get("/redis.php", code="btcusdt", time="1h", rows=40, **params)[1]


def test_bar_faults() -> None:
    plain = rows_with("")
    assert rows_with("http_500") == b""
    assert (
        Vendor("http_500")
        .emulator.answer(
            Request("GET", "/redis.php", {"code": "btcusdt", "time": "1h"}, {}, b"", "x")
        )
        .reply.status
        == 500
    )  # type: ignore[union-attr]
    broken = rows_with("malformed_json")
    assert isinstance(broken, bytes) and broken.startswith(b"<br />")
    assert rows_with("out_of_order_bars:reversed") == plain[::-1]  # oldest first
    shuffled = rows_with("out_of_order_bars")
    assert shuffled != plain and sorted(shuffled) == sorted(plain)
    gappy = rows_with("missing_bars")
    assert len(gappy) == 36 and gappy[0] == plain[0] and gappy[-1] == plain[-1]
    doubled = rows_with("duplicate_bars")
    assert len(doubled) == 44 and {tuple(r) for r in doubled} == {tuple(r) for r in plain}
    conflict = rows_with("duplicate_bars:conflict")
    closes: dict[int, set[float]] = {}
    for r in conflict:
        closes.setdefault(r[0], set()).add(r[4])
    assert sum(len(c) == 2 for c in closes.values()) == 4
    negative = rows_with("bad_prices:negative")
    assert sum(min(r[1:5]) < 0 for r in negative) == 4
    high_low = rows_with("bad_prices:high_low")
    assert sum(r[2] < r[3] for r in high_low) == 4
    raw = Vendor("bad_prices:nan").emulator.answer(
        Request("GET", "/redis.php", {"code": "btcusdt", "time": "1h", "rows": "40"}, {}, b"", "x")
    )
    assert raw.reply is not None and raw.reply.body.count(b",NaN,") == 4  # the bare token


def test_schema_drift() -> None:
    extra = rows_with("schema_drift:extra")
    assert {len(r) for r in extra} == {8} and {r[7] for r in extra} == {0}
    renamed = rows_with("schema_drift:rename")
    assert list(renamed[0]) == ["ts", "open", "high", "low", "close", "time", "volume"]
    _, quote = Vendor("schema_drift:extra").get("/getQuote.php", code="btcusdt")
    assert quote["data"]["body"]["Amplitude"] == 0.0
    _, quote = Vendor("schema_drift:rename").get("/getQuote.php", code="btcusdt")
    assert "price" in quote["data"]["body"] and "Price" not in quote["data"]["body"]
    _, listed = Vendor("schema_drift:rename").get("/getCategory.php")
    assert listed["data"]["list"][0] == {"id": "1", "name": "外汇"}  # lists are not data


def test_the_products_option_lists_and_serves_more_coins() -> None:
    """``--option products=N`` (a larger universe for benchmarks): N more crypto pairs,
    listed with the others and served like them; a bad N is refused."""
    vendor = Vendor()
    vendor.emulator = MdapiEmulator(options(now=NOW, products="3"))
    status, body = vendor.get("/getSymbolList.php", category="4", pageSize=100)
    codes = [item["code"] for item in body["data"]["list"]]
    assert codes[-3:] == ["c0001usdt", "c0002usdt", "c0003usdt"] and len(codes) == 16 + 3
    status, rows = vendor.get("/redis.php", code="c0003usdt", time="1h", rows=5)
    assert status == 200 and len(rows) == 5
    assert Vendor().get("/redis.php", code="c0003usdt", time="1h", rows=5)[1]["code"] == 404
    with pytest.raises(BadInputError):
        MdapiEmulator(options(now=NOW, products="many"))
