"""The HTTP vocabulary between the server and an emulator: requests, replies, routes.

Emulators never touch sockets: a route handler takes a :class:`Call` and returns a
:class:`Reply`; socket-level faults are :class:`Outcome` flags the server acts on. That keeps
the vendor modules about the vendor's protocol only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from etl.emulators.faults import ActiveFaults

__all__ = [
    "JSON_TYPE",
    "Call",
    "Category",
    "Outcome",
    "Principal",
    "Reply",
    "Request",
    "Route",
    "json_bytes",
    "json_reply",
]

JSON_TYPE: Final = "application/json; charset=utf-8"
# ``kline``: answers with bars (bar faults apply); ``data``: other answers with rows
# (``schema_drift`` applies); ``meta``: other vendor calls; ``auth``: logins.
Category = Literal["kline", "data", "meta", "auth"]


@dataclass(frozen=True)
class Request:
    """One parsed HTTP request. ``path`` is decoded and has no query; ``params`` keeps the
    first value of each query parameter; header names are lower case."""

    method: str
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    client: str

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body as JSON; raises ValueError when it is not."""
        return json.loads(self.body.decode("utf-8"))


@dataclass(frozen=True)
class Principal:
    """Who is calling, as far as limits care: a user name, a key, or the client IP."""

    key: str
    name: str = ""


@dataclass(frozen=True)
class Call:
    """What a route handler gets: the request, path parameters, the caller and the faults
    on for this request (handlers apply the ``modify`` ones to their rows)."""

    request: Request
    route: Route
    path_params: Mapping[str, str]
    principal: Principal
    faults: ActiveFaults

    def param(self, name: str) -> str | None:
        return self.request.params.get(name)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: Mapping[str, str] = field(default_factory=dict)


def json_bytes(doc: Any) -> bytes:
    """Compact UTF-8 JSON, Chinese verbatim. ``allow_nan`` stays on: a NaN price is written
    as the bare ``NaN`` token, which is exactly what the ``bad_prices:nan`` fault sends."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_reply(status: int, doc: Any, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, json_bytes(doc), JSON_TYPE, dict(headers or {}))


Handler = Callable[[Call], Reply]


@dataclass(frozen=True)
class Route:
    """``METHOD pattern`` -> handler. ``pattern`` is below the vendor's base path and may
    hold ``{name}`` segments. ``auth=False``: no credentials needed (a login)."""

    method: str
    pattern: str
    handler: Handler
    category: Category = "meta"
    auth: bool = True

    def match(self, path: str) -> dict[str, str] | None:
        m = _compiled(self.pattern).fullmatch(path)
        return None if m is None else m.groupdict()


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    found = _PATTERNS.get(pattern)
    if found is None:
        parts = re.split(r"\{(\w+)\}", pattern)
        text = "".join(
            re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts)
        )
        found = _PATTERNS[pattern] = re.compile(text)
    return found


@dataclass(frozen=True)
class Outcome:
    """What the server does with one request: send ``reply``, or act on the socket.

    ``reset``: close with a TCP reset before any byte; ``hang``: send nothing for that many
    seconds, then close; ``truncate``: announce the full length, send half, close.
    """

    reply: Reply | None = None
    reset: bool = False
    hang: float | None = None
    truncate: bool = False
