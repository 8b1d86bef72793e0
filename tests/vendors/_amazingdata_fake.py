"""Payloads from docs/vendors/amazingdata.md and the platform's API document, and a fake
platform serving them through :class:`tests.vendors._stub.StubServer` (the real emulator lives in
etl/emulators/ and is exercised by integration tests)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from tests.vendors._stub import Reply, Request

USERNAME, PASSWORD = "admin", "admin123"  # the platform document's login example

# --- payloads (the `data` of each answer) --------------------------------------------------

ME = {"id": 1, "username": "admin", "email": "admin@example.com", "role": "user", "is_active": True}
INFO = {
    "600000.SH": {
        "code": "600000.SH", "name": "浦发银行", "market": "SH", "type": "stock",
        "list_date": "19991110", "delist_date": None,
    },
    "510300.SH": {
        "code": "510300.SH", "name": "沪深300ETF", "market": "SH", "type": "etf",
        "list_date": "20120528", "delist_date": None,
    },
    "000300.SH": {
        "code": "000300.SH", "name": "沪深300", "market": "SH", "type": "index",
        "list_date": "20050408", "delist_date": None,
    },
    "430047.BJ": {
        "code": "430047.BJ", "name": "诺思兰德", "market": "BJ", "type": "stock",
        "list_date": "20201230", "delist_date": None,
    },
    "IF2401.CFE": {
        "code": "IF2401.CFE", "name": "沪深300指数期货2401", "market": "CFE", "type": "future",
        "list_date": "20230519", "delist_date": "20240119",
    },
}  # fmt: skip
CODES = {
    "EXTRA_STOCK_A": ["600000.SH", "000001.SZ", "430047.BJ"],  # 000001.SZ: info answers 404
    "EXTRA_ETF": ["510300.SH"],
    "EXTRA_INDEX_A": ["000300.SH"],
    "EXTRA_FUTURE": ["IF2401.CFE"],
}
CALENDAR_SH_2024_W1 = ["20240102", "20240103", "20240104", "20240105"]  # New Year's Day off

BARS_1M = {
    "600000.SH": [
        {"trade_date": "2024-01-02 09:30:00", "open": 6.57, "high": 6.58, "low": 6.55,
         "close": 6.56, "volume": 1523400, "amount": 9993504.0},
        {"trade_date": "2024-01-02 09:31:00", "open": 6.56, "high": 6.57, "low": 6.56,
         "close": 6.57, "volume": 412300, "amount": 2707210.5},
    ],
    "000001.SZ": [],  # known, no rows (suspended)
}  # fmt: skip
BARS_FUTURE_1D = {
    "IF2401.CFE": [
        {"trade_date": "2024-01-02", "open": 3431.2, "high": 3445.0, "low": 3401.8,
         "close": 3405.6, "volume": 80331, "amount": 82361520000.0, "settle": 3410.4,
         "open_interest": 152340},
        {"trade_date": "2024-01-03", "open": 3404.0, "high": 3411.6, "low": 3380.2,
         "close": 3386.8, "volume": 91207, "amount": 92870114000.0, "settle": 3391.0,
         "open_interest": 150118},
    ],
}  # fmt: skip
BALANCE_SHEET = {
    "600000.SH": [
        {"MARKET_CODE": "600000.SH", "SECURITY_NAME": "浦发银行", "STATEMENT_TYPE": "1",
         "REPORT_TYPE": "4", "REPORTING_PERIOD": "20231231", "ANN_DATE": "20240330",
         "ACTUAL_ANN_DATE": "20240330", "COMP_TYPE_CODE": "2", "CURRENCY_CODE": "CNY",
         "TOTAL_ASSETS": 9007247000000.0, "TOTAL_LIAB": 8266015000000.0,
         "TOT_SHARE_EQUITY_INCL_MIN_INT": 741232000000.0, "MINORITY_EQUITY": 12086000000,
         "TOT_SHARE": 29352178000, "CURRENCY_CAP": None, "MEMO": "an extra column"},
        {"MARKET_CODE": "600000.SH", "SECURITY_NAME": "浦发银行", "STATEMENT_TYPE": "4",
         "REPORT_TYPE": "4", "REPORTING_PERIOD": "20231231", "ANN_DATE": "20240330",
         "ACTUAL_ANN_DATE": "20240426", "COMP_TYPE_CODE": "2", "CURRENCY_CODE": "CNY",
         "TOTAL_ASSETS": 9007251000000.0, "TOTAL_LIAB": 8266015000000.0,
         "TOT_SHARE_EQUITY_INCL_MIN_INT": 741236000000.0, "MINORITY_EQUITY": 12086000000,
         "TOT_SHARE": 29352178000, "CURRENCY_CAP": None},
    ],
}  # fmt: skip
VARIETIES = {
    "varieties": [
        {"variety": "IF", "name": "沪深300股指期货", "exchange": "CFE"},
        {"variety": "IC", "name": "中证500股指期货", "exchange": "CFE"},
        {"variety": "T", "name": "10年期国债期货", "exchange": "CFE"},
    ]
}
MAIN_CONTRACTS = {"main_contracts": {"IF": "IF2403.CFE", "IC": "IC2403.CFE", "T": "T2403.CFE"}}


def envelope(data: Any, code: int = 200, message: str = "success") -> Reply:
    return Reply(status=code, body={"code": code, "message": message, "data": data})


def error(code: int, message: str) -> Reply:
    return envelope(None, code, message)


TOKEN_EXPIRED = error(401, "Token无效或已过期")
LOGIN_REFUSED = error(401, "用户名或密码错误")
SDK_FAILED = error(500, "SDK调用失败")
TOO_MANY = error(429, "请求过于频繁")


class FakeAmazing:
    """The platform, as far as the adapter tests need it: logins issue tokens, every other
    call needs a live one; ``bars`` and ``finance`` answer multi-code calls the spec's way
    (known codes as keys, ``[]`` for no rows, unknown codes absent, none known → 404)."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.logins = 0
        self.refuse_logins = False
        self.bars: dict[str, list[Any]] = {**BARS_1M, **BARS_FUTURE_1D}
        self.finance: dict[str, list[Any]] = dict(BALANCE_SHEET)
        self.next: list[Reply] = []  # replies that pre-empt the next data calls, in order
        self.data_calls: list[Request] = []
        self._serial = itertools.count(1)
        self.routes: dict[str, Callable[[Request], Any]] = {
            "/auth/me": lambda r: envelope(ME),
            "/base/codes": lambda r: envelope(CODES[r.query["security_type"]]),
            "/base/calendar": lambda r: envelope(CALENDAR_SH_2024_W1),
            "/stock/kline": self._multi(self.bars),
            "/future/kline": self._multi(self.bars),
            "/finance/balance-sheet": self._multi(self.finance),
            "/cache/future-varieties": lambda r: envelope(VARIETIES),
            "/cache/main-contracts": lambda r: envelope(MAIN_CONTRACTS),
        }

    def revoke(self) -> None:
        """The ``auth_expired`` fault: every issued token stops working."""
        self.tokens.clear()

    def _multi(self, table: dict[str, list[Any]]) -> Callable[[Request], Reply]:
        def answer(request: Request) -> Reply:
            codes = request.query["codes"].split(",")
            known = {c: table.get(c, []) for c in codes if c in table or c.startswith("KNOWN")}
            if not known:
                return error(404, f"代码不存在: {request.query['codes']}")
            return envelope(known)

        return answer

    def __call__(self, request: Request) -> Reply:
        path = request.path.removeprefix("/api/v1")
        if path == "/auth/login":
            self.logins += 1
            body = request.json()
            if self.refuse_logins or body != {"username": USERNAME, "password": PASSWORD}:
                return LOGIN_REFUSED
            token = f"opaque-token-{next(self._serial)}"
            self.tokens.append(token)
            return envelope(
                {"access_token": token, "token_type": "bearer", "expires_in": 86400},
                200,
                "登录成功",
            )
        if request.headers.get("authorization", "").removeprefix("Bearer ") not in self.tokens:
            return TOKEN_EXPIRED
        self.data_calls.append(request)
        if self.next:
            return self.next.pop(0)
        if path.startswith("/base/codes/") and path.endswith("/info"):
            code = path.split("/")[3]
            return envelope(INFO[code]) if code in INFO else error(404, f"代码不存在: {code}")
        route = self.routes.get(path)
        return route(request) if route else error(404, "Not Found")
