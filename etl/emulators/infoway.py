"""Infoway's REST API (``data.infoway.io``) as docs/vendors/infoway.md specifies it.

Auth is the ``apiKey`` header on every call: missing or refused → 401 ``Token invalid``. Limits
are per key, by plan (option ``plan``: Free, Basic, Premium (default) or Pro): a request that
would exceed the plan's requests in any sliding 1 s or 60 s gets 429 ``Rate limit exceeded``
and takes no place in the windows; ``/package/info`` counts. No daily cap unless injected
(``rate_limit_burst:ret502``).

Both kline forms serve identical ``data``: ``GET /{market}/batch_kline/{type}/{num}/{codes}``
(query ``timestamp``) and ``POST /{market}/v2/batch_kline``; ``{market}`` is ``stock``,
``crypto`` or ``common``. One code gets up to 500 bars, several codes (≤ 100) their 2 latest
each; ``timestamp`` (exclusive) cuts klineType 1–7, which reach back ``maxYearHisData``
years (an older ``timestamp`` is ``Timestamp limit error``).

Conventions of this emulator where the spec leaves a detail open:

- a bad parameter is a business error naming the first wrong one, checked in the order
  klineType (6, 7, 11, 12 are not served here), klineNum, codes, timestamp
  (``Param error：timestamp``, ours);
- bad parameters of ``/common/basic/*`` are RFC 7807 400s; an unknown ``{market}`` is 404;
- ``missing_bars`` drops bars inside the page and the page stays ``klineNum`` long (the
  vendor lacks those bars; paging by count goes on past them);
- ``schema_drift`` on ``/common/basic/symbols``: ``extra`` adds ``"x":"1"``, ``rename``
  turns ``symbol`` into ``code``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

from etl.emulators import infoway_data as rows
from etl.emulators.base import Emulator, EmulatorOptions, Limit
from etl.emulators.faults import ActiveFaults, Fault, FaultDef, catalogue
from etl.emulators.limits import Rate
from etl.emulators.payload import apply_bar_faults, drift_rows
from etl.emulators.wire import Call, Principal, Reply, Request, Route, json_reply
from etl.errors import BadInputError
from etl.synthetic.hashing import key_of

__all__ = ["InfowayEmulator"]

MAX_KLINES: Final = 500
MAX_CODES: Final = 100
SEVERAL_CODES_BARS: Final = 2
MSG_RATE: Final = "Rate limit exceeded"
MSG_NO_PRODUCT: Final = "All product not exists"
MSG_HISTORY: Final = "Timestamp limit error"
MSG_KLINES: Final = "Kline quantity exceeds the limit：500"
MSG_CODES: Final = "Product quantity exceeds the limit：100"
MSG_PER_MINUTE: Final = "Request exceed limit"
MSG_DAY: Final = "Request for day limit"
MARKETS: Final = ("stock", "crypto", "common")
CALENDARS: Final = ("CN", "HK", "US")
GATEWAY_500: Final = (
    b"<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
    b"<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


class _Refused(Exception):
    """A business error (HTTP 200, ``ret`` 500) with the vendor's message."""


def _param(name: str) -> _Refused:
    return _Refused(f"Param error：{name}")


def _whole(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _problem(status: int, title: str, detail: str, path: str) -> Reply:
    doc = {"type": "about:blank", "title": title, "status": status, "detail": detail,
           "instance": path}  # fmt: skip
    return Reply(status, json_reply(status, doc).body, "application/problem+json")


class InfowayEmulator(Emulator):
    """Infoway's REST API; data from etl.synthetic at the emulator's ``now``."""

    vendor: ClassVar[str] = "infoway"
    ws_path: ClassVar[str | None] = "/ws"
    fault_table: ClassVar[Mapping[str, FaultDef]] = catalogue(
        variants={"rate_limit_burst": ("detail200", "ret501", "ret502")}
    )
    extra_options: ClassVar[Mapping[str, str]] = {
        "plan": "the key's plan: Free, Basic, Premium (default) or Pro"
    }

    def __init__(self, options: EmulatorOptions | None = None) -> None:
        super().__init__(options)
        name = str(self.options.extra.get("plan", "Premium")).strip().lower()
        if name not in rows.PLANS:
            known = ", ".join(p.name for p in rows.PLANS.values())
            raise BadInputError(f"unknown Infoway plan {name!r}: use one of {known}")
        self.plan_spec = rows.PLANS[name]
        self._rates = (
            Rate(self.plan_spec.per_second, 1.0),
            Rate(self.plan_spec.per_minute, 60.0),
        )

    def routes(self) -> Sequence[Route]:
        return [
            Route("GET", "/{market}/batch_kline/{kline_type}/{kline_num}/{codes}",
                  self._kline_get, "kline"),
            Route("POST", "/{market}/v2/batch_kline", self._kline_post, "kline"),
            Route("GET", "/common/basic/symbols", self._symbols, "data"),
            Route("GET", "/common/basic/markets/trading_days", self._trading_days),
            Route("GET", "/common/basic/symbols/adjustment_factors", self._factors, "data"),
            Route("GET", "/package/info", self._package),
        ]  # fmt: skip

    # -- auth, limits, faults ----------------------------------------------------------------

    def _token_invalid(self) -> Reply:
        stamp = int(self.now().timestamp() * 1000)
        return json_reply(401, {"code": 401, "message": "Token invalid", "timestamp": stamp})

    def authenticate(self, request: Request, route: Route) -> Principal | Reply:
        key = (request.header("apikey") or "").strip()
        wanted = self.options.api_key
        if not key or (
            wanted is not None and not secrets.compare_digest(key.encode(), wanted.encode())
        ):
            return self._token_invalid()
        return Principal(key)

    def limit(self, call: Call, route: Route) -> Limit | None:
        return Limit(("key", call.principal.key), self._rates)

    def over_limit(self, call: Call, reason: str) -> Reply:
        return json_reply(429, {"detail": MSG_RATE})

    def fault_reply(self, fault: Fault, call: Call) -> Reply:
        if fault.name == "rate_limit_burst":
            if fault.variant == "detail200":
                return json_reply(200, {"detail": MSG_RATE})
            if fault.variant == "ret501":
                return self._envelope(call, 501, MSG_PER_MINUTE, None)
            if fault.variant == "ret502":
                return self._envelope(call, 502, MSG_DAY, None)
            return self.over_limit(call, "injected")
        if fault.name == "http_500":
            return Reply(500, GATEWAY_500, "text/html")
        if fault.name == "malformed_json":
            return Reply(200, b'{"ret":200,"msg":"success","data":[{"s":"AAPL.US","respList":}]}')
        if fault.name == "auth_expired":
            return self._token_invalid()
        return super().fault_reply(fault, call)

    def ws_session(self, request: Request) -> Any:
        from etl.emulators.infoway_ws import open_session

        return open_session(self, request)

    def ws_reject(self, request: Request) -> Reply:
        return self._token_invalid()

    # -- envelopes -----------------------------------------------------------------------------

    def _trace(self, call: Call) -> str:
        n = call.faults.request_no
        high, low = key_of(self.seed, "trace", n), key_of(self.seed, "trace-low", n)
        return str(uuid.UUID(int=(high << 64) | low))

    def _envelope(self, call: Call, ret: int, msg: str, data: Any) -> Reply:
        doc = {"ret": ret, "msg": msg, "traceId": self._trace(call), "data": data}
        return json_reply(200, doc)

    def _ok(self, call: Call, data: Any) -> Reply:
        return self._envelope(call, 200, "success", data)

    # -- endpoints -----------------------------------------------------------------------------

    def _package(self, call: Call) -> Reply:
        return self._ok(call, rows.package_info(self.plan_spec, self.now()))

    def _symbols(self, call: Call) -> Reply:
        kind = call.param("type")
        path = call.request.path
        if kind is None:
            detail = "Required parameter 'type' is not present."
            return _problem(400, "Bad Request", detail, path)
        if kind not in rows.SYMBOL_TYPES:
            detail = f"Parameter 'type' must be one of {', '.join(rows.SYMBOL_TYPES)}."
            return _problem(400, "Bad Request", detail, path)
        only = [c.strip() for c in (call.param("symbols") or "").split(",") if c.strip()]
        found = rows.symbols_of(kind, self.now(), self.seed, only)
        drifted = drift_rows(found, call.faults, extra=("x", "1"), rename=("symbol", "code"))
        return self._ok(call, drifted)

    def _trading_days(self, call: Call) -> Reply:
        path = call.request.path
        values: dict[str, str] = {}
        for name in ("market", "beginDay", "endDay"):
            value = call.param(name)
            if value is None:
                detail = f"Required parameter '{name}' is not present."
                return _problem(400, "Bad Request", detail, path)
            values[name] = value
        if values["market"] not in CALENDARS:
            detail = f"Parameter 'market' must be one of {', '.join(CALENDARS)}."
            return _problem(400, "Bad Request", detail, path)
        days = []
        for name in ("beginDay", "endDay"):
            try:
                days.append(dt.datetime.strptime(values[name], "%Y%m%d").date())  # noqa: DTZ007
            except ValueError:
                detail = f"Parameter '{name}' must be a day YYYYMMDD."
                return _problem(400, "Bad Request", detail, path)
        return self._ok(call, rows.trading_days(values["market"], days[0], days[1]))

    def _factors(self, call: Call) -> Reply:
        path = call.request.path
        values: dict[str, str] = {}
        for name in ("symbol", "market", "beginDay", "endDay"):
            value = call.param(name)
            if value is None or not value.strip():
                detail = f"Required parameter '{name}' is not present."
                return _problem(400, "Bad Request", detail, path)
            values[name] = value.strip()
        if values["market"] not in rows.FACTOR_MARKETS:
            detail = f"Parameter 'market' must be one of {', '.join(rows.FACTOR_MARKETS)}."
            return _problem(400, "Bad Request", detail, path)
        days = []
        for name in ("beginDay", "endDay"):
            try:
                days.append(dt.datetime.strptime(values[name], "%Y%m%d").date())  # noqa: DTZ007
            except ValueError:
                detail = f"Parameter '{name}' must be a day YYYYMMDD."
                return _problem(400, "Bad Request", detail, path)
        found = rows.adjustment_factors(
            values["market"], values["symbol"], days[0], days[1], self.now(), self.seed
        )
        if found is None:
            return self._envelope(call, 400, f"unknown symbol: {values['symbol']}", None)
        return self._ok(call, found)

    def _kline_get(self, call: Call) -> Reply:
        p = call.path_params
        query = {"klineType": p["kline_type"], "klineNum": p["kline_num"], "codes": p["codes"]}
        if call.param("timestamp") is not None:
            query["timestamp"] = call.param("timestamp") or ""
        return self._klines(call, p["market"], query)

    def _kline_post(self, call: Call) -> Reply:
        try:
            body = call.request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self._envelope(call, 500, "Param error：codes", None)
        return self._klines(call, call.path_params["market"], body)

    def _klines(self, call: Call, market: str, query: Mapping[str, Any]) -> Reply:
        if market not in MARKETS:
            return self.not_found(call.request)
        try:
            freq, count, codes, before = self._kline_query(query)
            if before is not None and freq in ("1d", "1w", "1M"):
                before = None  # klineType >= 8 ignores timestamp
            known = rows.known_codes(market, codes, self.now(), self.seed)
            if not known:
                raise _Refused(MSG_NO_PRODUCT)
            floor = None
            if freq not in ("1d", "1w", "1M"):
                floor = rows.history_start(self.now(), self.plan_spec.years)
                if before is not None and before < floor.timestamp():
                    raise _Refused(MSG_HISTORY)
        except _Refused as exc:
            return self._envelope(call, 500, str(exc), None)
        if len(codes) > 1:
            count = min(count, SEVERAL_CODES_BARS)
        data = []
        for code, symbol in known.items():
            bars = self._bars(call.faults, code, symbol, freq, count, before, floor)
            data.append({"s": code, "respList": bars})
        return self._ok(call, data)

    def _kline_query(self, query: Mapping[str, Any]) -> tuple[str, int, list[str], int | None]:
        kline_type = _whole(query.get("klineType"))
        if kline_type not in rows.FREQS:
            raise _param("klineType")
        count = _whole(query.get("klineNum"))
        if count is None or count < 1:
            raise _param("klineNum")
        if count > MAX_KLINES:
            raise _Refused(MSG_KLINES)
        raw = query.get("codes")
        codes = [c.strip() for c in raw.split(",") if c.strip()] if isinstance(raw, str) else []
        if not codes:
            raise _param("codes")
        codes = list(dict.fromkeys(codes))
        if len(codes) > MAX_CODES:
            raise _Refused(MSG_CODES)
        before = None
        if query.get("timestamp") not in (None, ""):
            before = _whole(query.get("timestamp"))
            if before is None or before < 0:
                raise _param("timestamp")
        return rows.FREQS[kline_type], count, codes, before

    def _bars(
        self,
        active: ActiveFaults,
        code: str,
        symbol: str,
        freq: str,
        count: int,
        before: int | None,
        floor: dt.datetime | None,
    ) -> list[dict[str, Any]]:
        """One code's ``respList``, with this request's bar faults and drift applied."""
        missing = active.modifiers("missing_bars")
        extra = count // 5 + 2 if missing else 0
        clean = rows.page(symbol, freq, count + extra, before, self.now(), self.seed, floor)
        bars = clean
        if missing:  # the page stays klineNum long: drop inside, then cut
            only = dataclasses.replace(active, faults=tuple(missing))
            bars = apply_bar_faults(bars, only, stream=code)[:count]
            clean = clean[:count]
        others = tuple(f for f in active.faults if f.name != "missing_bars")
        bars = apply_bar_faults(bars, dataclasses.replace(active, faults=others), stream=code)
        encoded = rows.encode_rows(bars, clean)
        return drift_rows(encoded, active, extra=("x", "1"), rename=("t", "ts"))
