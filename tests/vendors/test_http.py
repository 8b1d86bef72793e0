"""The shared HTTP layer against a real local server that fails the way vendors do.

Backoff is made fast (base 0.05 s, no jitter); what is asserted is the number of attempts,
the pauses between them, the final error class, and that no secret ever shows.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
import time
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from etl.config import Secret, VendorSettings
from etl.errors import (
    AuthError,
    ConfigError,
    PermanentVendorError,
    QuotaExhausted,
    RateLimited,
    SchemaError,
    TransientVendorError,
)
from etl.vendors.governor import Governor, Limit
from etl.vendors.http import RetryPolicy, SessionExpired, Tally, VendorHttp
from tests.vendors._stub import Reply, Request, StubServer, script

SECRET = "sk-live-7f3a9b"
TOKEN = "tok-abc-123"
OK = Reply(body={"code": 200, "data": [1, 2, 3]})
FAST = RetryPolicy(retries=3, base=0.05, cap=0.4, jitter=0.0)


def parse(response: httpx.Response) -> Any:
    """A vendor's parse function: StockTV-like envelope, errors inside HTTP 200."""
    body = response.json()
    code = body.get("code")
    if code == 200:
        return body["data"]
    message = f"code {code}: {body.get('message')}"
    if code == 401:
        raise SessionExpired(message)
    if code == 429:
        raise RateLimited(message)
    if code == 422:
        raise SchemaError(message)
    if code == 402:
        raise QuotaExhausted(message)
    if code == 503:
        raise TransientVendorError(message)
    raise PermanentVendorError(message)


def make(url: str, **kwargs: Any) -> VendorHttp:
    kwargs.setdefault("retry", FAST)
    kwargs.setdefault("timeout", httpx.Timeout(0.5, connect=1.0))
    return VendorHttp("stocktv", url, secrets=[SECRET], **kwargs)


def call(http: VendorHttp, path: str = "/stock/kline", **kwargs: Any) -> Any:
    async def go() -> Any:
        try:
            return await http.request(
                "GET", path, params={"pid": "7", "key": SECRET}, parse=parse, **kwargs
            )
        finally:
            await http.aclose()

    return asyncio.run(go())


def gaps(requests: list[Request]) -> list[float]:
    return [b.at - a.at for a, b in itertools.pairwise(requests)]


@pytest.mark.parametrize(
    "failure",
    [
        Reply(status=500, body="<html>gateway</html>"),  # 5xx
        Reply(status=503, body=""),  # 5xx, empty body
        Reply(action="reset"),  # RST before any byte
        Reply(action="close"),  # FIN before any byte
        Reply(body={"code": 200, "data": list(range(200))}, action="truncate"),  # half a body
        Reply(body="{not json"),  # HTTP 200, not JSON
        Reply(body={"code": 503, "message": "busy"}),  # parse says transient
    ],
    ids=["500", "503", "reset", "close", "truncated", "malformed", "parse-transient"],
)
def test_transient_failures_are_retried(failure: Reply) -> None:
    with StubServer(script(failure, failure, OK)) as server:
        http, tally = make(server.url), Tally()
        assert call(http, tally=tally) == [1, 2, 3]
    assert len(server.requests) == 3 and http.requests == 3 and tally.requests == 3
    first, second = gaps(server.requests)
    assert 0.05 <= first < 0.05 + 0.15  # backoff base, then twice it
    assert 0.10 <= second < 0.10 + 0.15


def test_retries_are_bounded_and_the_error_is_transient() -> None:
    with StubServer(script(Reply(status=500, body=f"oops ?key={SECRET}"))) as server:
        http = make(server.url)
        with pytest.raises(TransientVendorError) as info:
            call(http)
    assert len(server.requests) == 4  # the first attempt and 3 retries
    assert info.value.fields["attempts"] == 4 and info.value.fields["vendor"] == "stocktv"
    assert "HTTP 500" in str(info.value) and "key=***" in str(info.value)
    assert SECRET not in str(info.value)
    # backoff 0.05, 0.1, 0.2 (the cap 0.4 is not reached)
    for gap, want in zip(gaps(server.requests), (0.05, 0.1, 0.2), strict=True):
        assert want <= gap < want + 0.15


def test_backoff_is_capped_and_jittered() -> None:
    import random

    policy = RetryPolicy(retries=5, base=1.0, cap=8.0, jitter=0.1)
    rng = random.Random(7)
    delays = [policy.delay(n, rng) for n in range(1, 6)]
    for got, want in zip(delays, (1, 2, 4, 8, 8), strict=True):
        assert want <= got <= want * 1.1


def test_timeout_is_retried_then_transient() -> None:
    with StubServer(script(Reply(action="hang", hang=3.0))) as server:
        http = make(server.url, timeout=httpx.Timeout(0.2, connect=1.0))
        began = time.monotonic()
        with pytest.raises(TransientVendorError, match="timed out"):
            call(http)
        took = time.monotonic() - began
    assert len(server.requests) == 4
    assert 4 * 0.2 + 0.35 <= took < 3.0  # four read timeouts and three pauses, no hang


def test_429_honours_retry_after() -> None:
    limited = Reply(
        status=429, body={"detail": "Rate limit exceeded"}, headers={"Retry-After": "0.4"}
    )
    with StubServer(script(limited, OK)) as server:
        assert call(make(server.url)) == [1, 2, 3]
    assert gaps(server.requests)[0] >= 0.4


def test_too_long_retry_after_fails_at_once() -> None:
    limited = Reply(status=429, headers={"Retry-After": "3600"})
    with StubServer(script(limited, OK)) as server, pytest.raises(RateLimited):
        call(make(server.url))
    assert len(server.requests) == 1


def test_vendor_ban_goes_to_the_governor() -> None:
    # mdapi style: code 429 in an HTTP 200 body, and the bucket is banned (here 0.5 s).
    bans: list[tuple[str | None, float]] = []

    class Spy(Governor):
        def ban(self, bucket: str | None, seconds: float) -> None:
            bans.append((bucket, seconds))
            super().ban(bucket, seconds)

    gov = Spy("stocktv", [Limit(requests=100)])
    limited = Reply(body={"code": 429, "message": "请求过于频繁"})
    with StubServer(script(limited, OK)) as server:
        http = make(server.url, governor=gov, rate_limit_ban=0.5)
        assert call(http, bucket="kline:btcusdt") == [1, 2, 3]
    assert bans == [("kline:btcusdt", 0.5)]
    assert gaps(server.requests)[0] >= 0.5  # the slot waited the ban out (backoff is 0.05)


@pytest.mark.parametrize(
    ("code", "error"),
    [(400, PermanentVendorError), (422, SchemaError), (402, QuotaExhausted)],
)
def test_final_errors_are_not_retried(code: int, error: type[Exception]) -> None:
    with (
        StubServer(script(Reply(body={"code": code, "message": "no"}))) as server,
        pytest.raises(error) as info,
    ):
        call(make(server.url))
    assert len(server.requests) == 1
    assert "key=***" in str(info.value) and SECRET not in str(info.value)


class Session:
    """A login the server honours: only the latest token is valid."""

    def __init__(self) -> None:
        self.token = "t1"
        self.renewals: list[Mapping[str, str]] = []

    async def headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def reauth(self, used: Mapping[str, str]) -> None:
        self.renewals.append(used)
        self.token = "t2"


def test_expired_session_relogs_once_and_repeats() -> None:
    def handler(request: Request) -> Reply:
        if request.headers.get("authorization") != "Bearer t2":
            return Reply(status=401, body={"code": 401, "message": "Token无效或已过期"})
        return OK

    session = Session()
    with StubServer(handler) as server:
        http = make(server.url, session_headers=session.headers, reauth=session.reauth)
        assert call(http) == [1, 2, 3]
    assert session.renewals == [{"Authorization": "Bearer t1"}]
    assert [r.headers["authorization"] for r in server.requests] == ["Bearer t1", "Bearer t2"]


def test_second_expiry_is_an_auth_error() -> None:
    refused = Reply(status=401, body={"code": 401, "message": "Token无效或已过期"})
    session = Session()
    with StubServer(script(refused)) as server:
        http = make(server.url, session_headers=session.headers, reauth=session.reauth)
        with pytest.raises(AuthError) as info:
            call(http)
    assert len(session.renewals) == 1 and len(server.requests) == 2
    assert info.value.exit_code == 3


def test_secrets_never_leak_into_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    # The server echoes what it received (URL with the key, and the bearer token).
    def echo(request: Request) -> Reply:
        return Reply(status=500, body=f"{request.target} {request.headers.get('authorization')}")

    async def headers() -> Mapping[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}

    caplog.set_level(logging.DEBUG)
    # A CLI test earlier in this worker may have quieted httpx's own logger (etl -v's set-up):
    # this test needs its request lines, so it sets that logger's level too.
    for name in ("httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    with StubServer(echo) as server:
        http = make(server.url, session_headers=headers)
        http.add_secret(TOKEN)
        with pytest.raises(TransientVendorError) as info:
            call(http, "/x", tally=None)
    text = caplog.text + str(info.value) + repr(info.value.fields)
    assert "retry 3 of 3" in caplog.text  # the retries were logged...
    assert "HTTP Request" in caplog.text  # ...and so were httpx's request lines
    assert SECRET not in text and TOKEN not in text
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_connection_refused_is_transient() -> None:
    with StubServer(script(OK)) as server:
        url = server.url
    http = make(url, retry=RetryPolicy(retries=1, base=0.01, jitter=0))
    with pytest.raises(TransientVendorError, match="transport error"):
        call(http)
    assert http.requests == 2


def test_keep_alive_and_gzip() -> None:
    with StubServer(script(Reply(body={"code": 200, "data": "x" * 5000}, gzip=True))) as server:
        http = make(server.url)

        async def go() -> list[Any]:
            try:
                return [await http.request("GET", "/q", parse=parse) for _ in range(5)]
            finally:
                await http.aclose()

        assert asyncio.run(go()) == ["x" * 5000] * 5
    assert {r.connection for r in server.requests} == {1}  # one pooled connection
    assert "gzip" in server.requests[0].headers["accept-encoding"]


def test_governor_counts_each_attempt() -> None:
    gov = Governor("stocktv", [Limit(requests=2, seconds=0.3), Limit(in_flight=1)])
    with StubServer(script(Reply(status=500), OK)) as server:
        http = make(server.url, governor=gov, retry=RetryPolicy(base=0.01, jitter=0))

        async def go() -> None:
            try:
                for _ in range(2):
                    await http.request("GET", "/q", parse=parse)
            finally:
                await http.aclose()

        asyncio.run(go())
    # 3 attempts at 2 per 0.3 s: the third waits for the window.
    assert len(server.requests) == 3
    assert server.requests[2].at - server.requests[0].at >= 0.3


def test_settings() -> None:
    settings = VendorSettings(
        name="stocktv",
        api_key=Secret(SECRET),
        extra={"backoff_base": 0.01, "retries": 2, "read_timeout": 1.5},
    )
    http = VendorHttp.from_settings(settings, public_url="https://api.stocktv.top")
    assert http.base_url == "https://api.stocktv.top"
    assert http.retry == RetryPolicy(retries=2, base=0.01)
    assert http.timeout.read == 1.5 and http.timeout.connect == 10.0
    assert http.redact(f"x?key={SECRET}") == "x?key=***" and http.redact(SECRET) == "***"
    with pytest.raises(ConfigError, match="ETL_STOCKTV_BASE_URL"):
        VendorHttp.from_settings(VendorSettings(name="stocktv"), public_url=None)
    with pytest.raises(ConfigError, match="backoff_base"):
        RetryPolicy.from_settings(VendorSettings(name="x", extra={"backoff_base": "fast"}))


def test_tls_is_verified_and_a_plain_http_client_trusts_no_root() -> None:
    """An https base is verified against certifi's roots (httpx's default, ``True``); a
    plain-http base (an emulator on loopback) skips loading them (20-40 ms of a task's
    start-up) with a context that still verifies, against no root: an https URL sent
    through it fails instead of going unchecked."""
    from etl.vendors.http import _verification

    assert _verification("https://api.example.com/v1") is True
    plain = _verification("http://127.0.0.1:8080")
    assert isinstance(plain, ssl.SSLContext)
    assert plain.verify_mode == ssl.CERT_REQUIRED and plain.check_hostname
    assert plain.get_ca_certs() == []
