"""Infoway (infoway.io): stocks of SH SZ HK US, crypto, forex and other products, per
docs/vendors/infoway.md.

Auth is the ``apiKey`` header on every call (``ETL_INFOWAY_API_KEY``); a 401 is final (exit 3):
there is no session to renew. Limits are per key: the plan's ``apiNumPerSec`` read once per
run from ``/package/info`` (unless ``ETL_INFOWAY_RATE`` says), and 60 × that per minute, kept
by a governor shared with every process on the data root.

Klines are asked one code per call (several codes get only their 2 latest bars). Minute and
hour history is paged back from the end of the range with ``timestamp`` (exclusive) until the
range is covered, a page is short, or the vendor says ``Timestamp limit error`` (the plan's
history ends: reported unavailable). Day bars and longer come as the latest ≤ 500, and what
lies before them is unavailable. Wire mappings live in :mod:`.wire`, the table and the date
arithmetic in :mod:`.plan`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Sequence
from typing import Any, ClassVar, Final

import pyarrow as pa

from etl.errors import (
    BadInputError,
    ConfigError,
    SchemaError,
    VendorError,
)
from etl.names import parse_freq, parse_market, parse_symbol
from etl.vendors.base import (
    ADJ_FACTORS_SINCE,
    Capabilities,
    CheckResult,
    KlineBatch,
    Paging,
    Span,
    Unavailable,
    VendorAdapter,
    VendorContext,
    fetch_through,
    no_rows,
    target_schema,
)
from etl.vendors.governor import limits_for
from etl.vendors.http import Tally, VendorHttp
from etl.vendors.infoway import plan as p
from etl.vendors.infoway.account import PlanKeeper
from etl.vendors.infoway.fetch import KlineCall, Outcome
from etl.vendors.infoway.wire import (
    SYMBOL_TYPES,
    Answer,
    Bar,
    bars_table,
    calendar_table,
    factors_table,
    instrument_row,
    parse_answer,
    path_market,
    vendor_code,
    ymd,
)

__all__ = ["InfowayAdapter"]

log = logging.getLogger(__name__)

_DAY: Final = dt.timedelta(days=1)


class InfowayAdapter(VendorAdapter):
    """Infoway's REST API: klines, trading days, symbol lists, plan info."""

    name: ClassVar[str] = "infoway"
    title: ClassVar[str] = "Infoway (stocks of SH SZ HK US, crypto, forex, metals)"
    required_settings: ClassVar[tuple[str, ...]] = ("api_key",)
    public_base_url: ClassVar[str | None] = "https://data.infoway.io"

    def __init__(self, context: VendorContext) -> None:
        super().__init__(context)
        self._http: VendorHttp | None = None
        self._plans = PlanKeeper(context.plans, context.now)  # the cached plan, if any
        self._plan_read = False
        self._plan_lock = asyncio.Lock()
        self._symbols: dict[str, list[Any]] = {}  # type -> today's list, per instance

    @property
    def _plan(self) -> p.Plan | None:
        return self._plans.plan

    def capabilities(self) -> Capabilities:
        return p.capabilities(self.name, self.settings.rate, self._plan, self.context.now())

    # -- transport -----------------------------------------------------------------------

    @property
    def http(self) -> VendorHttp:
        if self._http is None:
            key = self.settings.api_key
            if key is None or not key.reveal():
                raise ConfigError("infoway needs an API key: set ETL_INFOWAY_API_KEY")
            self._http = VendorHttp.for_context(
                self.context,
                limits_for(self.capabilities().rate),
                public_url=self.public_base_url,
                headers={"apiKey": key.reveal(), "Accept": "application/json"},
                max_connections=p.IN_FLIGHT * 2,
            )
        return self._http

    async def _call(self, method: str, path: str, tally: Tally | None = None, **kw: Any) -> Answer:
        return await self.http.request(method, path, parse=parse_answer, tally=tally, **kw)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def _read_plan(self) -> Any:
        """``/package/info``'s data, checked to be a plan."""
        answer = await self._call("GET", "/package/info")
        p.parse_plan(answer.data)
        return answer.data

    async def learn_plan(self) -> None:
        await self._ensure_plan()

    async def _ensure_plan(self) -> None:
        """The plan's rate and history before any other call: the cached plan if fresh, else
        ``/package/info`` asked once (one process at a time, see :mod:`.account`). With
        ETL_INFOWAY_RATE set nothing is asked. A refused key or a spent quota ends the run."""
        async with self._plan_lock:
            if self._plan_read or self.settings.rate:
                return
            self._plan_read = True
            if await self._plans.ensure(self._read_plan):
                self._apply_rate()

    def _apply_rate(self) -> None:
        if self._http is not None and self._http.governor is not None:
            self._http.governor.update(limits_for(self.capabilities().rate))

    # -- datasets ------------------------------------------------------------------------

    async def check(self) -> CheckResult:
        """Read ``/package/info``: the plan, its rate and history, and when it expires."""
        began = time.perf_counter()
        try:
            plan = self._plans.remember(await self._read_plan())
        except (ConfigError, VendorError) as exc:
            return CheckResult(False, str(exc), time.perf_counter() - began)
        self._plan_read = True
        self._apply_rate()
        years = f"{plan.years} years of minute history" if plan.years else "history unknown"
        until = f", expires {plan.expires:%Y-%m-%d}" if plan.expires else ""
        message = f"plan {plan.name}: {plan.per_second:g} requests/s, {years}{until}"
        return CheckResult(True, message, time.perf_counter() - began)

    async def instruments(self, market: str | None = None) -> pa.Table:
        """Today's codes of ``market`` (every served one if None) from /common/basic/symbols."""
        if market is not None and market != "INFOWAY":
            market = parse_market(market)
        markets = {market} if market else set(p.KLINE_MARKETS)
        if not markets <= p.KLINE_MARKETS:
            raise self._unsupported(f"instruments for {market}")
        await self._ensure_plan()
        rows: dict[str, dict[str, Any]] = {}
        for kind, suffixes in SYMBOL_TYPES.items():
            if not markets & set(suffixes):
                continue
            for item in await self._symbol_list(kind):
                row = instrument_row(item, kind)
                if row is not None and row["market"] in markets:
                    rows.setdefault(row["symbol"], row)
        return pa.Table.from_pylist(list(rows.values()), schema=target_schema("instruments"))

    async def _symbol_list(self, kind: str) -> list[Any]:
        if kind not in self._symbols:
            answer = await self._call("GET", "/common/basic/symbols", params={"type": kind})
            if not isinstance(answer.data, list):
                raise SchemaError(f"/common/basic/symbols {kind} is not a list", vendor=self.name)
            self._symbols[kind] = answer.data
        return self._symbols[kind]

    async def calendar(self, market: str, start: dt.date, end: dt.date) -> pa.Table:
        """Every calendar day of ``[start, end]`` up to the end of this year (later days are
        left out, never claimed closed); half days are flagged."""
        market = parse_market(market)
        self.capabilities().require("calendar", market)
        if start > end:
            raise BadInputError(f"start {start} is after end {end}")
        today = self.context.now().astimezone(p.zone_of(market)).date()
        hi = min(end, dt.date(today.year, 12, 31))
        if start > hi:
            return no_rows("calendar")
        await self._ensure_plan()
        params = {
            "market": "CN" if market in ("SH", "SZ") else market,
            "beginDay": ymd(start),
            "endDay": ymd(hi),
        }
        answer = await self._call("GET", "/common/basic/markets/trading_days", params=params)
        return calendar_table(market, start, hi, answer.data)

    async def adj_factors(self, symbols: Sequence[str], start: dt.date, end: dt.date) -> pa.Table:
        """Forward factors of ``symbols`` for ex-dates in ``[start, end]``. Each symbol is
        asked from before any listing to ``end`` in one call, so that its cumulative backward
        factor counts from the listing whatever range was asked."""
        caps = self.capabilities()
        wanted = list(dict.fromkeys(symbols))
        for symbol in wanted:
            caps.require("adj_factors", parse_symbol(symbol).exchange)
        await self._ensure_plan()
        tables = []
        for symbol in wanted:
            params = {
                "symbol": vendor_code(symbol),
                "market": p.FACTOR_MARKET_PARAM[parse_symbol(symbol).exchange],
                "beginDay": ymd(ADJ_FACTORS_SINCE),
                "endDay": ymd(end),
            }
            answer = await self._call(
                "GET", "/common/basic/symbols/adjustment_factors", params=params
            )
            tables.append(factors_table(symbol, answer.data, start, end))
        return pa.concat_tables(tables) if tables else no_rows("adj_factors")

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
        for symbol in wanted:  # refuse the whole call before any request
            caps.require("klines", parse_symbol(symbol).exchange, f)
        await self._ensure_plan()
        tally = Tally()
        gate = asyncio.Semaphore(p.IN_FLIGHT)

        async def one(symbol: str) -> tuple[str, Outcome]:
            async with gate:
                if paging is not None and paging.stopped:  # the caller is stopping: not asked
                    return symbol, Outcome()
                return symbol, await self._symbol_klines(
                    symbol, f, start, end, tally, paging, closed_by
                )

        done = await asyncio.gather(*(one(s) for s in wanted))
        batch = KlineBatch(table=no_rows("klines"), requests=tally.requests)
        tables = []
        for symbol, out in done:
            exchange = parse_symbol(symbol).exchange
            zone = p.zone_of(exchange)
            tables.append(bars_table(out.bars, symbol, f, zone))  # every field sent, FX too
            batch.answered += out.answered
            batch.unavailable += out.unavailable
            batch.failures += out.failures
        if tables:
            batch.table = pa.concat_tables(tables)
        return batch

    async def _symbol_klines(
        self,
        symbol: str,
        freq: str,
        start: dt.date,
        end: dt.date,
        tally: Tally,
        paging: Paging | None = None,
        closed_by: dt.datetime | None = None,
    ) -> Outcome:
        """Cut ``[start, end]`` to what can be complete and served, then fetch it (with
        ``closed_by``, minute bars through the day holding it; see ``VendorAdapter.klines``)."""
        out = Outcome()
        exchange = parse_symbol(symbol).exchange
        zone = p.zone_of(exchange)
        now = self.context.now()
        lo, hi = start, end
        years = self._plan.years if self._plan else None
        if freq in p.MINUTE_FREQS and years:
            since = p.history_start(now, years).astimezone(zone).date() + _DAY
            if lo < since:
                why = f"older than Infoway's minute history ({years} years on this plan)"
                out.unavailable.append(Unavailable(symbol, lo, min(hi, since - _DAY), why))
                lo = since
        if lo > hi:
            return out
        done = p.complete_through(exchange, freq, lo, hi, now)
        if done < hi:
            why = "not complete yet at now"
            out.unavailable.append(Unavailable(symbol, max(lo, done + _DAY), hi, why))
            bound = closed_by if freq in p.MINUTE_FREQS else None
            hi = fetch_through(done, hi, bound, zone)
        if lo > hi:
            return out
        code = self.context.instruments.code_for(symbol) or vendor_code(symbol)
        path = f"/{path_market(exchange)}/v2/batch_kline"

        async def send(body: dict[str, Any]) -> Answer:
            return await self._call("POST", path, tally=tally, json=body)

        emit = None
        if paging is not None and paging.on_page is not None:
            on_page = paging.on_page

            async def emit(bars: list[Bar], cursor: int) -> bool:
                return await on_page(symbol, bars_table(bars, symbol, freq, zone), cursor)

        call = KlineCall(symbol, code, freq, zone, now, send, out, emit=emit)
        await call.run(lo, hi, resume=paging.cursors.get(symbol) if paging else None)
        lo_s, hi_s = p.local_midnight(lo, zone), p.local_midnight(hi + _DAY, zone)
        out.bars = [b for b in out.bars if lo_s <= b.t < hi_s]
        if hi > done:  # a day still in session was fetched for its closed bars: not answered
            out.answered = [
                Span(s.symbol, s.start, min(s.end, done)) for s in out.answered if s.start <= done
            ]
        return out
