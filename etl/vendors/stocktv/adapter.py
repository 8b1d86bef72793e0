"""StockTV (stocktv.top): India (NSE), US and Japan stocks and their indices, per
docs/vendors/stocktv.md.

Auth: the key travels as the query parameter ``key=`` on every call (``ETL_STOCKTV_API_KEY``),
so it is in every URL: the shared HTTP layer redacts it (the setting's value, and any
``key=`` parameter) from every URL, log line and error, and the task store scrubs it again.

Instruments: ``/stock/stocks`` per country, paged 500 records at a time; the pid (``id``)
becomes ``vendor_id``, the vendor's symbol ``vendor_code``, exchange and country go to
``vendor_extra``. Klines are asked by pid, which comes from the lake's instruments map only:
a symbol with no pid there fails, telling the user to sync instruments first.

Klines: at most 1000 bars a call, the latest ones of ``[startTime, endTime]``, so a range is
paged backwards (next ``endTime`` = oldest bar − 1 ms) until a page is short. If the last page
(empty, or short) stops before the requested start while the exchange calendar still expects
older bars, StockTV has nothing older: that part is reported unavailable, never filled and
never failed (its depth is unknown, so such a gap is not confirmed empty; a suspension at the
very start of a range is reported unavailable too, the safe side). Limits: 5 requests in any
sliding second per key (``ETL_STOCKTV_RATE``), kept by a governor shared by every process on
the data root.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Final

import pyarrow as pa

from etl.calendars import market_spec
from etl.errors import (
    AuthError,
    BadInputError,
    ConfigError,
    PermanentVendorError,
    SchemaError,
    VendorError,
)
from etl.names import parse_freq, parse_market, parse_symbol
from etl.timefmt import iso_utc
from etl.vendors.base import (
    Capabilities,
    CheckResult,
    Failure,
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
from etl.vendors.stocktv.plan import (
    BARS_PER_CALL,
    INTRADAY,
    PAGE_SIZE,
    capabilities,
    complete_through,
    day_bounds_ms,
    missing_before,
)
from etl.vendors.stocktv.wire import (
    COUNTRIES,
    INTERVALS,
    Country,
    UnknownPid,
    bar_times,
    bars_table,
    index_row,
    parse_envelope,
    stock_row,
)

__all__ = ["StockTVAdapter"]

log = logging.getLogger(__name__)

_DAY: Final = dt.timedelta(days=1)
_MS: Final = 1000  # StockTV's times are epoch milliseconds; Paging's cursors seconds
_MAX_PAGES: Final = 2_000  # 1 M instruments, or 2 M bars of one symbol: a runaway guard
_SYNC_HINT: Final = "run `etl instruments sync --vendor stocktv`"


class StockTVAdapter(VendorAdapter):
    """StockTV's REST API: stocks of India (NSE), the US and Japan, by pid."""

    name: ClassVar[str] = "stocktv"
    title: ClassVar[str] = "StockTV (stocktv.top): India NSE, US and Japan stocks"
    required_settings: ClassVar[tuple[str, ...]] = ("api_key",)
    public_base_url: ClassVar[str | None] = "https://api.stocktv.top"

    def __init__(self, context: VendorContext) -> None:
        super().__init__(context)
        self._http: VendorHttp | None = None

    def capabilities(self) -> Capabilities:
        return capabilities(self.name, self.settings.rate, self.context.now())

    # -- transport -------------------------------------------------------------------------

    @property
    def http(self) -> VendorHttp:
        if self._http is None:
            self._http = VendorHttp.for_context(
                self.context, limits_for(self.capabilities().rate), public_url=self.public_base_url
            )
        return self._http

    def _key(self) -> str:
        key = self.settings.api_key
        if key is None or not key.reveal():
            raise ConfigError("stocktv needs an API key: set ETL_STOCKTV_API_KEY")
        return key.reveal()

    async def _get(
        self, path: str, params: dict[str, str | int], tally: Tally | None = None
    ) -> Any:
        query = {**params, "key": self._key()}
        return await self.http.request("GET", path, params=query, parse=parse_envelope, tally=tally)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    # -- datasets --------------------------------------------------------------------------

    async def check(self) -> CheckResult:
        """One cheap authenticated call: the first US stock (``pageSize=1``)."""
        began = time.perf_counter()
        try:
            data = await self._get("/stock/stocks", {"countryId": 5, "page": 1, "pageSize": 1})
        except (AuthError, VendorError) as exc:
            return CheckResult(False, str(exc), time.perf_counter() - began)
        total = data.get("total") if isinstance(data, dict) else None
        message = f"key accepted; {total if isinstance(total, int) else '?'} US stocks listed"
        return CheckResult(True, message, time.perf_counter() - began)

    async def instruments(self, market: str | None = None) -> pa.Table:
        """Stocks of ``market`` (IN, US or JP) with their pids, or with ``STOCKTV`` the
        indices of all three countries; None = everything."""
        if market is None:
            wanted = [*COUNTRIES, "STOCKTV"]
        elif market == "STOCKTV":
            wanted = ["STOCKTV"]
        else:
            wanted = [parse_market(market)]
            if wanted[0] not in COUNTRIES:
                raise self._unsupported(f"instruments for {market}")
        rows: dict[str, dict[str, Any]] = {}
        for name in wanted:
            found = await (self._indices() if name == "STOCKTV" else self._stocks(COUNTRIES[name]))
            for row in found:
                kept = rows.setdefault(row["symbol"], row)
                if kept is not row:
                    log.warning(
                        "stocktv: %s and %s both map to %s; keeping pid %s",
                        kept["vendor_code"], row["vendor_code"], row["symbol"], kept["vendor_id"],
                    )  # fmt: skip
        return pa.Table.from_pylist(list(rows.values()), schema=target_schema("instruments"))

    async def _stocks(self, country: Country) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for exchange in country.exchanges or (None,):
            for page in range(1, _MAX_PAGES + 1):
                params: dict[str, str | int] = {
                    "countryId": country.country_id, "page": page, "pageSize": PAGE_SIZE,
                }  # fmt: skip
                if exchange is not None:
                    params["exchangeId"] = exchange
                data = await self._get("/stock/stocks", params)
                records = data.get("records") if isinstance(data, dict) else None
                if not isinstance(records, list):
                    raise SchemaError("/stock/stocks has no list of records", vendor=self.name)
                out += [r for r in (stock_row(x, country) for x in records) if r is not None]
                pages = data.get("pages")
                last = isinstance(pages, int) and not isinstance(pages, bool) and page >= pages
                if not records or last:
                    break
        return out

    async def _indices(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for country in COUNTRIES.values():
            data = await self._get("/stock/indices", {"countryId": country.country_id})
            if not isinstance(data, list):
                raise SchemaError("/stock/indices is not a list", vendor=self.name)
            out += [r for r in (index_row(x, country) for x in data) if r is not None]
        return out

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
        batch = KlineBatch(table=no_rows("klines"))
        tally, tables = Tally(), []
        for symbol in wanted:
            if paging is not None and paging.stopped:
                break  # the caller is stopping: no symbol more (it discards this batch)
            pid = self.context.instruments.ids.get(symbol)
            if pid is None or not pid.isdigit():
                reason = f"no StockTV pid for {symbol} in the instruments map: {_SYNC_HINT}"
                batch.failures.append(Failure(symbol, start, end, reason))
                continue
            bound = closed_by if f in INTRADAY else None
            tables.append(
                await self._symbol_klines(
                    symbol, int(pid), f, start, end, batch, tally, bound, paging
                )
            )
        batch.table = pa.concat_tables(tables) if tables else batch.table
        batch.requests = tally.requests
        return batch

    async def _symbol_klines(
        self,
        symbol: str,
        pid: int,
        freq: str,
        start: dt.date,
        end: dt.date,
        batch: KlineBatch,
        tally: Tally,
        closed_by: dt.datetime | None = None,
        paging: Paging | None = None,
    ) -> pa.Table:
        """One symbol's ``[start, end]``: the part not finished at ``now`` is unavailable
        without a request; the rest is paged, however old: StockTV's depth is not published,
        so only its answer says where its history ends (regression: a 180-day depth, the
        emulator's convention, was applied to the local clock and older ranges were refused
        without asking).

        With ``paging``, the days a page completes are handed over as they come, and a
        resume pages back from the cursor handed over last (see :class:`Paging`): a killed
        backfill of a long range asked again for every page of its symbols in flight."""
        market = parse_symbol(symbol).exchange
        now = self.context.now()
        first = start
        done = complete_through(market, freq, first, end, now)
        if done < end:
            why = "not complete yet at now"
            batch.unavailable.append(Unavailable(symbol, max(first, done + _DAY), end, why))
        # with closed_by, the day in session too: its closed bars (it stays unanswered)
        last = fetch_through(done, end, closed_by, market_spec(market).zone)
        if last < first:
            return no_rows("klines")
        lo_ms, hi_ms = day_bounds_ms(market, first, last)
        request_id = f"stocktv-{INTERVALS[freq]}-{first:%Y%m%d}-{last:%Y%m%d}"
        emit = None
        if paging is not None:
            resume = paging.cursors.get(symbol)
            if resume is not None and lo_ms < resume * _MS <= hi_ms + 1:
                hi_ms = resume * _MS - 1  # the newer days were handed over before
            if paging.on_page is not None:
                on_page = paging.on_page

                async def emit(bars: list[Any], cursor_ms: int) -> bool:
                    table = bars_table(bars, symbol, freq, market_spec(market).tz, request_id)
                    return await on_page(symbol, table, cursor_ms // _MS)

        try:
            pages, oldest = await self._pages(
                symbol, pid, freq, lo_ms, hi_ms, tally, market=market, emit=emit
            )
        except PermanentVendorError as exc:  # unknown pid, refused parameter: this item only
            hint = f" (pid {pid}: the instrument may be gone; {_SYNC_HINT})"
            extra = hint if isinstance(exc, UnknownPid) else ""
            batch.failures.append(Failure(symbol, first, end, exc.bare_message + extra))
            return no_rows("klines")
        # Paging stopped at a short (or empty) page. Where the exchange still traded between
        # the requested start and the oldest bar, StockTV has nothing older (its depth is
        # unknown): that part is unavailable, never confirmed empty.
        if paging is not None and paging.stopped:
            return no_rows("klines")  # held-back rows dropped
        answered_from = first
        gap_end = missing_before(market, freq, first, oldest)
        if gap_end is not None:
            seen = iso_utc(dt.datetime.fromtimestamp(oldest / 1000, dt.UTC))
            why = f"StockTV returned no {freq} bars before {seen}"
            batch.unavailable.append(
                Unavailable(symbol, first, gap_end, why, depth_from=gap_end + _DAY)
            )
            answered_from = gap_end + _DAY
        if answered_from <= done:
            batch.answered.append(Span(symbol, answered_from, done))
        bars = [bar for page in reversed(pages) for bar in page]  # oldest page first
        return bars_table(bars, symbol, freq, market_spec(market).tz, request_id)

    async def _pages(
        self,
        symbol: str,
        pid: int,
        freq: str,
        lo_ms: int,
        hi_ms: int,
        tally: Tally,
        *,
        market: str,
        emit: Callable[[list[Any], int], Awaitable[bool]] | None = None,
    ) -> tuple[list[list[Any]], int]:
        """Page ``[lo_ms, hi_ms]`` backwards until a page is short. Returns the pages not
        handed over (newest first) and the oldest bar's ``time`` (``hi_ms + 1`` if StockTV
        had none). With ``emit``, after each page that paging goes on from, the bars of the
        days after the oldest bar's day (no later page changes them) are handed over with
        the cursor of that day's end: the oldest day waits for the next page."""
        pages: list[list[Any]] = []
        cursor = hi_ms
        for _ in range(_MAX_PAGES):
            params: dict[str, str | int] = {
                "pid": pid, "interval": INTERVALS[freq], "startTime": lo_ms, "endTime": cursor,
            }  # fmt: skip
            data = await self._get("/stock/kline", params, tally)
            times = bar_times(data, symbol)
            if not times:
                return pages, cursor + 1
            pages.append(data)
            oldest = min(times)
            if oldest > cursor:
                raise SchemaError(
                    f"/stock/kline of {symbol} answered bars after endTime {cursor}",
                    vendor=self.name,
                )
            if len(times) < BARS_PER_CALL or oldest <= lo_ms:
                return pages, oldest
            if emit is not None:
                day = dt.datetime.fromtimestamp(oldest / _MS, market_spec(market).zone).date()
                boundary = day_bounds_ms(market, day + _DAY, day + _DAY)[0]
                ready = [b for page in reversed(pages) for b in page if b["time"] >= boundary]
                if ready:
                    pages = [[b for b in page if b["time"] < boundary] for page in pages]
                    if not await emit(ready, boundary):  # the caller is stopping
                        return [], oldest
            cursor = oldest - 1
        raise SchemaError(f"/stock/kline of {symbol} did not end after {_MAX_PAGES} pages")
