"""The Infoway emulator on the wire (docs/vendors/infoway.md): both kline forms, paging and the
forming bar, the basic endpoints, auth, business errors verbatim, and limits counted as
violations."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from etl.emulators import EmulatorServer
from etl.emulators.infoway import InfowayEmulator
from etl.emulators.testing import running
from etl.synthetic import klines_for_any

pytestmark = pytest.mark.integration

NOW = dt.datetime(2024, 6, 28, 2, 0, tzinfo=dt.UTC)  # Friday, 10:00 in Shanghai: a session runs
_keys = itertools.count(1)


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with running(InfowayEmulator, now=NOW) as emulator:
        yield emulator


@pytest.fixture
def client(server: EmulatorServer) -> Iterator[httpx.Client]:
    """A client with a key of its own (limits are per key: tests never share a budget)."""
    headers = {"apiKey": f"key-{next(_keys)}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as c:
        yield c


def klines(client: httpx.Client, market: str = "stock", **body: Any) -> Any:
    reply = client.post(f"/{market}/v2/batch_kline", json=body)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_both_forms_serve_identical_data(client: httpx.Client) -> None:
    cut = 1719450000
    post = klines(client, codes="600519.SH,00700.HK", klineType=2, klineNum=2, timestamp=cut)
    get = client.get("/stock/batch_kline/2/2/600519.SH%2C00700.HK", params={"timestamp": cut})
    assert get.status_code == 200 and get.json()["data"] == post["data"]
    assert post["ret"] == 200 and post["msg"] == "success" and len(post["traceId"]) == 36


def test_one_code_pages_newest_first_and_equal_the_generator(client: httpx.Client) -> None:
    cut = 1719453600  # 2024-06-27 02:00Z = 10:00 Shanghai, exclusive
    doc = klines(client, codes="600519.SH", klineType=1, klineNum=120, timestamp=cut)
    ((element),) = doc["data"]
    rows = element["respList"]
    assert element["s"] == "600519.SH" and len(rows) == 120
    stamps = [int(r["t"]) for r in rows]
    assert stamps == sorted(stamps, reverse=True) and stamps[0] == cut - 60  # 09:59
    assert set(rows[0]) == {"t", "o", "h", "l", "c", "v", "vw", "pc", "pca"}
    assert all(isinstance(v, str) for r in rows for v in r.values())
    made = klines_for_any("600519.SH", "1m", dt.date(2024, 6, 26), dt.date(2024, 6, 27), NOW)
    want = {int(t) // 1_000_000: (o, c, v, a) for t, o, c, v, a in
            zip(made.ts, made.open, made.close, made.volume, made.amount, strict=True)}  # type: ignore[arg-type]  # fmt: skip
    for r in rows:
        assert (float(r["o"]), float(r["c"]), float(r["v"]), float(r["vw"])) == want[int(r["t"])]
    assert rows[0]["o"].count(".") == 1 and len(rows[0]["o"].split(".")[1]) >= 3  # "27.090"


def test_several_codes_get_their_two_latest_in_request_order(client: httpx.Client) -> None:
    doc = klines(client, codes="AAPL.US,BTCUSDT,NOPE.US,BRK.B.US", klineType=5, klineNum=100)
    # BTCUSDT is crypto (another market than the path's), NOPE.US unknown: left out.
    assert [e["s"] for e in doc["data"]] == ["AAPL.US", "BRK.B.US"]
    assert all(len(e["respList"]) == 2 for e in doc["data"])
    known = klines(client, "crypto", codes="BTCUSDT", klineType=1, klineNum=1)
    assert known["data"][0]["s"] == "BTCUSDT"


def test_forming_bar_heads_the_list_while_a_session_runs(client: httpx.Client) -> None:
    (element,) = klines(client, codes="600000.SH", klineType=1, klineNum=3)["data"]
    newest, *done = [int(r["t"]) for r in element["respList"]]
    assert newest == int(NOW.timestamp())  # the 10:00 bar has just opened
    made = klines_for_any("600000.SH", "1m", dt.date(2024, 6, 28), dt.date(2024, 6, 28), NOW)
    finished = {int(t) // 1_000_000 for t in made.ts}
    assert newest not in finished and set(done) <= finished
    (day,) = klines(client, codes="600000.SH", klineType=8, klineNum=1)["data"]
    assert day["respList"][0]["t"] == "1719504000"  # 2024-06-28 00:00 Shanghai: forming


def test_timestamp_is_ignored_for_day_bars_and_limited_for_minutes(client: httpx.Client) -> None:
    a = klines(client, codes="AAPL.US", klineType=8, klineNum=3)["data"]
    b = klines(client, codes="AAPL.US", klineType=8, klineNum=3, timestamp=1500000000)["data"]
    assert a == b
    five_years = int(dt.datetime(2019, 6, 28, 2, 0, tzinfo=dt.UTC).timestamp())
    old = klines(client, codes="AAPL.US", klineType=5, klineNum=3, timestamp=five_years - 1)
    assert (old["ret"], old["msg"], old["data"]) == (500, "Timestamp limit error", None)
    edge = klines(client, codes="AAPL.US", klineType=5, klineNum=500, timestamp=five_years + 86_400)
    rows = edge["data"][0]["respList"]
    assert 0 < len(rows) < 500 and min(int(r["t"]) for r in rows) >= five_years  # history ends


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"codes": "AAPL.US", "klineType": 6, "klineNum": 1}, "Param error：klineType"),
        ({"codes": "AAPL.US", "klineNum": 1}, "Param error：klineType"),
        ({"codes": "AAPL.US", "klineType": 1, "klineNum": 0}, "Param error：klineNum"),
        ({"codes": "AAPL.US", "klineType": 1, "klineNum": 501},
         "Kline quantity exceeds the limit：500"),
        ({"codes": "", "klineType": 1, "klineNum": 1}, "Param error：codes"),
        ({"codes": ",".join(f"C{i}.US" for i in range(101)), "klineType": 1, "klineNum": 1},
         "Product quantity exceeds the limit：100"),
        ({"codes": "NOPE.US,ZZZZ.US", "klineType": 1, "klineNum": 1}, "All product not exists"),
        ({"codes": "AAPL.US", "klineType": 1, "klineNum": 1, "timestamp": "soon"},
         "Param error：timestamp"),
    ],
)  # fmt: skip
def test_business_errors_are_verbatim(client: httpx.Client, body: Any, message: str) -> None:
    doc = klines(client, **body)
    assert doc["ret"] == 500 and doc["msg"] == message and doc["data"] is None


def test_auth() -> None:
    with running(InfowayEmulator, now=NOW, api_key="the-key") as server:
        url = server.base_url + "/package/info"
        for headers in ({}, {"apiKey": ""}, {"apiKey": "other"}):
            reply = httpx.get(url, headers=headers)
            assert reply.status_code == 401
            assert reply.json() == {"code": 401, "message": "Token invalid",
                                    "timestamp": int(NOW.timestamp() * 1000)}  # fmt: skip
        assert httpx.get(url, headers={"apikey": "the-key"}).status_code == 200


def test_symbols_days_package_and_unknown_paths(client: httpx.Client) -> None:
    us = client.get("/common/basic/symbols", params={"type": "STOCK_US"}).json()["data"]
    assert {"symbol": "BRK.B.US", "name_cn": "", "name_hk": "",
            "name_en": "Berkshire Hathaway Inc. Class B", "index": False} in us  # fmt: skip
    cn = client.get("/common/basic/symbols", params={"type": "STOCK_CN", "symbols": "600519.SH"})
    assert cn.json()["data"] == [{"symbol": "600519.SH", "name_cn": "贵州茅台", "name_hk": "",
                                  "name_en": "", "index": False}]  # fmt: skip
    metal = client.get("/common/basic/symbols", params={"type": "METAL"}).json()["data"]
    assert [m["symbol"] for m in metal] == ["XAUUSD", "XAGUSD"]
    missing = client.get("/common/basic/symbols")
    assert missing.status_code == 400 and missing.json() == {
        "type": "about:blank", "title": "Bad Request", "status": 400,
        "detail": "Required parameter 'type' is not present.",
        "instance": "/common/basic/symbols"}  # fmt: skip
    days = client.get(
        "/common/basic/markets/trading_days",
        params={"market": "US", "beginDay": "20241125", "endDay": "20241129"},
    ).json()["data"]
    # Thanksgiving on the 28th; the day after closes early (in both lists).
    assert days == {"trade_days": ["20241125", "20241126", "20241127", "20241129"],
                    "half_trade_days": ["20241129"]}  # fmt: skip
    bad = client.get("/common/basic/markets/trading_days", params={"market": "JP"})
    assert bad.status_code == 400 and bad.json()["detail"] == (
        "Required parameter 'beginDay' is not present.")  # fmt: skip
    info = client.get("/package/info").json()["data"]
    assert {k: info[k] for k in ("packageName", "apiNumPerSec", "maxYearHisData")} == {
        "packageName": "Premium", "apiNumPerSec": 10, "maxYearHisData": 5}  # fmt: skip
    assert all(isinstance(v, int) for k, v in info.items() if k != "packageName")
    for path in ("/nope", "/japan/v2/batch_kline"):
        reply = client.post(path, json={"codes": "7203.JP", "klineType": 1, "klineNum": 1})
        assert (reply.status_code, reply.json()) == (404, {"detail": "Not Found"})


def test_limits_refuse_with_429_count_violations_and_not_the_refused() -> None:
    with running(InfowayEmulator, now=NOW, plan="Free") as server:  # 1/s, 60/min
        with httpx.Client(base_url=server.base_url, headers={"apiKey": "k"}) as c:
            first = time.monotonic()
            replies = [c.get("/package/info") for _ in range(2)]  # /package/info counts
            time.sleep(max(0.0, first + 1.05 - time.monotonic()))
            third = c.get("/package/info")  # the refused second one took no place
            other = httpx.get(server.base_url + "/package/info", headers={"apiKey": "k2"})
        stats = server.stats()
    assert [r.status_code for r in replies] == [200, 429] and third.status_code == 200
    assert replies[1].json() == {"detail": "Rate limit exceeded"}
    assert other.status_code == 200  # per key
    assert stats["violations"] == 1
    assert stats["by_path"]["/package/info"]["violations_rate"] == 1


def test_premium_windows() -> None:
    """Premium (default): 10 in any second and 600 in any minute, refused ones not counted."""
    emulator = InfowayEmulator()
    assert [(r.limit, r.window, r.count_refused) for r in emulator._rates] == [
        (10, 1.0, False), (600, 60.0, False)]  # fmt: skip
    with running(InfowayEmulator, now=NOW) as server:
        with httpx.Client(base_url=server.base_url, headers={"apiKey": "k"}) as c:
            codes = [c.get("/package/info").status_code for _ in range(12)]
        assert codes.count(200) == 10 and codes[-1] == 429
        assert server.stats()["violations"] == 2


def test_plans() -> None:
    from etl.emulators.testing import options
    from etl.errors import BadInputError

    with running(InfowayEmulator, now=NOW, plan="pro") as server:
        info = httpx.get(server.base_url + "/package/info", headers={"apiKey": "k"}).json()
    assert (info["data"]["packageName"], info["data"]["apiNumPerSec"]) == ("Pro", 20)
    with pytest.raises(BadInputError, match="Free, Basic, Premium, Pro"):
        InfowayEmulator(options(plan="Gold"))
