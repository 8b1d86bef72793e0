"""Each fault's Infoway wire form (docs/vendors/infoway.md "Faults")."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from etl.emulators import EmulatorServer
from etl.emulators.infoway import InfowayEmulator
from etl.emulators.testing import options

pytestmark = pytest.mark.integration

NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)  # 20:00 Shanghai: the day is over
BODY = {"codes": "600519.SH", "klineType": 2, "klineNum": 48, "timestamp": 1719504000}  # 27th


@pytest.fixture
def start() -> Iterator[Any]:
    servers: list[EmulatorServer] = []
    clients: list[httpx.Client] = []

    def go(faults: str) -> httpx.Client:
        server = EmulatorServer(InfowayEmulator(options(now=NOW, faults=faults))).start()
        servers.append(server)
        clients.append(httpx.Client(base_url=server.base_url, headers={"apiKey": "k"}))
        return clients[-1]

    yield go
    for client in clients:
        client.close()
    for server in servers:
        server.stop()


def post(client: httpx.Client, body: dict[str, Any] = BODY) -> httpx.Response:
    return client.post("/stock/v2/batch_kline", json=body)


def bars(client: httpx.Client) -> list[dict[str, Any]]:
    reply = post(client)
    assert reply.status_code == 200, reply.text
    rows: list[dict[str, Any]] = json.loads(reply.content)["data"][0]["respList"]
    return rows


@pytest.fixture
def clean(start: Any) -> list[dict[str, Any]]:
    """The 48 five-minute bars of 2024-06-27, newest first, without faults."""
    return bars(start(""))


@pytest.mark.parametrize(
    ("variant", "status", "body"),
    [
        ("", 429, {"detail": "Rate limit exceeded"}),
        (":detail200", 200, {"detail": "Rate limit exceeded"}),
        (":ret501", 200, {"ret": 501, "msg": "Request exceed limit"}),
        (":ret502", 200, {"ret": 502, "msg": "Request for day limit"}),
    ],
)
def test_rate_limit_burst(start: Any, variant: str, status: int, body: dict[str, Any]) -> None:
    client = start(f"rate_limit_burst{variant}@2")
    replies = [client.get("/package/info") for _ in range(3)]
    assert [r.status_code for r in replies] == [200, status, 200]
    got = replies[1].json()
    assert {k: got[k] for k in body} == body
    if "ret" in body:
        assert got["data"] is None and len(got["traceId"]) == 36


def test_http_500_is_a_gateway_page(start: Any) -> None:
    reply = post(start("http_500"))
    assert reply.status_code == 500 and reply.headers["content-type"].startswith("text/html")
    assert b"500 Internal Server Error" in reply.content


def test_malformed_json_and_auth_expired(start: Any) -> None:
    client = start("malformed_json@1,auth_expired@2")
    broken = post(client)
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    refused = post(client)
    assert refused.status_code == 401 and refused.json()["message"] == "Token invalid"
    assert post(client).status_code == 200


def test_network_faults(start: Any) -> None:
    client = start("timeout:2@1,connection_reset@2,truncated_body@3")
    began = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.get("/package/info", timeout=0.3)
    assert time.monotonic() - began < 1.5
    with pytest.raises(httpx.TransportError):
        client.get("/package/info")
    with pytest.raises(httpx.TransportError):
        post(client)
    assert post(client).status_code == 200


def test_bad_prices_wire_forms(start: Any, clean: list[dict[str, Any]]) -> None:
    rows = bars(start("bad_prices"))
    assert len(rows) == len(clean)
    nan = [r for r in rows if "NaN" in r.values()]
    negative = [r for r in rows if "-1.000" in (r["o"], r["h"], r["l"], r["c"])]
    inverted = [r for r in rows if r["h"] not in ("NaN", "-1.000") and r["l"] != "-1.000"
                and float(r["h"]) < float(r["l"])]  # fmt: skip
    assert nan and negative and inverted
    assert math.isnan(float(nan[0]["c"]))


def test_schema_drift(start: Any, clean: list[dict[str, Any]]) -> None:
    extra = bars(start("schema_drift:extra"))
    assert all(r.pop("x") == "1" for r in extra) and extra == clean
    renamed = bars(start("schema_drift:rename"))
    assert all("t" not in r and r["ts"] == c["t"] for r, c in zip(renamed, clean, strict=True))
    symbols = start("schema_drift:rename").get("/common/basic/symbols", params={"type": "FOREX"})
    assert all("symbol" not in r and "code" in r for r in symbols.json()["data"])


def test_out_of_order_and_duplicates(start: Any, clean: list[dict[str, Any]]) -> None:
    assert bars(start("out_of_order_bars:reversed")) == clean[::-1]  # oldest first
    shuffled = bars(start("out_of_order_bars"))
    assert shuffled != clean and sorted(shuffled, key=lambda r: -int(r["t"])) == clean
    doubled = bars(start("duplicate_bars"))
    assert len(doubled) > len(clean) and {r["t"] for r in doubled} == {r["t"] for r in clean}
    conflict = bars(start("duplicate_bars:conflict"))
    by_t: dict[str, set[str]] = {}
    for r in conflict:
        by_t.setdefault(r["t"], set()).add(r["c"])
    assert any(len(closes) == 2 for closes in by_t.values())


def test_missing_bars_keep_the_page_full(start: Any, clean: list[dict[str, Any]]) -> None:
    rows = bars(start("missing_bars"))
    assert len(rows) == len(clean) == 48  # klineNum bars still
    stamps = [int(r["t"]) for r in rows]
    assert stamps[0] == int(clean[0]["t"]) and stamps == sorted(stamps, reverse=True)
    assert min(stamps) < int(clean[-1]["t"])  # reaches further back: bars inside are gone
    inside = {int(r["t"]) for r in clean} - set(stamps)
    assert inside and all(min(stamps) < t < max(stamps) for t in inside)
