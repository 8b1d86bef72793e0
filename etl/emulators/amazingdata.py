"""The AmazingData platform (``/api/v1``) as docs/vendors/amazingdata.md specifies it.

Auth is a login that issues opaque bearer tokens (``token_ttl`` seconds, real time); every
other call needs one. Limits are per user: 2 in flight and 5 requests in any sliding second,
the login not counted; a request over either gets 429 at once and does not take a place in
the window (our choice where the spec is silent, as Infoway and StockTV document it).

Conventions of this emulator where docs/vendors/amazingdata.md leaves a detail open:

- an unknown path answers 404 ``Not Found`` in the envelope (the ``代码不存在`` message needs
  a code), a known path with another method 405;
- a bad parameter names the first wrong one, as :mod:`etl.vendors.amazingdata.api` reads
  requests (the same reading as the adapter's and ``etl serve``'s);
- a batch with no known code answers 404 ``代码不存在: <the requested codes>``;
- ``schema_drift:extra`` adds ``turnover_rate`` to bars and ``MEMO`` to statement rows.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Final

from etl.emulators import amazingdata_data as rows
from etl.emulators.base import Emulator, EmulatorOptions, Limit
from etl.emulators.faults import Fault, FaultDef, catalogue
from etl.emulators.limits import Rate
from etl.emulators.payload import apply_bar_faults, drift_rows
from etl.emulators.wire import Call, Principal, Reply, Request, Route, json_reply
from etl.errors import BadInputError
from etl.vendors.amazingdata import api
from etl.vendors.amazingdata.api import (
    MSG_LOGIN_FAILED,
    MSG_LOGIN_OK,
    MSG_SDK,
    MSG_TOKEN,
    MSG_TOO_MANY,
    ParamError,
)

__all__ = ["AmazingDataEmulator"]

TOKEN_TTL: Final = 86_400
LIMITS: Final = (Rate(5, 1.0),)
IN_FLIGHT: Final = 2


def _envelope(status: int, message: str, data: Any) -> Reply:
    return json_reply(status, api.envelope(status, message, data))


def _ok(data: Any, message: str = api.MSG_OK) -> Reply:
    return _envelope(200, message, data)


def _error(status: int, message: str) -> Reply:
    return _envelope(status, message, None)


def _bad(exc: ParamError) -> Reply:
    return _error(400, api.param_message(exc.param))


def _same(given: str, wanted: str) -> bool:
    """Constant-time comparison; bytes, since compare_digest refuses non-ASCII str."""
    return secrets.compare_digest(given.encode("utf-8"), wanted.encode("utf-8"))


class AmazingDataEmulator(Emulator):
    """AmazingData's REST platform; data from etl.synthetic at the emulator's ``now``."""

    vendor: ClassVar[str] = "amazingdata"
    base_path: ClassVar[str] = "/api/v1"
    fault_table: ClassVar[Mapping[str, FaultDef]] = catalogue(variants={"auth_expired": ("login",)})
    extra_options: ClassVar[Mapping[str, str]] = {
        "token_ttl": "seconds a token lives (default 86400)",
        "rate": "requests per second per user (default 5; tests raise it to run fast)",
    }

    def __init__(self, options: EmulatorOptions | None = None) -> None:
        super().__init__(options)
        ttl = self.options.extra.get("token_ttl", TOKEN_TTL)
        whole = (isinstance(ttl, int) and not isinstance(ttl, bool)) or (
            isinstance(ttl, str) and ttl.strip().isdigit()
        )
        self.token_ttl = int(ttl) if whole else 0
        if self.token_ttl <= 0:
            raise BadInputError(f"token_ttl must be a whole number of seconds > 0, got {ttl!r}")
        rate = self.options.extra.get("rate", LIMITS[0].limit)
        try:
            per_second = float(rate)
        except (TypeError, ValueError):
            per_second = 0.0
        if not per_second >= 1:
            raise BadInputError(f"rate must be a number of requests per second >= 1, got {rate!r}")
        self.limits = (Rate(int(per_second), 1.0),)
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (user, monotonic expiry)
        self._tokens_lock = threading.Lock()

    def routes(self) -> Sequence[Route]:
        finance = [
            Route("GET", f"/finance/{name}", self._finance_handler(ds), "data")
            for name, ds in rows.FINANCE_DATASETS.items()
        ]
        return [
            Route("POST", "/auth/login", self._login, "auth", auth=False),
            Route("GET", "/auth/me", self._me),
            Route("GET", "/base/codes", self._codes),
            Route("GET", "/base/calendar", self._calendar),
            Route("GET", "/base/codes/{code}/info", self._info),
            Route("GET", "/stock/kline", self._kline_handler("stock", batch=False), "kline"),
            Route("POST", "/stock/kline/batch", self._kline_handler("stock", batch=True), "kline"),
            Route("GET", "/future/kline", self._kline_handler("future", batch=False), "kline"),
            Route("GET", api.ADJ_FACTOR_PATH, self._adj_factors, "data"),
            Route("GET", "/cache/future-varieties", self._varieties),
            Route("GET", "/cache/main-contracts", self._main_contracts),
            *finance,
        ]

    # -- auth, limits, faults --------------------------------------------------------------

    def authenticate(self, request: Request, route: Route) -> Principal | Reply:
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error(401, MSG_TOKEN)
        with self._tokens_lock:
            found = self._tokens.get(token.strip())
            if found is None or found[1] <= time.monotonic():
                return _error(401, MSG_TOKEN)
        return Principal(found[0], found[0])

    def limit(self, call: Call, route: Route) -> Limit | None:
        if not route.auth:
            return None  # /auth/login is not counted
        return Limit(("user", call.principal.key), self.limits, IN_FLIGHT)

    def over_limit(self, call: Call, reason: str) -> Reply:
        return _error(429, MSG_TOO_MANY)

    def fault_applies(self, fault: Fault, route: Route) -> bool:
        if route.category == "auth" and fault.name == "rate_limit_burst":
            return False  # the login is outside the limits, so never "over" them
        if route.category == "auth" and fault.name == "auth_expired":
            return fault.variant == "login"
        return super().fault_applies(fault, route)

    def fault_reply(self, fault: Fault, call: Call) -> Reply:
        if fault.name == "http_500":
            return _error(500, MSG_SDK)
        if fault.name == "malformed_json":
            return Reply(200, b'{"code":200,"message":"success","data":<html>SDK</html>}')
        if fault.name == "auth_expired":
            self.revoke_tokens()
            return _error(401, MSG_LOGIN_FAILED if call.route.category == "auth" else MSG_TOKEN)
        return super().fault_reply(fault, call)

    def not_found(self, request: Request) -> Reply:
        return _error(404, "Not Found")

    def method_not_allowed(self, request: Request) -> Reply:
        return _error(405, "Method Not Allowed")

    def revoke_tokens(self) -> None:
        """Forget every issued token: the next call gets 401 and must log in again."""
        with self._tokens_lock:
            self._tokens.clear()

    def reset(self) -> None:
        super().reset()
        self.revoke_tokens()

    # -- endpoints ---------------------------------------------------------------------------

    def _accepts(self, username: str, password: str) -> bool:
        want_user, want_password = self.options.username, self.options.password
        if not username or not password:
            return False
        if want_user is not None and not _same(username, want_user):
            return False
        return want_password is None or _same(password, want_password)

    def _login(self, call: Call) -> Reply:
        try:
            body = call.request.json()
        except ValueError:
            return _error(400, api.param_message("body"))
        if not isinstance(body, dict):
            return _error(400, api.param_message("body"))
        for name in ("username", "password"):
            if not isinstance(body.get(name), str):
                return _error(400, api.param_message(name))
        if not self._accepts(body["username"], body["password"]):
            return _error(401, MSG_LOGIN_FAILED)
        token = secrets.token_urlsafe(24)
        with self._tokens_lock:
            self._tokens[token] = (body["username"], time.monotonic() + self.token_ttl)
        data = {"access_token": token, "token_type": "bearer", "expires_in": self.token_ttl}
        return _ok(data, MSG_LOGIN_OK)

    def _me(self, call: Call) -> Reply:
        user = call.principal.name
        return _ok(
            {
                "id": 1,
                "username": user,
                "email": f"{user}@example.com",
                "role": "user",
                "is_active": True,
            }
        )

    def _codes(self, call: Call) -> Reply:
        try:
            kind = api.security_type(dict(call.request.params))
        except ParamError as exc:
            return _bad(exc)
        return _ok(rows.codes_of(kind, self.now(), self.seed))

    def _calendar(self, call: Call) -> Reply:
        try:
            market, start, end = api.calendar_query(dict(call.request.params))
        except ParamError as exc:
            return _bad(exc)
        return _ok(rows.calendar_days(market, start, end, self.now()))

    def _info(self, call: Call) -> Reply:
        code = call.path_params["code"]
        info = rows.code_info(code, self.now(), self.seed)
        if info is None:
            return _error(404, api.unknown_message([code]))
        return _ok(info)

    def _kline_handler(self, board: rows.Board, *, batch: bool) -> Callable[[Call], Reply]:
        def handler(call: Call) -> Reply:
            try:
                if batch:
                    try:
                        body = call.request.json()
                    except ValueError:
                        raise ParamError("body") from None
                    query = api.kline_query(body, batch=True)
                else:
                    query = api.kline_query(dict(call.request.params), batch=False)
            except ParamError as exc:
                return _bad(exc)
            return self._klines(call, board, query)

        return handler

    def _klines(self, call: Call, board: rows.Board, query: api.KlineQuery) -> Reply:
        codes, start, end, period = query.codes, query.start, query.end, query.period
        now, future = self.now(), board == "future"
        data: dict[str, list[dict[str, Any]]] = {}
        for code in codes:
            inst = rows.known(code, board, now, self.seed)
            if inst is None:
                continue
            bars = rows.kline_bars(inst, period, start, end, now, self.seed)
            bars = apply_bar_faults(bars, call.faults, stream=code)
            encoded = [rows.encode_bar(b, period, future=future) for b in bars]
            data[code] = drift_rows(
                encoded,
                call.faults,
                extra=("turnover_rate", 0.0),
                rename=("trade_date", "kline_time"),
            )
        if not data:
            return _error(404, api.unknown_message(codes))
        return _ok(data)

    def _finance_handler(self, dataset: str) -> Callable[[Call], Reply]:
        def handler(call: Call) -> Reply:
            try:
                codes, start, end = api.finance_query(dict(call.request.params))
            except ParamError as exc:
                return _bad(exc)
            now = self.now()
            data: dict[str, list[dict[str, Any]]] = {}
            for code in codes:
                inst = rows.known(code, "finance", now, self.seed)
                if inst is not None:
                    found = rows.finance_rows(dataset, inst, start, end, now, self.seed)
                    data[code] = drift_rows(
                        found,
                        call.faults,
                        extra=("MEMO", ""),
                        rename=("REPORTING_PERIOD", "REPORT_PERIOD"),
                    )
            if not data:
                return _error(404, api.unknown_message(codes))
            return _ok(data)

        return handler

    def _adj_factors(self, call: Call) -> Reply:
        try:
            codes, start, end = api.adj_factor_query(dict(call.request.params))
        except ParamError as exc:
            return _bad(exc)
        now = self.now()
        data: dict[str, list[dict[str, Any]]] = {}
        for code in codes:  # unknown codes are left out (convention)
            inst = rows.known(code, "stock", now, self.seed)
            if inst is not None:
                data[code] = rows.adj_factor_rows(inst, start, end, now, self.seed)
        return _ok(data)

    def _varieties(self, call: Call) -> Reply:
        return _ok({"varieties": rows.future_varieties(self.now())})

    def _main_contracts(self, call: Call) -> Reply:
        return _ok({"main_contracts": rows.main_contracts(self.now())})
