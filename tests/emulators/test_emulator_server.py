"""The HTTP server and the base pipeline, with a tiny emulator: keep-alive, gzip, the
socket-level faults, control endpoints, limits accounting and shutdown."""

from __future__ import annotations

import datetime as dt
import gzip
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import httpx
import pytest

from etl.emulators import EMULATORS, AmazingDataEmulator, emulator_class
from etl.emulators.base import Emulator, Limit
from etl.emulators.limits import Rate
from etl.emulators.server import EmulatorServer
from etl.emulators.testing import options, running
from etl.emulators.wire import Call, Reply, Route, json_reply
from etl.errors import BadInputError


class Echo(Emulator):
    """Answers ``{"path":..., "q":...}``; 3 requests/s per client, 1 in flight."""

    vendor: ClassVar[str] = "echo"
    base_path: ClassVar[str] = "/v"

    def routes(self) -> Sequence[Route]:
        return [
            Route("GET", "/echo", self.echo, "data"),
            Route("POST", "/echo", self.echo, "data"),
            Route("GET", "/items/{code}", self.echo),
        ]

    def echo(self, call: Call) -> Reply:
        body = call.request.body.decode() or None
        doc = {"path": call.request.path, "q": dict(call.request.params), "body": body}
        return json_reply(200, {**doc, **call.path_params})

    def limit(self, call: Call, route: Route) -> Limit | None:
        return Limit(call.principal.key, [Rate(3, 1.0)], in_flight=1)


class GzipEcho(Echo):
    gzip_bodies: ClassVar[bool] = True


@pytest.fixture
def echo() -> Iterator[Any]:
    servers: list[EmulatorServer] = []

    def start(cls: type[Emulator] = Echo, **kw: Any) -> EmulatorServer:
        server = EmulatorServer(cls(options(**kw))).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


def raw_exchange(server: EmulatorServer, path: str, timeout: float = 5.0) -> tuple[bytes, float]:
    """Send one GET on a bare socket; everything received until EOF, and the seconds taken."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        got = b""
        try:
            while chunk := sock.recv(65536):
                got += chunk
        except ConnectionResetError:
            got += b"<RST>"
    return got, time.monotonic() - t0


def test_base_url_port_and_a_json_answer(echo: Any) -> None:
    server = echo()
    assert server.port > 0 and server.base_url == f"http://127.0.0.1:{server.port}/v"
    assert server.ready() == {"vendor": "echo", "base_url": server.base_url, "ws_url": None}
    reply = httpx.get(server.base_url + "/items/600000.SH", params={"a": "1", "b": "x y"})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json; charset=utf-8"
    assert reply.json() == {"path": "/v/items/600000.SH", "q": {"a": "1", "b": "x y"},
                            "body": None, "code": "600000.SH"}  # fmt: skip


def test_keep_alive_serves_several_requests_on_one_connection(echo: Any) -> None:
    server = echo()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("GET", "/v/echo?n=1")
        first = conn.getresponse()
        assert first.status == 200 and json.loads(first.read())["q"] == {"n": "1"}
        sock = conn.sock
        conn.request("POST", "/v/echo", body=b"hello", headers={"Content-Length": "5"})
        second = conn.getresponse()
        assert json.loads(second.read())["body"] == "hello"
        assert conn.sock is sock  # no reconnection happened
    finally:
        conn.close()


def test_chunked_request_bodies_are_read(echo: Any) -> None:
    server = echo()
    with httpx.Client() as client:
        reply = client.post(server.base_url + "/echo", content=iter([b"ab", b"cd"]))
    assert reply.json()["body"] == "abcd"


def test_gzip_only_when_the_vendor_does_it_and_the_client_asks(echo: Any) -> None:
    plain, zipped = echo(), echo(GzipEcho)
    for server, accept, encoded in [
        (plain, "gzip", False),  # this vendor never gzips
        (zipped, "gzip", True),  # mdapi-like: gzip when asked
        (zipped, "identity", False),  # not asked: plain
    ]:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/v/echo", headers={"Accept-Encoding": accept})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        assert (resp.getheader("Content-Encoding") == "gzip") is encoded
        doc = json.loads(gzip.decompress(body) if encoded else body)
        assert doc["path"] == "/v/echo"


def test_connection_reset_sends_no_byte(echo: Any) -> None:
    got, _ = raw_exchange(echo(faults="connection_reset@1"), "/v/echo")
    assert got in (b"", b"<RST>")
    with pytest.raises(httpx.TransportError):
        httpx.get(echo(faults="connection_reset").base_url + "/echo")


def test_timeout_hangs_then_closes_without_answering(echo: Any) -> None:
    got, took = raw_exchange(echo(faults="timeout:0.4"), "/v/echo")
    assert got == b"" and took >= 0.4
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(echo(faults="timeout:5").base_url + "/echo", timeout=0.3)


def test_truncated_body_announces_the_full_length(echo: Any) -> None:
    got, _ = raw_exchange(echo(faults="truncated_body"), "/v/echo?pad=0123456789")
    head, _, body = got.partition(b"\r\n\r\n")
    length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
                 .split(b":")[1])  # fmt: skip
    assert head.startswith(b"HTTP/1.1 200") and 0 < len(body) == length // 2 < length
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(echo(faults="truncated_body").base_url + "/echo")


def test_unknown_path_404_and_other_method_405(echo: Any) -> None:
    server = echo()
    assert httpx.get(server.base_url + "/nope").status_code == 404
    assert httpx.get(server.root_url + "/echo").status_code == 404  # outside the base path
    assert httpx.delete(server.base_url + "/echo").status_code == 405


def test_stats_count_requests_violations_and_faults_then_reset(echo: Any) -> None:
    server = echo(faults="http_500@2")
    with httpx.Client(base_url=server.base_url) as client:
        statuses = [client.get("/echo").status_code for _ in range(4)]
    assert statuses == [200, 500, 200, 429]  # the 4th is over 3/s: refused and counted
    stats = httpx.get(server.root_url + "/_emulator/stats").json()
    assert stats == {
        "requests": 4,
        "violations": 1,
        "by_path": {"/v/echo": {"requests": 4, "violations": 1, "violations_rate": 1}},
        "faults_applied": 1,
        "faults_by_name": {"http_500": 1},
        "statuses": {"200": 2, "429": 1, "500": 1},
        "ws": {"pushed": {}, "started_ms": []},
    }
    assert httpx.post(server.root_url + "/_emulator/reset").json() == {"reset": True}
    assert server.stats()["requests"] == 0 and server.stats()["violations"] == 0
    assert httpx.get(server.base_url + "/echo").status_code == 200  # windows were reset too


def test_in_flight_refusals_are_violations(echo: Any) -> None:
    server = echo(latency=0.5)
    with httpx.Client(base_url=server.base_url) as slow, httpx.Client() as other:
        t = threading.Thread(target=lambda: slow.get("/echo"))
        t.start()
        time.sleep(0.2)
        assert other.get(server.base_url + "/echo").status_code == 429  # 1 in flight already
        t.join()
    assert server.stats()["by_path"]["/v/echo"]["violations_in_flight"] == 1


class TwoInFlight(Echo):
    def limit(self, call: Call, route: Route) -> Limit | None:
        return Limit("everyone", (), in_flight=2)


def test_a_client_that_waits_for_its_answers_never_overlaps() -> None:
    # Regression: the in-flight place was given back only after the body was written, so
    # a client (2 at a time, 4 pooled connections) that sent its next request as soon as
    # an answer arrived could be refused, and counted as a violation it did not commit.
    gate = threading.Semaphore(2)
    with EmulatorServer(TwoInFlight(options(latency=0.001))) as server:

        def worker() -> None:
            with httpx.Client(base_url=server.base_url) as client:
                for _ in range(20):
                    with gate:
                        assert client.get("/echo").status_code == 200

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert (server.stats()["requests"], server.stats()["violations"]) == (80, 0)


def test_stop_frees_the_port_and_closes_idle_connections() -> None:
    server = EmulatorServer(Echo()).start()
    client = httpx.Client(base_url=server.base_url)
    assert client.get("/echo").status_code == 200  # leaves a pooled keep-alive connection
    server.stop()
    with pytest.raises(httpx.TransportError):
        client.get("/echo")  # the pooled connection was closed, and nothing listens
    client.close()
    with EmulatorServer(Echo(), port=server.port) as again:  # the port can be reused at once
        assert httpx.get(again.base_url + "/echo").status_code == 200


def test_registry_and_options_are_checked() -> None:
    assert EMULATORS["amazingdata"] is AmazingDataEmulator
    assert emulator_class("amazingdata") is AmazingDataEmulator
    with pytest.raises(
        BadInputError, match="no emulator for vendor 'nope': use one of amazingdata"
    ):
        emulator_class("nope")
    with pytest.raises(BadInputError, match="unknown echo emulator option 'token_ttl'"):
        Echo(options(token_ttl=5))
    with pytest.raises(BadInputError, match="now must carry a time zone"):
        Echo(options(now=dt.datetime(2024, 1, 2)))
    with running("amazingdata") as server:  # by name, real clock
        assert server.base_url.endswith("/api/v1")
