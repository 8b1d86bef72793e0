"""StockTV's REST API (stocktv.top) as docs/vendors/stocktv.md specifies it.

Every answer is HTTP 200 with the envelope ``{"code","message","data"}``, errors included
(``参数错误`` 400, ``key无效`` 401, ``数据不存在`` 404, ``请求过于频繁`` 429); only the
``http_500`` fault and socket faults leave it. Auth is the query parameter ``key``: any
non-empty key, or only ``ETL_STOCKTV_API_KEY`` when the CLI edge passes one in. Limit: 5
requests in any sliding second per key; a refused request does not count and there is no
ban. The data lives in :mod:`etl.emulators.stocktv_data`.

Conventions of this emulator where docs/vendors/stocktv.md leaves a detail open:

- an unknown path answers HTTP 404 with the envelope ``{"code":404,"message":"Not Found"}``;
- ``/stock/stocks`` for another country than 14, 5 or 2 is an empty page, as is
  ``/stock/indices``, and ``flag`` keeps the indices of that country code only;
- ``schema_drift`` applies to bars and to the records of ``/stock/stocks`` and
  ``/stock/indices``: ``extra`` adds ``"amount":0``, ``rename`` turns ``time`` into
  ``timestamp`` (index records have no ``time``);
- ``malformed_json`` sends a cut-off envelope; ``http_500`` a plain-text page.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

from etl.emulators import stocktv_data as rows
from etl.emulators.base import Emulator, Limit
from etl.emulators.faults import Fault
from etl.emulators.limits import Rate
from etl.emulators.payload import apply_bar_faults, drift_rows
from etl.emulators.wire import Call, Principal, Reply, Request, Route, json_reply

__all__ = ["StockTVEmulator"]

LIMITS: Final = (Rate(5, 1.0),)
MAX_PAGE_SIZE: Final = 500
MSG_OK: Final = "操作成功"
MSG_BAD_PARAM: Final = "参数错误"
MSG_BAD_KEY: Final = "key无效"
MSG_NO_DATA: Final = "数据不存在"
MSG_TOO_MANY: Final = "请求过于频繁"
_INT: Final = re.compile(r"-?\d{1,18}")
DRIFT_EXTRA: Final = ("amount", 0)  # schema_drift:extra, docs/vendors/stocktv.md
DRIFT_RENAME: Final = ("time", "timestamp")  # schema_drift:rename


class _ParamError(Exception):
    """A 400 ``参数错误``."""


def _envelope(code: int, message: str, data: Any, status: int = 200) -> Reply:
    return json_reply(status, {"code": code, "message": message, "data": data})


def _ok(data: Any) -> Reply:
    return _envelope(200, MSG_OK, data)


def _error(code: int, message: str) -> Reply:
    return _envelope(code, message, None)


def _int(call: Call, name: str, *, default: int | None = None, required: bool = False) -> Any:
    text = call.param(name)
    if text is None or text == "":
        if required:
            raise _ParamError(name)
        return default
    if not _INT.fullmatch(text.strip()):
        raise _ParamError(name)
    return int(text)


def _same(given: str, wanted: str) -> bool:
    """Constant-time comparison; bytes, since compare_digest refuses non-ASCII str."""
    return secrets.compare_digest(given.encode("utf-8"), wanted.encode("utf-8"))


class StockTVEmulator(Emulator):
    """StockTV's REST API; data from etl.synthetic at the emulator's ``now``."""

    vendor: ClassVar[str] = "stocktv"
    ws_path: ClassVar[str | None] = "/connect"
    extra_options: ClassVar[Mapping[str, str]] = {
        "ws_symbols": "canonical symbols the key's WebSocket feed pushes (comma list)"
    }

    def routes(self) -> Sequence[Route]:
        return [
            Route("GET", "/stock/stocks", self._stocks, "data"),
            Route("GET", "/stock/kline", self._kline, "kline"),
            Route("GET", "/stock/indices", self._indices, "data"),
            Route("GET", "/market/currencyList", self._currencies),
        ]

    # -- auth, limits, faults --------------------------------------------------------------

    def ws_session(self, request: Request) -> Any:
        from etl.emulators.stocktv_ws import open_session

        return open_session(self, request)

    def ws_reject(self, request: Request) -> Reply:
        return json_reply(401, {"code": 401, "message": "key无效", "data": None})

    def authenticate(self, request: Request, route: Route) -> Principal | Reply:
        key = (request.params.get("key") or "").strip()
        wanted = self.options.api_key
        if not key or (wanted is not None and not _same(key, wanted)):
            return _error(401, MSG_BAD_KEY)
        return Principal(key)

    def limit(self, call: Call, route: Route) -> Limit | None:
        return Limit(("key", call.principal.key), LIMITS)

    def over_limit(self, call: Call, reason: str) -> Reply:
        return _error(429, MSG_TOO_MANY)

    def fault_reply(self, fault: Fault, call: Call) -> Reply:
        if fault.name == "auth_expired":
            return _error(401, MSG_BAD_KEY)
        if fault.name == "malformed_json":
            body = '{"code":200,"message":"操作成功","data":[{"time":1719818400000,"open":'
            return Reply(200, body.encode("utf-8"))
        return super().fault_reply(fault, call)  # rate_limit_burst, http_500 (plain text)

    def not_found(self, request: Request) -> Reply:
        return _envelope(404, "Not Found", None, status=404)

    def method_not_allowed(self, request: Request) -> Reply:
        return _envelope(405, "Method Not Allowed", None, status=405)

    # -- endpoints ---------------------------------------------------------------------------

    def _drift(self, records: list[dict[str, Any]], call: Call) -> list[dict[str, Any]]:
        return drift_rows(records, call.faults, extra=DRIFT_EXTRA, rename=DRIFT_RENAME)

    def _stocks(self, call: Call) -> Reply:
        try:
            country = _int(call, "countryId", required=True)
            page = _int(call, "page", default=1)
            size = _int(call, "pageSize", default=10)
            exchange = _int(call, "exchangeId")
            if page < 1:
                raise _ParamError("page")
            if not 1 <= size <= MAX_PAGE_SIZE:
                raise _ParamError("pageSize")
        except _ParamError:
            return _error(400, MSG_BAD_PARAM)
        symbol = call.param("symbol") or None
        found = rows.stock_records(country, exchange, symbol, self.now(), self.seed)
        chunk = found[(page - 1) * size : page * size]
        data = {
            "records": self._drift(chunk, call),
            "total": len(found),
            "current": page,
            "pages": math.ceil(len(found) / size),
            "size": size,
        }
        return _ok(data)

    def _kline(self, call: Call) -> Reply:
        try:
            pid = _int(call, "pid", required=True)
            interval = call.param("interval")
            if interval not in rows.INTERVALS:
                raise _ParamError("interval")
            start = _int(call, "startTime")
            end = _int(call, "endTime")
            if start is not None and end is not None and start > end:
                raise _ParamError("startTime")
        except _ParamError:
            return _error(400, MSG_BAD_PARAM)
        item = rows.listing(pid, self.seed)
        if item is None:
            return _error(404, MSG_NO_DATA)
        bars = rows.kline_bars(item, rows.INTERVALS[interval], start, end, self.now(), self.seed)
        bars = apply_bar_faults(bars, call.faults, stream=str(pid))
        return _ok(self._drift([rows.encode_bar(b, item.kind) for b in bars], call))

    def _indices(self, call: Call) -> Reply:
        try:
            country = _int(call, "countryId", required=True)
        except _ParamError:
            return _error(400, MSG_BAD_PARAM)
        flag = call.param("flag")
        found = rows.index_records(country, self.now(), self.seed)
        if flag and flag.upper() != rows.COUNTRIES.get(country):
            found = []
        return _ok(self._drift(found, call))

    def _currencies(self, call: Call) -> Reply:
        return _ok(rows.currency_list(self.now(), self.seed))
