"""AmazingData (中国银河证券 星耀数智 over the user's REST platform): docs/vendors/amazingdata.md.

Sessions: ``POST /auth/login`` with ``ETL_AMAZINGDATA_USERNAME``/``_PASSWORD`` issues a bearer
token, kept in memory only (and registered for redaction). The first call logs in; a 401 on a
call logs in again once and repeats that call once (the shared layer's ``reauth`` hook); a
second 401, or a refused login, is an auth error (exit 3).

Limits: 5 requests in any sliding second (``ETL_AMAZINGDATA_RATE``) and 2 in flight, per user,
the login not counted; kept by a governor shared with every process on the data root.

Calls are few and large (the upstream SDK has a weekly traffic quota): klines ≤ 50 codes per
call, minute periods ≤ 31 calendar days per call; finance ≤ 50 codes per call. The wire
mappings live in :mod:`.wire`, the cutting of requests in :mod:`.plan`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pyarrow as pa

from etl.errors import (
    AuthError,
    BadInputError,
    ConfigError,
    PermanentVendorError,
    SchemaError,
    VendorError,
)
from etl.names import parse_freq, parse_market, parse_symbol
from etl.vendors.amazingdata.api import ADJ_FACTOR_PATH
from etl.vendors.amazingdata.plan import (
    CFFEX_SINCE,
    CODES_PER_CALL,
    FUTURE_MARKETS,
    IN_FLIGHT,
    MINUTE_DAYS_PER_CALL,
    MINUTE_FREQS,
    SECURITY_TYPES,
    STOCK_MARKETS,
    STOCKS_SINCE,
    capabilities,
    chunks,
    complete_through,
    merge,
    pooled,
    windows,
)
from etl.vendors.amazingdata.wire import (
    PERIODS,
    STATEMENT_PATHS,
    UnknownCode,
    bars_table,
    cached_info,
    calendar_table,
    factors_table,
    instrument_row,
    parse_envelope,
    parse_login,
    statements_table,
    ymd,
)
from etl.vendors.base import (
    Capabilities,
    CheckResult,
    Failure,
    KlineBatch,
    Paging,
    Span,
    Unavailable,
    VendorAdapter,
    no_rows,
    target_schema,
)
from etl.vendors.governor import limits_for
from etl.vendors.http import Tally, VendorHttp

__all__ = ["AmazingDataAdapter"]

log = logging.getLogger(__name__)
T = TypeVar("T")

ZONE: Final = ZoneInfo("Asia/Shanghai")
_DAY: Final = dt.timedelta(days=1)


class AmazingDataAdapter(VendorAdapter):
    """The AmazingData REST platform: A shares, ETFs, indices, CFFEX futures, statements."""

    name: ClassVar[str] = "amazingdata"
    title: ClassVar[str] = "AmazingData platform (China Galaxy Securities SDK over REST)"
    required_settings: ClassVar[tuple[str, ...]] = ("username", "password")
    public_base_url: ClassVar[str | None] = "http://localhost:8000/api/v1"

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._http: VendorHttp | None = None
        self._token: str | None = None
        self._login_lock = asyncio.Lock()
        self._codes: dict[str, list[str]] = {}  # security_type -> today's list, per instance

    def capabilities(self) -> Capabilities:
        return capabilities(self.name, self.settings.rate)

    # -- session -------------------------------------------------------------------------

    @property
    def http(self) -> VendorHttp:
        if self._http is None:
            self._http = VendorHttp.for_context(
                self.context,
                limits_for(self.capabilities().rate),
                public_url=self.public_base_url,
                session_headers=self._session_headers,
                reauth=self._reauth,
                max_connections=IN_FLIGHT * 2,
            )
        return self._http

    async def _login(self) -> None:
        username, password = self.settings.username, self.settings.password
        if not username or password is None or not password.reveal():
            raise ConfigError(
                "amazingdata needs a login: set ETL_AMAZINGDATA_USERNAME and "
                "ETL_AMAZINGDATA_PASSWORD"
            )
        self._token = None
        token = await self.http.request(
            "POST",
            "/auth/login",
            json={"username": username, "password": password.reveal()},
            parse=parse_login,
            governed=False,  # the platform does not count logins
            session=False,
        )
        self.http.add_secret(token)
        self._token = token
        log.info("amazingdata: logged in as %s", username)

    async def _session_headers(self) -> Mapping[str, str]:
        if self._token is None:
            async with self._login_lock:
                if self._token is None:
                    await self._login()
        return {"Authorization": f"Bearer {self._token}"}

    async def _reauth(self, used: Mapping[str, str]) -> None:
        """Log in again, unless another request already did since ``used`` was sent."""
        async with self._login_lock:
            if self._token is None or used.get("Authorization") == f"Bearer {self._token}":
                await self._login()

    async def _get(self, path: str, params: Mapping[str, str] | None = None, **kw: Any) -> Any:
        return await self.http.request("GET", path, params=params, parse=parse_envelope, **kw)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    def _today(self) -> dt.date:
        return self.context.now().astimezone(ZONE).date()

    # -- datasets ------------------------------------------------------------------------

    async def check(self) -> CheckResult:
        """Log in and read ``/auth/me``, like the platform's SDK connection test."""
        began = time.perf_counter()
        try:
            await self._login()
            me = await self._get("/auth/me")
        except (AuthError, VendorError) as exc:
            return CheckResult(False, str(exc), time.perf_counter() - began)
        who = me.get("username") if isinstance(me, dict) else None
        return CheckResult(True, f"logged in as {who or '?'}", time.perf_counter() - began)

    async def instruments(self, market: str | None = None) -> pa.Table:
        """Today's codes (``/base/codes``), each completed by ``/base/codes/{code}/info``.

        Incremental: at 5 requests/s one info call per code takes ~N/5 s (20 minutes for every
        A share), so a code whose fields an earlier sync kept (``vendor_extra``, in the
        instruments map) is not asked again; only new codes are. Names are therefore those
        of the code's first sync."""
        markets = {parse_market(market)} if market else STOCK_MARKETS | FUTURE_MARKETS
        if not markets <= STOCK_MARKETS | FUTURE_MARKETS:
            raise self._unsupported(f"instruments for {market}")
        kinds: dict[str, str] = {}
        for security_type, (kind, served) in SECURITY_TYPES.items():
            if served & markets:
                for code in await self._list(security_type):
                    if code.rsplit(".", 1)[-1] in markets:
                        kinds.setdefault(code, kind)
        known = self.context.instruments
        infos: dict[str, Any] = {}
        for code in kinds:
            symbol = known.symbol_for(code)
            cached = cached_info(known.extra.get(symbol)) if symbol is not None else None
            if cached is not None:
                infos[code] = cached

        async def info(code: str) -> None:
            try:
                infos[code] = await self._get(f"/base/codes/{quote(code, safe='')}/info")
            except UnknownCode:  # delisted between the two calls: keep what the list says
                infos[code] = None

        fresh = [code for code in kinds if code not in infos]
        log.info("amazingdata: %d codes listed, %d new to ask for", len(kinds), len(fresh))
        await pooled(fresh, info, IN_FLIGHT)
        rows = [instrument_row(code, kind, infos.get(code)) for code, kind in kinds.items()]
        return pa.Table.from_pylist(rows, schema=target_schema("instruments"))

    async def _list(self, security_type: str) -> list[str]:
        if security_type not in self._codes:
            codes = await self._get("/base/codes", {"security_type": security_type})
            if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
                raise SchemaError(f"/base/codes {security_type} is not a list of codes")
            self._codes[security_type] = codes
        return self._codes[security_type]

    async def calendar(self, market: str, start: dt.date, end: dt.date) -> pa.Table:
        """Every calendar day of ``[start, end]`` within what the vendor serves (its first
        year to the end of this year); days outside are left out, never claimed closed."""
        market = parse_market(market)
        cap = self.capabilities().require("calendar", market)
        if start > end:
            raise BadInputError(f"start {start} is after end {end}")
        lo = max(start, cap.since or start)
        hi = min(end, dt.date(self._today().year, 12, 31))
        if lo > hi:
            return no_rows("calendar")
        wire_market = "SH" if market == "BJ" else market  # BSE keeps SSE's days
        params = {"market": wire_market, "start_date": ymd(lo), "end_date": ymd(hi)}
        return calendar_table(market, lo, hi, await self._get("/base/calendar", params))

    async def klines(
        self,
        symbols: Sequence[str],
        freq: str,
        start: dt.date,
        end: dt.date,
        *,
        paging: Paging | None = None,
        closed_by: dt.datetime | None = None,
    ) -> KlineBatch:
        f = parse_freq(freq).name
        if start > end:
            raise BadInputError(f"start {start} is after end {end}")
        caps = self.capabilities()
        wanted = list(dict.fromkeys(symbols))
        groups: dict[str, list[str]] = {"/stock/kline": [], "/future/kline": []}
        for symbol in wanted:  # refuse the whole call before any request
            exchange = parse_symbol(symbol).exchange
            caps.require("klines", exchange, f)
            groups["/future/kline" if exchange in FUTURE_MARKETS else "/stock/kline"].append(symbol)
        batch = KlineBatch(table=no_rows("klines"))
        tally, tables = Tally(), []
        done = complete_through(f, self.context.now().astimezone(ZONE))
        for path, codes in groups.items():
            since = CFFEX_SINCE if path == "/future/kline" else STOCKS_SINCE
            lo, hi = max(start, since), min(end, done)
            for code in codes:
                if start < since:
                    why = f"AmazingData serves these klines from {since}"
                    batch.unavailable.append(Unavailable(code, start, min(end, since - _DAY), why))
                if hi < end and max(lo, hi + _DAY) <= end:
                    why = "not complete yet at now"
                    batch.unavailable.append(Unavailable(code, max(lo, hi + _DAY), end, why))
            if lo > hi:
                continue
            span = MINUTE_DAYS_PER_CALL if f in MINUTE_FREQS else None
            for chunk in chunks(codes, CODES_PER_CALL):
                for first, last in windows(lo, hi, span):
                    tables.append(await self._kline_call(path, chunk, f, first, last, batch, tally))
        batch.table = pa.concat_tables(tables) if tables else batch.table
        batch.answered = merge(batch.answered)
        batch.requests = tally.requests
        return batch

    async def _kline_call(
        self,
        path: str,
        codes: list[str],
        freq: str,
        first: dt.date,
        last: dt.date,
        batch: KlineBatch,
        tally: Tally,
    ) -> pa.Table:
        """One vendor call; books each code as answered (even with ``[]``) or failed."""
        params = {
            "codes": ",".join(codes),
            "start_date": ymd(first),
            "end_date": ymd(last),
            "period": PERIODS[freq],
        }
        try:
            data = await self._get(path, params, tally=tally)
        except UnknownCode as exc:  # not one of the codes is known
            batch.failures += [Failure(c, first, last, exc.bare_message) for c in codes]
            return no_rows("klines")
        if not isinstance(data, dict):
            raise SchemaError(f"{path} answered {type(data).__name__}, not an object")
        for code in codes:
            if code in data:
                batch.answered.append(Span(code, first, last))
            else:
                reason = f"代码不存在: {code} (unknown to AmazingData)"
                batch.failures.append(Failure(code, first, last, reason))
        request_id = f"amazingdata-{PERIODS[freq]}-{ymd(first)}-{ymd(last)}"
        futures = path == "/future/kline"
        return bars_table(data, codes, freq, futures=futures, request_id=request_id)

    async def statements(
        self, dataset: str, symbols: Sequence[str], start: dt.date | None, end: dt.date | None
    ) -> pa.Table:
        """Every version of ``dataset`` for the known ``symbols`` (reporting periods in
        ``[start, end]``). Unknown codes are left out; if none is known the call fails."""
        path = STATEMENT_PATHS.get(dataset)
        if path is None:
            raise self._unsupported(dataset)
        caps = self.capabilities()
        wanted = list(dict.fromkeys(symbols))
        for symbol in wanted:
            caps.require(dataset, parse_symbol(symbol).exchange)
        tables, unknown = [], 0
        calls = chunks(wanted, CODES_PER_CALL)
        for chunk in calls:
            params = {"codes": ",".join(chunk)}
            if start is not None:
                params["start_date"] = ymd(start)
            if end is not None:
                params["end_date"] = ymd(end)
            try:
                data = await self._get(path, params)
            except UnknownCode:
                unknown += 1
                continue
            if not isinstance(data, dict):
                raise SchemaError(f"{path} answered {type(data).__name__}, not an object")
            tables.append(statements_table(dataset, data, chunk))
        if calls and unknown == len(calls):
            raise PermanentVendorError(
                "代码不存在: no code is known", vendor=self.name, symbol=",".join(wanted[:5])
            )
        return pa.concat_tables(tables) if tables else no_rows(dataset)

    async def adj_factors(self, symbols: Sequence[str], start: dt.date, end: dt.date) -> pa.Table:
        """The backward factors of ``symbols`` for ex-dates in ``[start, end]`` (cumulative
        since listing, as the SDK's get_backward_factor); unknown codes are left out."""
        caps = self.capabilities()
        wanted = list(dict.fromkeys(symbols))
        for symbol in wanted:
            caps.require("adj_factors", parse_symbol(symbol).exchange)
        tables = []
        for chunk in chunks(wanted, CODES_PER_CALL):
            params = {"codes": ",".join(chunk), "start_date": ymd(start), "end_date": ymd(end)}
            data = await self._get(ADJ_FACTOR_PATH, params)
            if not isinstance(data, dict):
                raise SchemaError(
                    f"{ADJ_FACTOR_PATH} answered {type(data).__name__}, not an object"
                )
            tables.append(factors_table(data, chunk))
        return pa.concat_tables(tables) if tables else no_rows("adj_factors")

    async def future_varieties(self) -> pa.Table:
        data = await self._get("/cache/future-varieties")
        varieties = data.get("varieties") if isinstance(data, dict) else None
        if not isinstance(varieties, list) or not all(
            isinstance(v, dict) and isinstance(v.get("variety"), str) for v in varieties
        ):
            raise SchemaError("/cache/future-varieties has no list of varieties")
        rows = [
            {
                "variety": v["variety"],
                "exchange": v.get("exchange") or "CFE",
                "name": v.get("name"),
                "vendor": self.name,
            }
            for v in varieties
        ]
        return pa.Table.from_pylist(rows, schema=target_schema("future_varieties"))

    async def main_contracts(self) -> pa.Table:
        """Today's main contract per variety; ``trade_date`` is today in Asia/Shanghai."""
        data = await self._get("/cache/main-contracts")
        mains = data.get("main_contracts") if isinstance(data, dict) else None
        if not isinstance(mains, dict) or not all(isinstance(s, str) for s in mains.values()):
            raise SchemaError("/cache/main-contracts has no variety -> contract object")
        today = self._today()
        rows = [
            {
                "exchange": symbol.rsplit(".", 1)[-1],
                "variety": variety,
                "trade_date": today,
                "symbol": symbol,
                "vendor": self.name,
            }
            for variety, symbol in mains.items()
        ]
        return pa.Table.from_pylist(rows, schema=target_schema("main_contracts"))
