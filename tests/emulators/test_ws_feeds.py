"""The emulators' WebSocket feeds: wire forms, auth at the handshake, the trades rebuilding the
REST bars, and the socket-level faults. Replayed at 60 market seconds per second."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
from collections import defaultdict
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from etl.emulators.testing import running, spawn_emulate

pytestmark = pytest.mark.integration

OPEN = dt.datetime(2024, 6, 28, 2, 0, tzinfo=dt.UTC)  # 10:00 Shanghai, SH/SZ trading
SUB = {"code": 10000, "trace": "t1", "data": {"codes": "600000.SH,000001.SZ"}}


def frames(ws: ClientConnection, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    return [json.loads(ws.recv(timeout)) for _ in range(n)]


def test_infoway_trades_rebuild_the_rest_minute_bars() -> None:
    with running("infoway", now=OPEN, speed=120) as server:
        url = f"{server.ws_url}?business=stock&apikey=k"
        trades: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
        with connect(url) as ws:
            assert frames(ws, 1)[0] == {"code": 200, "msg": "ws connect success"}
            ws.send(json.dumps(SUB))
            assert frames(ws, 1)[0] == {"code": 10001, "trace": "t1", "msg": "ok"}
            last_minute = None
            while True:  # until 600000.SH's third minute has begun: two whole minutes seen
                doc = json.loads(ws.recv(10))
                assert doc["code"] == 10002
                t = doc["data"]
                minute = t["t"] // 60_000 * 60
                trades[(t["s"], minute)].append(t)
                if t["s"] == "600000.SH" and minute != last_minute:
                    last_minute = minute
                    if len({m for s, m in trades if s == "600000.SH"}) == 3:
                        break
        body = {"codes": "600000.SH", "klineType": 1, "klineNum": 10}
        answer = httpx.post(
            f"{server.base_url}/stock/v2/batch_kline", json=body, headers={"apiKey": "k"}
        ).json()
        rest = {int(b["t"]): b for b in answer["data"][0]["respList"]}
        minutes = sorted(m for s, m in trades if s == "600000.SH")[1:-1]  # whole ones only
        assert minutes
        for minute in minutes:
            got = trades[("600000.SH", minute)]
            bar = rest[minute]
            assert float(got[0]["p"]) == float(bar["o"])
            assert float(got[-1]["p"]) == float(bar["c"])
            assert max(float(x["p"]) for x in got) == float(bar["h"])
            assert min(float(x["p"]) for x in got) == float(bar["l"])
            assert math.fsum(float(x["v"]) for x in got) == float(bar["v"])
            assert round(math.fsum(float(x["vw"]) for x in got), 4) == float(bar["vw"])
        assert server.stats()["ws"]["connections"] == 1


def test_infoway_bad_key_is_refused_at_the_handshake() -> None:
    with running("infoway", now=OPEN, api_key="right") as server:
        with (
            pytest.raises(InvalidStatus) as info,
            connect(f"{server.ws_url}?business=stock&apikey=wrong"),
        ):
            pass
        assert info.value.response.status_code == 401
        assert b"Token invalid" in info.value.response.body


def test_infoway_kline_push_and_heartbeat_and_frame_limit() -> None:
    with (
        running("infoway", now=OPEN, speed=60) as server,
        connect(f"{server.ws_url}?business=stock&apikey=k") as ws,
    ):
        frames(ws, 1)
        sub = {"arr": [{"type": 1, "codes": "600000.SH"}]}
        ws.send(json.dumps({"code": 10006, "trace": "k", "data": sub}))
        assert frames(ws, 1)[0]["code"] == 10007
        push = frames(ws, 1)[0]
        assert push["code"] == 10008 and set(push["data"]) >= {"s", "t", "o", "h", "l", "c"}
        for _ in range(60):  # heartbeats: 61 frames in a minute breaks the limit
            ws.send(json.dumps({"code": 10010, "trace": "h"}))
        seen = []
        with pytest.raises(ConnectionClosed):
            while True:
                seen.append(json.loads(ws.recv(10)))
        assert seen[-1]["code"] == 501


def test_mdapi_quotes_ping_and_six_connections() -> None:
    with running("mdapi", now=OPEN, speed=60) as server:
        url = server.ws_url
        assert url is not None and url.endswith("/ws")
        with contextlib.ExitStack() as stack:
            held = [stack.enter_context(connect(url)) for _ in range(6)]
            with pytest.raises(InvalidStatus) as info, connect(url):
                pass
            assert info.value.response.status_code == 403
            ws = held[0]
            ws.send(json.dumps({"Key": "btcusdt"}))
            ws.send(json.dumps({"ping": 1719540000}))
            docs = frames(ws, 3)
            assert {"pong": 1719540000} in docs
            body = next(d["body"] for d in docs if "body" in d)
            assert body["StockCode"] == "btcusdt" and isinstance(body["Price"], float)


def test_stocktv_pushes_what_the_key_is_entitled_to() -> None:
    us_open = dt.datetime(2024, 6, 28, 14, 0, tzinfo=dt.UTC)
    with running("stocktv", now=us_open, speed=60, ws_symbols="AAPL.US") as server:
        with pytest.raises(InvalidStatus), connect(f"{server.ws_url}"):  # no key
            pass
        with connect(f"{server.ws_url}?key=k") as ws:
            ws.send("heart")
            docs = frames(ws, 3)
        assert len({d["pid"] for d in docs}) == 1
        assert all(isinstance(v, str) for d in docs for v in d.values())


@pytest.mark.parametrize("fault", ["ws_drop:5", "ws_close:5", "ws_stall:5"])
def test_stream_faults(fault: str) -> None:
    with running("infoway", now=OPEN, speed=120, faults=f"{fault}@1") as server:
        with connect(f"{server.ws_url}?business=stock&apikey=k", close_timeout=1) as ws:
            frames(ws, 1)
            ws.send(json.dumps(SUB))
            frames(ws, 1)
            got = frames(ws, 5)
            assert all(d["code"] == 10002 for d in got)
            if fault.startswith("ws_stall"):
                with pytest.raises(TimeoutError):
                    ws.recv(1.0)  # silence, the socket still open
            else:
                with pytest.raises(ConnectionClosed) as info:
                    extra = json.loads(ws.recv(10))
                    assert extra["code"] == 513  # the vendor's heartbeat-timeout close
                    ws.recv(10)
                if fault.startswith("ws_drop"):
                    assert info.value.rcvd is None  # no close frame
        # the second connection is clean
        with connect(f"{server.ws_url}?business=stock&apikey=k") as ws:
            frames(ws, 1)
            ws.send(json.dumps(SUB))
            assert len(frames(ws, 8)) == 8
        assert server.stats()["faults_by_name"] == {fault.split(":", maxsplit=1)[0]: 1}


def test_etl_emulate_reports_its_ws_url() -> None:
    with spawn_emulate("mdapi", "--speed", "60", "--now", "2024-06-28T02:00:00Z") as proc:
        assert proc.ready["ws_url"].startswith("ws://127.0.0.1:")
        with connect(proc.ready["ws_url"]) as ws:
            ws.send(json.dumps({"Key": "btcusdt"}))
            assert "body" in json.loads(ws.recv(10))
