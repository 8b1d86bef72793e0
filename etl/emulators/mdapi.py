"""mdapi (脉动数据) as docs/vendors/mdapi.md specifies it: four GET endpoints on plain HTTP.

No credentials: the vendor allow-lists IPs, and this emulator allows every client unless the
switch ``ip_refused`` is on (then every endpoint answers 403 ``IP未授权``; ``auth_expired`` does
the same, since mdapi has no other auth error; like every fault it answers after the limits are
judged, so a client over a limit still sees 429 first). Bodies are gzipped when the client
accepts it.

Limits, each a sliding second with a 10 s ban: ``redis.php`` 5 per product ``code``,
``getQuote.php`` 3 per ``code``, the two list endpoints 2 together per client IP. The request
over a limit gets code 429 ``请求过于频繁`` and bans its bucket (only that one) for 10 s from
its arrival; every request in the ban gets the same answer, is counted as a violation, and
does not extend it. ``rate_limit_burst`` answers the same and starts the same ban.

Errors are HTTP 200 envelopes with the vendor's messages verbatim. Conventions of this emulator
where docs/vendors/mdapi.md leaves a detail open:

- an unknown path answers HTTP 404 with a web server's page, another method on a known path 405;
- ``getSymbolList.php``: ``page`` / ``pageSize`` that are not whole numbers ≥ 1 are a 400; an
  unknown ``category`` is an empty list (``total`` 0);
- ``redis.php``: ``rows`` ``""`` is a 400 like any other non-integer;
- ``http_500`` is an empty body; ``malformed_json`` is PHP's warning page in front of the JSON;
- ``schema_drift:extra`` adds an 8th element ``0`` to bar rows and ``Amplitude`` to quotes;
  ``:rename`` sends bar rows as objects and renames the quote's ``Price`` to ``price``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

from etl.emulators import mdapi_data as data
from etl.emulators.base import Emulator, EmulatorOptions, Limit
from etl.emulators.faults import Fault, FaultDef, catalogue
from etl.emulators.limits import Rate
from etl.emulators.payload import apply_bar_faults, drift_row
from etl.emulators.wire import Call, Reply, Request, Route, json_reply
from etl.emulators.ws import ConnectionCount
from etl.errors import BadInputError

__all__ = ["MdapiEmulator"]

BAN: Final = 10.0
KLINE_RATE: Final = Rate(5, 1.0, ban=BAN)
QUOTE_RATE: Final = Rate(3, 1.0, ban=BAN)
LIST_RATE: Final = Rate(2, 1.0, ban=BAN)

MSG_PARAM: Final = "参数错误"
MSG_IP: Final = "IP未授权"
MSG_UNKNOWN: Final = "产品不存在"
MSG_TOO_MANY: Final = "请求过于频繁"
PAGE_SIZE_MAX: Final = 100
PAGE_SIZE_DEFAULT: Final = 10
_PHP_WARNING: Final = (
    b"<br />\n<b>Warning</b>:  Redis::connect(): connect() timed out in "
    b"<b>/www/wwwroot/api/redis.php</b> on line <b>12</b><br />\n"
    b'{"code":200,"msg":"success","data":[]}'
)
_NOT_FOUND: Final = (
    b"<html><head><title>404 Not Found</title></head><body>404 Not Found</body></html>"
)
_HTML: Final = "text/html; charset=utf-8"
_ROW_KEYS: Final = ("ts", "open", "high", "low", "close", "time", "volume")


def _error(code: int, message: str) -> Reply:
    return json_reply(200, {"code": code, "msg": message})


def _ok(payload: Any) -> Reply:
    return json_reply(200, {"code": 200, "msg": "success", "data": payload})


def _whole(text: str | None, default: int) -> int | None:
    """A query integer ≥ 1 (``default`` when absent), or None when it is anything else."""
    if text is None:
        return default
    value = text.strip()
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        return None
    return int(value)


class MdapiEmulator(Emulator):
    """mdapi's HTTP API; data from etl.synthetic at the emulator's ``now``."""

    vendor: ClassVar[str] = "mdapi"
    ws_path: ClassVar[str | None] = "/ws"
    base_path: ClassVar[str] = ""
    gzip_bodies: ClassVar[bool] = True
    fault_table: ClassVar[Mapping[str, FaultDef]] = catalogue(
        faults=(
            FaultDef(
                "ip_refused", "decide", "any",
                help="403 IP未授权 on every endpoint: the client's IP is not allow-listed",
            ),
        )
    )  # fmt: skip

    extra_options: ClassVar[Mapping[str, str]] = {
        "products": "made-up crypto pairs listed and served over HTTP beyond the 47 (default 0)",
    }

    def __init__(self, options: EmulatorOptions | None = None) -> None:
        super().__init__(options)
        self._ws_open = ConnectionCount()  # WebSocket connections per client address
        more = str(self.options.extra.get("products", 0))
        if not more.isascii() or not more.isdigit():
            raise BadInputError(f"products must be a whole number, not {more!r}")
        self.products = data.PRODUCTS + data.more_coins(int(more))
        self.by_code = {p.code: p for p in self.products}

    def routes(self) -> Sequence[Route]:
        return [
            Route("GET", "/getQuote.php", self._quote, "data"),
            Route("GET", "/redis.php", self._redis, "kline"),
            Route("GET", "/getCategory.php", self._categories),
            Route("GET", "/getSymbolList.php", self._symbols),
        ]

    # -- limits and faults -------------------------------------------------------------------

    def limit(self, call: Call, route: Route) -> Limit | None:
        code = call.param("code") or ""
        if route.pattern == "/redis.php":
            return Limit(("kline", code), (KLINE_RATE,))
        if route.pattern == "/getQuote.php":
            return Limit(("quote", code), (QUOTE_RATE,))
        return Limit(("list", call.principal.key), (LIST_RATE,))

    def over_limit(self, call: Call, reason: str) -> Reply:
        return _error(429, MSG_TOO_MANY)

    def fault_reply(self, fault: Fault, call: Call) -> Reply:
        if fault.name == "rate_limit_burst":
            lim = self.limit(call, call.route)
            assert lim is not None
            self.limiter.ban(lim.bucket, BAN)  # as if the quota were spent: the real ban
            return self.over_limit(call, "injected")
        if fault.name == "http_500":
            return Reply(500, b"", _HTML)
        if fault.name == "malformed_json":
            return Reply(200, _PHP_WARNING, _HTML)
        if fault.name in ("ip_refused", "auth_expired"):
            return _error(403, MSG_IP)
        return super().fault_reply(fault, call)

    def ws_session(self, request: Request) -> Any:
        from etl.emulators.mdapi_ws import open_session

        return open_session(self, request, self._ws_open)

    def ws_reject(self, request: Request) -> Reply:
        return _error(403, MSG_IP)

    def not_found(self, request: Request) -> Reply:
        return Reply(404, _NOT_FOUND, _HTML)

    def method_not_allowed(self, request: Request) -> Reply:
        return Reply(405, b"<html><body>405 Not Allowed</body></html>", _HTML)

    # -- endpoints ---------------------------------------------------------------------------

    def _categories(self, call: Call) -> Reply:
        return _ok({"list": [{"id": i, "name": name} for i, name in data.CATEGORIES]})

    def _symbols(self, call: Call) -> Reply:
        category = call.param("category")
        page = _whole(call.param("page"), 1)
        size = _whole(call.param("pageSize"), PAGE_SIZE_DEFAULT)
        if not category or page is None or size is None:
            return _error(400, MSG_PARAM)
        size = min(size, PAGE_SIZE_MAX)
        listed = [p for p in self.products if p.category == category]
        chunk = listed[(page - 1) * size : page * size]
        items = [{"code": p.code, "name": p.name} for p in chunk]
        return _ok({"total": len(listed), "list": items})

    def _quote(self, call: Call) -> Reply:
        code = call.param("code")
        if not code:
            return _error(400, MSG_PARAM)
        product = self.by_code.get(code)
        if product is None:
            return _error(404, MSG_UNKNOWN)
        body = data.quote_body(product, self.now(), self.seed)
        for f in call.faults.modifiers("schema_drift"):
            body = drift_row(body, f, extra=("Amplitude", 0.0), rename=("Price", "price"))
            call.faults.mark(f)
        return _ok({"body": body})

    def _redis(self, call: Call) -> Reply:
        code, freq = call.param("code"), call.param("time")
        if not code or freq not in data.ROWS_MAX:
            return _error(400, MSG_PARAM)
        rows = _whole(call.param("rows"), data.ROWS_MAX[freq])
        if rows is None:
            return _error(400, MSG_PARAM)
        product = self.by_code.get(code)
        if product is None:
            return _error(404, MSG_UNKNOWN)
        rows = min(rows, data.ROWS_MAX[freq])
        bars = data.latest_bars(product, freq, rows, self.now(), self.seed)
        bars = apply_bar_faults(bars, call.faults, stream=code)
        encoded = [data.encode_bar(b, fx=product.fx) for b in bars]
        return json_reply(200, self._drift(encoded, call))

    def _drift(self, rows: list[list[Any]], call: Call) -> list[Any]:
        """``schema_drift`` on bar rows: ``extra`` appends ``0``, ``rename`` makes objects."""
        out: list[Any] = rows
        for f in call.faults.modifiers("schema_drift"):
            if f.variant == "rename":
                out = [dict(zip(_ROW_KEYS, r, strict=False)) for r in out]
            else:
                out = [[*r, 0] if isinstance(r, list) else {**r, "extra": 0} for r in out]
            if out:
                call.faults.mark(f)
        return out
