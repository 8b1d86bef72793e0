"""The one HTTP and retry layer: every vendor request goes through :class:`VendorHttp`.

Each adapter owns one instance: a pooled ``httpx.AsyncClient`` (keep-alive, gzip, explicit
connect and read timeouts), its vendor's :class:`~etl.vendors.governor.Governor`, and the
retry policy. What the vendor *means* stays in the adapter: every call passes ``parse``, the
vendor's own function from an HTTP response to a payload, which raises the right
:mod:`etl.errors` class. This module knows only HTTP and the error classes:

============================================  =================================================
what happened                                 what the layer does
============================================  =================================================
timeout, connection refused or reset,         retry (``TransientVendorError``)
truncated body (httpx transport errors)
HTTP 5xx; HTTP 429 (``RateLimited``)          retry; 429 honours ``Retry-After``
``TransientVendorError`` from ``parse``;      retry
a body that is not JSON or not UTF-8
``RateLimited`` from ``parse``                retry; if the vendor bans (``rate_limit_ban``) or
                                              says ``Retry-After``, the governor bans the
                                              bucket first, so every process waits it out
``SessionExpired`` from ``parse``             ``reauth`` once, repeat the request once; a second
                                              one is final (an ``AuthError``: exit 3)
any other ``VendorError``                     final: permanent, schema, quota, auth
============================================  =================================================

Retries: at most ``retries`` (3) after the first attempt, backoff ``base`` × 2ⁿ capped at
``cap`` (1, 2, 4, 8 s) plus up to 10 % jitter, never shorter than ``Retry-After``. Every
attempt counts in :attr:`VendorHttp.requests` (and the caller's :class:`Tally`).

TLS: an https base URL is verified against certifi's roots (httpx's default). A plain-http
base (an emulator on loopback) gets a context that trusts no root at all: nothing of it is
used, an https URL sent through that client fails verification rather than going unchecked,
and the 20-40 ms of loading the roots stays off a task's first request (issue 10, start-up).

Secrets: settings' secrets and any registered later (:meth:`VendorHttp.add_secret`, e.g. a
session token) are redacted from every URL, log line and exception this layer emits, and a
:class:`~etl.vendors.redact.RedactingFilter` on httpx's loggers does the same for theirs.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from json import JSONDecodeError
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import httpx

from etl.config import VendorSettings
from etl.errors import AuthError, ConfigError, EtlError, RateLimited, TransientVendorError
from etl.vendors.base import VendorContext
from etl.vendors.governor import Governor, Limit
from etl.vendors.redact import RedactingFilter, redact_text, redact_url
from etl.vendors.retry import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    RetryPolicy,
    retry_after,
    timeouts_from,
)

__all__ = ["RetryPolicy", "SessionExpired", "Tally", "VendorHttp", "timeouts_from"]

log = logging.getLogger(__name__)

T = TypeVar("T")
SessionHeaders = Callable[[], Awaitable[Mapping[str, str]]]
Reauth = Callable[[Mapping[str, str]], Awaitable[None]]
Params = Mapping[str, str | int | float]

_SNIPPET: Final = 200
# httpx logs every request line (URL included) at INFO; their records are redacted too.
_LIBRARY_FILTER: Final = RedactingFilter()


class SessionExpired(AuthError):
    """Raised by a vendor's ``parse`` when its session token is refused: the layer calls
    ``reauth`` once and repeats the request once. If it escapes, it is an auth error."""


@dataclass
class Tally:
    """Requests made on behalf of one logical operation (``KlineBatch.requests``)."""

    requests: int = 0


def _verification(base_url: str) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for a client of ``base_url`` (see the module doc, "TLS")."""
    if urlsplit(base_url).scheme == "http":
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, against no roots
    return True


class VendorHttp:
    """One vendor's HTTP client: pooled connections, governor, retries, redaction."""

    def __init__(
        self,
        vendor: str,
        base_url: str,
        *,
        governor: Governor | None = None,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | None = None,
        secrets: Iterable[str] = (),
        headers: Mapping[str, str] | None = None,
        session_headers: SessionHeaders | None = None,
        reauth: Reauth | None = None,
        rate_limit_ban: float | None = None,
        max_connections: int = 8,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        on_request: Callable[[str, str], None] | None = None,
    ) -> None:
        self.vendor = vendor
        self.on_request = on_request
        self.base_url = base_url
        self.governor = governor
        self.retry = retry or RetryPolicy()
        self.timeout = timeout or httpx.Timeout(
            DEFAULT_READ_TIMEOUT, connect=DEFAULT_CONNECT_TIMEOUT
        )
        self.requests = 0
        self._secrets: set[str] = set()
        self._headers = {"Accept-Encoding": "gzip, deflate", **(headers or {})}
        self._session_headers = session_headers
        self._reauth = reauth
        self._rate_limit_ban = rate_limit_ban
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._transport = transport
        self._rng = rng or random.Random()
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        for name in ("httpx", "httpcore"):
            library = logging.getLogger(name)
            if _LIBRARY_FILTER not in library.filters:
                library.addFilter(_LIBRARY_FILTER)
        self.add_secret(*secrets)

    @classmethod
    def from_settings(
        cls, settings: VendorSettings, *, public_url: str | None, **kwargs: Any
    ) -> VendorHttp:
        """An instance for ``settings``: base URL ``ETL_<VENDOR>_BASE_URL`` else
        ``public_url``, retry policy and timeouts from the settings, their secrets redacted."""
        base = settings.base_url or public_url
        if not base:
            raise ConfigError(
                f"{settings.name} has no base URL: set ETL_{settings.name.upper()}_BASE_URL"
            )
        kwargs.setdefault("retry", RetryPolicy.from_settings(settings))
        kwargs.setdefault("timeout", timeouts_from(settings))
        return cls(settings.name, base, secrets=settings.secrets(), **kwargs)

    @classmethod
    def for_context(
        cls,
        context: VendorContext,
        limits: Sequence[Limit],
        *,
        public_url: str | None,
        **kwargs: Any,
    ) -> VendorHttp:
        """An adapter's client: :meth:`from_settings` behind a governor with ``limits``,
        shared through the data root's ``state/`` (in-process only without one)."""
        state = context.state_dir
        governor = Governor(
            context.settings.name,
            limits,
            state_dir=Path(str(state)) if state is not None else None,
            on_wait=context.on_rate_wait,
        )
        kwargs.setdefault("on_request", context.on_request)
        return cls.from_settings(
            context.settings, public_url=public_url, governor=governor, **kwargs
        )

    def add_secret(self, *values: str) -> None:
        """Redact ``values`` too from now on (a session token once it is issued)."""
        fresh = [v for v in values if v]
        self._secrets.update(fresh)
        _LIBRARY_FILTER.add(fresh)

    def redact(self, text: str) -> str:
        return redact_text(text, self._secrets)

    def _client_for_loop(self) -> httpx.AsyncClient:
        # A pool belongs to the event loop that opened its connections.
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                headers=self._headers,
                timeout=self.timeout,
                limits=self._limits,
                transport=self._transport,
                follow_redirects=False,
                verify=_verification(self.base_url),
            )
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        """Close pooled connections (a later request opens a new pool)."""
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        parse: Callable[[httpx.Response], T],
        params: Params | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        bucket: str | None = None,
        governed: bool = True,
        session: bool = True,
        tally: Tally | None = None,
    ) -> T:
        """Send ``method path`` until ``parse`` accepts the answer or a final error.

        ``bucket`` is the governor bucket; ``governed=False`` skips the governor (a login the
        vendor does not count); ``session=False`` leaves out the session headers.
        """
        client = self._client_for_loop()
        retry, renewed = 0, False
        while True:
            sent: dict[str, str] = dict(headers or {})
            used: Mapping[str, str] = {}
            if session and self._session_headers is not None:
                used = await self._session_headers()
                sent.update(used)
            request = client.build_request(method, path, params=params, json=json, headers=sent)
            url = redact_url(request.url, self._secrets)
            response: httpx.Response | None = None
            try:
                response = await self._send(client, request, url, bucket, governed, tally)
                return self._parse(response, parse, url)
            except SessionExpired as exc:
                if self._reauth is None or renewed:
                    raise self._final(exc, url, retry + 1) from None
                renewed = True
                log.info("%s: session expired on %s %s; logging in again", self.vendor, method, url)
                await self._reauth(used)
                continue
            except TransientVendorError as exc:
                error: TransientVendorError = exc
            except EtlError as exc:  # permanent, schema, quota, auth, config: final
                raise self._final(exc, url, retry + 1) from None
            retry += 1
            if retry > self.retry.retries:
                raise self._final(error, url, retry) from None
            delay = self._pause(error, response, bucket if governed else None, retry, url)
            reason = self.redact(error.bare_message)
            log.warning(
                "%s: %s %s failed (%s); retry %d of %d in %.2f s",
                self.vendor, method, url, reason, retry, self.retry.retries, delay,
            )  # fmt: skip
            await asyncio.sleep(delay)

    async def _send(
        self,
        client: httpx.AsyncClient,
        request: httpx.Request,
        url: str,
        bucket: str | None,
        governed: bool,
        tally: Tally | None,
    ) -> httpx.Response:
        if governed and self.governor is not None:
            async with self.governor.slot(bucket):
                return await self._transmit(client, request, url, tally)
        return await self._transmit(client, request, url, tally)

    async def _transmit(
        self, client: httpx.AsyncClient, request: httpx.Request, url: str, tally: Tally | None
    ) -> httpx.Response:
        self.requests += 1
        if tally is not None:
            tally.requests += 1
        told = self._tell_when_sent(request)
        try:
            response = await client.send(request)
            told()  # a transport that reports no sending (a test's): counted on the answer
            return response
        except httpx.TimeoutException as exc:
            raise TransientVendorError(
                f"timed out ({type(exc).__name__})", vendor=self.vendor, url=url
            ) from None
        except httpx.UnsupportedProtocol:
            raise ConfigError(
                f"{self.vendor}: base URL is not http(s): set ETL_{self.vendor.upper()}_BASE_URL",
                url=url,
            ) from None
        except httpx.RequestError as exc:  # refused, reset, truncated body, bad gzip
            detail = self.redact(str(exc)) or "no detail"
            raise TransientVendorError(
                f"transport error ({type(exc).__name__}: {detail})", vendor=self.vendor, url=url
            ) from None

    def _tell_when_sent(self, request: httpx.Request) -> Callable[[], None]:
        """Tell ``on_request`` as ``request`` starts to be written to its connection: not
        earlier (a refused connection, or a kill while connecting, sent nothing the vendor
        could count) and not after the write (a kill between the write and the count would
        hide a request the vendor did see). Only a kill during the write itself leaves the
        count one above what the vendor saw. Returns a function that tells it now if the
        transport reported nothing (a test's transport); it tells once either way."""
        on_request = self.on_request
        if on_request is None:
            return lambda: None
        told = False

        def tell() -> None:
            nonlocal told
            if not told:
                told = True
                on_request(request.method, request.url.path)

        async def trace(event: str, info: dict[str, Any]) -> None:
            del info
            if event.endswith("send_request_headers.started"):  # http11. or http2.
                tell()

        request.extensions = {**request.extensions, "trace": trace}
        return tell

    def _parse(self, response: httpx.Response, parse: Callable[[httpx.Response], T], url: str) -> T:
        status = response.status_code
        if status == 429:
            raise RateLimited(
                f"HTTP 429: {self._snippet(response)}",
                retry_after=retry_after(response),
                vendor=self.vendor,
                url=url,
            )
        if status >= 500:
            raise TransientVendorError(
                f"HTTP {status}: {self._snippet(response)}", vendor=self.vendor, url=url
            )
        try:
            return parse(response)
        except (JSONDecodeError, UnicodeDecodeError) as exc:
            raise TransientVendorError(
                f"malformed body ({type(exc).__name__}, HTTP {status})", vendor=self.vendor, url=url
            ) from None

    def _pause(
        self,
        error: TransientVendorError,
        response: httpx.Response | None,
        bucket: str | None,
        retry: int,
        url: str,
    ) -> float:
        """How long to sleep before ``retry``; a vendor's ban goes to the governor first."""
        delay = self.retry.delay(retry, self._rng)
        if not isinstance(error, RateLimited):
            return delay
        after = error.retry_after
        if after is None and response is not None:
            after = retry_after(response)
        if after is not None and after > self.retry.max_retry_after:
            raise self._final(error, url, retry)
        ban = self._rate_limit_ban or after
        if ban and self.governor is not None:
            self.governor.ban(bucket, ban)  # the next slot waits it out, in every process
            return max(0.0, delay - ban)
        return max(delay, after or 0.0)

    def _final(self, exc: EtlError, url: object, attempts: int) -> EtlError:
        """``exc``, scrubbed of secrets and annotated with the vendor, URL and attempts."""
        fields = {"vendor": self.vendor, "url": url, "attempts": attempts}
        for key, value in fields.items():
            if value is not None:
                exc.fields.setdefault(key, value)
        exc.fields = {k: self.redact(v) if isinstance(v, str) else v for k, v in exc.fields.items()}
        exc.bare_message = self.redact(exc.bare_message)
        exc.args = (exc._render(),)
        return exc

    def _snippet(self, response: httpx.Response) -> str:
        try:
            text = response.text
        except (UnicodeDecodeError, LookupError):
            return f"{len(response.content)} bytes"
        text = " ".join(text.split())
        return self.redact(text[:_SNIPPET] + ("…" if len(text) > _SNIPPET else "")) or "(empty)"
