"""The StockTV emulator over real HTTP: endpoints, envelope and errors verbatim, auth, the
5/s limit counted as violations, and each fault's wire form (docs/vendors/stocktv.md)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from etl.emulators import StockTVEmulator
from etl.emulators.server import EmulatorServer
from etl.emulators.testing import running, spawn_emulate
from etl.synthetic import klines

pytestmark = pytest.mark.integration

NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)  # Friday: NSE closed, NYSE not open
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
# Stable pids (a hash of exchange and vendor symbol): literal, so a change shows here.
RELIANCE_NSE, RELIANCE_BSE, MM_NSE, NIFTY = 8899932, 4930801, 1310185, 6901454
OK = {"code": 200, "message": "操作成功"}
BAD_PARAM = {"code": 400, "message": "参数错误", "data": None}
BAD_KEY = {"code": 401, "message": "key无效", "data": None}
NO_DATA = {"code": 404, "message": "数据不存在", "data": None}
TOO_MANY = {"code": 429, "message": "请求过于频繁", "data": None}
_keys = itertools.count(1)


def ms(day: dt.date, hour: int = 0, minute: int = 0, tz: dt.tzinfo = IST) -> int:
    return int(dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz).timestamp()) * 1000


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with running(StockTVEmulator, now=NOW) as found:
        yield found


@pytest.fixture
def get(server: EmulatorServer) -> Any:
    """GET with a key of this test's own (limits are per key)."""
    key = f"key-{next(_keys)}"

    def call(path: str, **params: Any) -> Any:
        reply = httpx.get(server.base_url + path, params={**params, "key": key}, timeout=10)
        assert reply.status_code == 200, reply.text
        return reply.json()

    return call


def test_stocks_page_nse_only(get: Any) -> None:
    doc = get("/stock/stocks", countryId=14, exchangeId=46, pageSize=500)
    assert {k: doc[k] for k in ("code", "message")} == OK
    data = doc["data"]
    assert (data["total"], data["current"], data["pages"], data["size"]) == (16, 1, 1, 500)
    records = {r["symbol"]: r for r in data["records"]}
    assert len(records) == 16 and {r["exchangeId"] for r in records.values()} == {46}
    mm = records["M&M"]  # canonical M_M.IN travels as the vendor's "M&M"
    assert (mm["id"], mm["countryId"], mm["name"]) == (MM_NSE, 14, "Mahindra & Mahindra")
    assert mm["time"] == int(NOW.timestamp())  # epoch seconds
    for field in ("id", "exchangeId", "countryId", "time"):
        assert type(mm[field]) is int
    for field in ("last", "chg", "chgPct", "high", "low", "volume"):
        assert isinstance(mm[field], int | float) and not isinstance(mm[field], bool)


def test_stocks_paging_and_parameters(get: Any) -> None:
    both = get("/stock/stocks", countryId=14, pageSize=500)["data"]["records"]
    reliance = {r["exchangeId"]: r["id"] for r in both if r["symbol"] == "RELIANCE"}
    assert reliance == {46: RELIANCE_NSE, 74: RELIANCE_BSE}  # BSE lists the names again
    pages = [get("/stock/stocks", countryId=2, page=p, pageSize=4)["data"] for p in (1, 4, 5)]
    assert [len(p["records"]) for p in pages] == [4, 3, 0]  # 15 Tokyo stocks; past the end: []
    assert {p["pages"] for p in pages} == {4} and pages[2]["current"] == 5
    assert len(get("/stock/stocks", countryId=5)["data"]["records"]) == 10  # default pageSize


def test_stocks_filters_and_errors(get: Any, server: EmulatorServer) -> None:
    us = get("/stock/stocks", countryId=5, symbol="BRK.B")["data"]["records"]
    assert [(r["symbol"], r["exchangeId"]) for r in us] == [("BRK.B", 1)]
    nasdaq = get("/stock/stocks", countryId=5, exchangeId=2, pageSize=50)["data"]["records"]
    assert "AAPL" in {r["symbol"] for r in nasdaq}
    assert get("/stock/stocks", countryId=99)["data"]["records"] == []
    key = {"key": "errors-key"}
    for params in ({"pageSize": 501, "countryId": 14}, {"page": 1}, {"countryId": "IN"}):
        reply = httpx.get(server.base_url + "/stock/stocks", params={**params, **key})
        assert (reply.status_code, reply.json()) == (200, BAD_PARAM)


def test_kline_daily_is_the_synthetic_market_oldest_first(get: Any) -> None:
    first, last = dt.date(2024, 6, 3), dt.date(2024, 6, 28)
    bars = get("/stock/kline", pid=RELIANCE_NSE, interval="P1D", startTime=ms(first),
               endTime=ms(last, 23, 59))["data"]  # fmt: skip
    ref = klines("RELIANCE.IN", "1d", first, last, NOW)
    assert [b["time"] for b in bars] == [int(t) // 1000 for t in ref.ts]
    assert bars[0] == {
        "time": ms(first),  # 00:00 IST of the session (convention)
        "open": ref.open[0], "high": ref.high[0], "low": ref.low[0], "close": ref.close[0],
        "volume": int(ref.volume[0]), "vo": ref.amount[0],
    }  # fmt: skip
    assert set(bars[-1]) == {"time", "open", "high", "low", "close", "volume", "vo"}


def test_kline_window_is_inclusive_and_capped_at_the_latest_1000(get: Any) -> None:
    day = dt.date(2024, 6, 27)
    hours = get("/stock/kline", pid=RELIANCE_NSE, interval="PT1H", startTime=ms(day, 9, 15),
                endTime=ms(day, 15, 15))["data"]  # fmt: skip
    # NSE 1h bars align to the 09:15 open: 09:15, 10:15, ..., 15:15 (both ends included).
    assert [b["time"] for b in hours] == [ms(day, 9 + i, 15) for i in range(7)]
    minutes = get("/stock/kline", pid=RELIANCE_NSE, interval="PT1M")["data"]  # no window
    assert len(minutes) == 1000 and minutes[-1]["time"] == ms(dt.date(2024, 6, 28), 15, 29)
    assert all(a["time"] < b["time"] for a, b in itertools.pairwise(minutes))


def test_kline_history_depth(get: Any) -> None:
    old = get("/stock/kline", pid=RELIANCE_NSE, interval="PT5M", startTime=ms(dt.date(2023, 12, 1)),
              endTime=ms(dt.date(2024, 1, 3)))["data"]  # fmt: skip
    assert old and min(b["time"] for b in old) == ms(dt.date(2024, 1, 1), 9, 15)  # 180 days
    daily = get("/stock/kline", pid=RELIANCE_NSE, interval="P1D", startTime=ms(dt.date(2009, 1, 1)),
                endTime=ms(dt.date(2010, 1, 10)))["data"]  # fmt: skip
    assert daily[0]["time"] >= ms(dt.date(2010, 1, 1))  # 1d from 2010-01-01


def test_kline_errors_and_index_bars(get: Any, server: EmulatorServer) -> None:
    assert get("/stock/kline", pid=1, interval="P1D") == NO_DATA
    for params in (
        {"pid": RELIANCE_NSE, "interval": "PT2M"},  # unknown interval
        {"pid": RELIANCE_NSE},  # none at all
        {"pid": "abc", "interval": "P1D"},
        {"pid": RELIANCE_NSE, "interval": "P1D", "startTime": 2, "endTime": 1},
    ):
        reply = httpx.get(server.base_url + "/stock/kline", params={**params, "key": "k-err"})
        assert reply.json() == BAD_PARAM, params
    index = get("/stock/kline", pid=NIFTY, interval="P1W")["data"]
    assert index and {(b["volume"], b["vo"]) for b in index} == {(0, 0)}


def test_indices_and_currencies(get: Any) -> None:
    indices = get("/stock/indices", countryId=14)["data"]
    assert {i["symbol"] for i in indices} == {"NSEI", "BSESN"}
    assert all(
        set(i) == {"id", "name", "symbol", "last", "chg", "chgPct", "isOpen"} for i in indices
    )
    assert {i["isOpen"] for i in indices} == {False}  # 17:30 in Mumbai
    assert get("/stock/indices", countryId=14, flag="IN")["data"] == indices
    assert get("/stock/indices", countryId=14, flag="US")["data"] == []
    rates = get("/market/currencyList")["data"]["conversions"]
    assert {"INR", "JPY"} <= set(rates["USD"])
    assert math.isclose(rates["USD"]["INR"] * rates["INR"]["USD"], 1.0, rel_tol=1e-4)


def test_auth() -> None:
    with running(StockTVEmulator, now=NOW, api_key="only-this") as srv:
        url = srv.base_url + "/market/currencyList"
        assert httpx.get(url).json() == BAD_KEY  # no key
        assert httpx.get(url, params={"key": "other"}).json() == BAD_KEY
        assert httpx.get(url, params={"key": "only-this"}).json()["code"] == 200
        gone = httpx.get(srv.base_url + "/stock/nothing", params={"key": "only-this"})
        assert gone.status_code == 404 and gone.json()["code"] == 404


def test_limit_is_5_per_sliding_second_per_key_refused_not_counted() -> None:
    with running(StockTVEmulator, now=NOW) as srv, httpx.Client(base_url=srv.base_url) as c:

        def codes(n: int, key: str = "a") -> list[int]:
            return [c.get("/market/currencyList", params={"key": key}).json()["code"]
                    for _ in range(n)]  # fmt: skip

        began = time.monotonic()
        assert codes(5) == [200] * 5
        fifth = time.monotonic()
        assert codes(2) == [429, 429]  # the 6th and 7th in one second
        assert codes(1, key="b") == [200]  # per key
        time.sleep(max(0.0, began + 0.5 - time.monotonic()))
        assert codes(3) == [429] * 3  # refused, and not counted ...
        time.sleep(max(0.0, fifth + 1.05 - time.monotonic()))
        assert codes(5) == [200] * 5  # ... so five fit again; no ban
        refused = c.get("/market/currencyList", params={"key": "a"})
        assert (refused.status_code, refused.json()) == (200, TOO_MANY)
        stats = srv.stats()
    assert stats["violations"] == 6 and stats["faults_applied"] == 0


def kline_reply(srv: EmulatorServer, key: str = "fk") -> httpx.Response:
    params = {"pid": RELIANCE_NSE, "interval": "PT15M", "startTime": ms(dt.date(2024, 6, 24)),
              "endTime": ms(dt.date(2024, 6, 28), 23, 59), "key": key}  # fmt: skip
    return httpx.get(srv.base_url + "/stock/kline", params=params, timeout=10)


@pytest.fixture(scope="module")
def clean() -> list[dict[str, Any]]:
    with running(StockTVEmulator, now=NOW) as srv:
        out: list[dict[str, Any]] = kline_reply(srv).json()["data"]
    assert len(out) == 125  # 5 sessions of 25 quarter hours
    return out


@pytest.mark.parametrize(
    ("fault", "status", "answer"),
    [
        ("rate_limit_burst", 200, TOO_MANY),
        ("auth_expired", 200, BAD_KEY),
    ],
)
def test_decide_faults_in_the_envelope(fault: str, status: int, answer: Any) -> None:
    with running(StockTVEmulator, now=NOW, faults=f"{fault}@1") as srv:
        first, second = kline_reply(srv), kline_reply(srv)
        stats = srv.stats()
    assert (first.status_code, first.json()) == (status, answer)
    assert second.json()["code"] == 200
    assert stats["violations"] == 0 and stats["faults_by_name"] == {fault: 1}


def test_http_500_and_malformed_json_are_not_envelopes() -> None:
    with running(StockTVEmulator, now=NOW, faults="http_500@1,malformed_json@2") as srv:
        plain, broken = kline_reply(srv), kline_reply(srv)
    assert plain.status_code == 500 and plain.headers["content-type"].startswith("text/plain")
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(plain.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)


@pytest.mark.parametrize("fault", ["timeout:0.3", "connection_reset", "truncated_body"])
def test_network_faults(fault: str) -> None:
    with running(StockTVEmulator, now=NOW, faults=f"{fault}@1") as srv:
        with pytest.raises(httpx.TransportError):
            kline_reply(srv)
        assert kline_reply(srv).json()["code"] == 200


def faulty(fault: str) -> tuple[bytes, list[dict[str, Any]]]:
    with running(StockTVEmulator, now=NOW, faults=fault) as srv:
        reply = kline_reply(srv)
    return reply.content, reply.json()["data"]


def test_bar_faults(clean: list[dict[str, Any]]) -> None:
    times = [b["time"] for b in clean]
    raw, got = faulty("bad_prices:nan")
    assert b"NaN" in raw and any(math.isnan(b["close"]) for b in got)  # the bare token
    _, got = faulty("bad_prices:negative")
    assert any(b["low"] < 0 for b in got)
    _, got = faulty("bad_prices:high_low")
    assert any(b["high"] < b["low"] for b in got)
    _, got = faulty("out_of_order_bars:reversed")
    assert [b["time"] for b in got] == times[::-1]  # newest first
    _, got = faulty("out_of_order_bars")
    assert sorted(b["time"] for b in got) == times and [b["time"] for b in got] != times
    _, got = faulty("duplicate_bars")
    assert len(got) > len(clean) and {json.dumps(b) for b in got} == {json.dumps(b) for b in clean}
    _, got = faulty("duplicate_bars:conflict")
    twins = [b for b in got if [x["time"] for x in got].count(b["time"]) == 2]
    assert twins and len({b["close"] for b in twins[:2]}) == 2
    _, got = faulty("missing_bars")
    kept = [b["time"] for b in got]
    assert set(kept) < set(times) and (kept[0], kept[-1]) == (times[0], times[-1])


def test_schema_drift_on_bars_and_records(clean: list[dict[str, Any]]) -> None:
    _, extra = faulty("schema_drift:extra")
    assert extra == [{**b, "amount": 0} for b in clean]
    _, renamed = faulty("schema_drift:rename")
    assert [b["timestamp"] for b in renamed] == [b["time"] for b in clean]
    assert all("time" not in b for b in renamed)
    with running(StockTVEmulator, now=NOW, faults="schema_drift:rename") as srv:
        stocks = httpx.get(srv.base_url + "/stock/stocks", params={"countryId": 2, "key": "k"})
    assert all("timestamp" in r and "time" not in r for r in stocks.json()["data"]["records"])


def test_etl_emulate_accepts_only_the_configured_key() -> None:
    with spawn_emulate("stocktv", "--now", "2024-06-28T12:00:00Z",
                       env={"ETL_STOCKTV_API_KEY": "from-env"}) as proc:  # fmt: skip
        assert proc.ready["vendor"] == "stocktv" and proc.ready["ws_url"].endswith("/connect")
        url = proc.base_url + "/stock/indices"
        assert httpx.get(url, params={"countryId": 5, "key": "x"}).json() == BAD_KEY
        doc = httpx.get(url, params={"countryId": 5, "key": "from-env"}).json()
        assert doc["code"] == 200 and {i["symbol"] for i in doc["data"]} == {"DJI", "SPX", "IXIC"}
