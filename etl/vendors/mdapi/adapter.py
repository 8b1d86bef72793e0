"""mdapi (脉动数据): crypto, forex and futures klines over plain HTTP, per docs/vendors/mdapi.md.

Auth: the vendor allow-lists the server's IP; there is no key, so nothing is required before a
call. A refused IP (code 403 ``IP未授权`` on any endpoint) is an auth error (exit 3) whose
message says to ask the vendor to allow-list the server. Every request says
``Accept-Encoding: gzip`` (the vendor asks for it; the answers shrink about tenfold).

Limits are per product code and per endpoint kind, with a 10 s ban for going over, so the
governor keeps one bucket per (kind, code): ``kline:<code>`` at ``ETL_MDAPI_RATE`` (5/s),
``quote:<code>`` at 3/s, and ``list`` at 2/s for the two list endpoints together. A 429
nevertheless (another client on the same IP) bans that bucket for 10 s in every process of the
data root, then the request is retried (at most 3 times).

Klines come from ``redis.php``: only the latest N bars of one product per request, so a request
is one product and its whole window, and the part of a range older than the oldest bar returned
is reported unavailable (:func:`~etl.vendors.mdapi.window.coverage`). Codes come from the
instruments map (upper-casing is lossy); a symbol the map lacks gets the documented rule
inverted (:func:`~etl.vendors.mdapi.wire.guess_code`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, Final

import pyarrow as pa

from etl.errors import AuthError, BadInputError, PermanentVendorError, SchemaError, VendorError
from etl.names import parse_freq, parse_symbol
from etl.vendors.base import (
    Capabilities,
    CheckResult,
    Failure,
    KlineBatch,
    Paging,
    VendorAdapter,
    VendorContext,
    no_rows,
    target_schema,
)
from etl.vendors.http import Tally, VendorHttp
from etl.vendors.mdapi.window import (
    BAN_SECONDS,
    DEPTH,
    EXCHANGES,
    capabilities,
    coverage,
    governor_limits,
)
from etl.vendors.mdapi.wire import (
    Quote,
    UnknownProduct,
    bars_table,
    decode_bars,
    guess_code,
    instrument_row,
    parse_bars,
    parse_envelope,
    parse_quote,
)

__all__ = ["MdapiAdapter"]

PAGE_SIZE: Final = 100  # getSymbolList.php's largest page
CONNECTIONS: Final = 16  # products fetched at once; each keeps to its own limit


class MdapiAdapter(VendorAdapter):
    """mdapi's REST API: klines (latest N bars), instrument lists, quotes."""

    name: ClassVar[str] = "mdapi"
    title: ClassVar[str] = "mdapi 脉动数据 (crypto, forex, futures; latest bars only)"
    required_settings: ClassVar[tuple[str, ...]] = ()  # IP allow-list, no key
    public_base_url: ClassVar[str | None] = "http://39.107.99.235:1008"
    ban_seconds: ClassVar[float] = BAN_SECONDS

    def __init__(self, context: VendorContext) -> None:
        super().__init__(context)
        self._http: VendorHttp | None = None
        self._listing: list[dict[str, Any]] | None = None  # this instance's instrument rows
        self._listed: dict[str, str] = {}  # canonical -> vendor code, from the listing

    def capabilities(self) -> Capabilities:
        return capabilities(self.name, self.settings.rate)

    @property
    def http(self) -> VendorHttp:
        if self._http is None:
            self._http = VendorHttp.for_context(
                self.context,
                governor_limits(self.settings.rate),
                public_url=self.public_base_url,
                headers={"Accept-Encoding": "gzip"},
                rate_limit_ban=self.ban_seconds,
                max_connections=CONNECTIONS,
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def _get(self, path: str, params: Mapping[str, str | int], bucket: str) -> Any:
        return await self.http.request(
            "GET", path, params=params, parse=parse_envelope, bucket=bucket
        )

    def code_for(self, symbol: str) -> tuple[str, bool]:
        """The vendor code of ``symbol`` and whether it is only a guess (not in a map)."""
        found = self.context.instruments.code_for(symbol) or self._listed.get(symbol)
        return (found, False) if found else (guess_code(symbol), True)

    # -- datasets ------------------------------------------------------------------------

    async def check(self) -> CheckResult:
        """Read the category list: the cheapest call, and refused like any other when the
        server's IP is not allow-listed."""
        began = time.perf_counter()
        try:
            categories = await self._categories()
        except (AuthError, VendorError) as exc:  # IP refused: the message says what to do
            return CheckResult(False, str(exc), time.perf_counter() - began)
        message = f"IP allow-listed; {len(categories)} product categories"
        return CheckResult(True, message, time.perf_counter() - began)

    async def _categories(self) -> list[tuple[str, str]]:
        data = await self._get("/getCategory.php", {}, "list")
        items = data.get("list") if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(c, dict) and "id" in c for c in items):
            raise SchemaError("getCategory.php has no list of categories", vendor=self.name)
        return [(str(c["id"]), str(c.get("name") or "")) for c in items]

    async def instruments(self, market: str | None = None) -> pa.Table:
        """Every listed code of every category (paged by 100), as canonical instruments;
        ``market`` ``CC``, ``FX`` or ``MDAPI`` keeps one kind. The listing is read once per
        adapter, since instruments sync asks once per market."""
        if market is not None and market not in EXCHANGES:
            raise self._unsupported(f"instruments for {market}")
        if self._listing is None:
            self._listing = await self._list_all()
            self._listed = {r["symbol"]: r["vendor_code"] for r in self._listing}
        rows = [r for r in self._listing if market is None or r["market"] == market]
        return pa.Table.from_pylist(rows, schema=target_schema("instruments"))

    async def _list_all(self) -> list[dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        for category, _ in await self._categories():
            for code, name in await self._symbols(category):
                row = instrument_row(code, name, category)
                if row is not None:  # a code that makes no symbol, or a second one that
                    rows.setdefault(row["symbol"], row)  # makes the same symbol, is skipped
        return list(rows.values())

    async def _symbols(self, category: str) -> list[tuple[str, object]]:
        """Every (code, name) of a category: pages of 100 until ``total`` are read, an empty
        page comes, or more pages were read than ``total`` needs (a total that never adds
        up must not loop for ever)."""
        found: list[tuple[str, object]] = []
        for page in itertools.count(1):
            params: dict[str, str | int] = {
                "category": category, "page": page, "pageSize": PAGE_SIZE,
            }  # fmt: skip
            data = await self._get("/getSymbolList.php", params, "list")
            items = data.get("list") if isinstance(data, dict) else None
            total = data.get("total") if isinstance(data, dict) else None
            if not isinstance(items, list) or isinstance(total, bool) or not isinstance(total, int):
                raise SchemaError(f"getSymbolList.php category {category}: no total and list")
            if not all(isinstance(i, dict) and isinstance(i.get("code"), str) for i in items):
                raise SchemaError(f"getSymbolList.php category {category}: an item has no code")
            found += [(i["code"], i.get("name")) for i in items]
            if not items or len(found) >= total or page > total // PAGE_SIZE:
                break
        return found

    async def quote(self, symbol: str) -> Quote:
        """The latest quote of one product (``getQuote.php``, 3/s per code)."""
        code, _ = self.code_for(str(parse_symbol(symbol)))
        data = await self._get("/getQuote.php", {"code": code}, f"quote:{code}")
        return parse_quote(data)

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
        """One ``redis.php`` call per product for its whole window, products in parallel."""
        f = parse_freq(freq).name
        if start > end:
            raise BadInputError(f"start {start} is after end {end}")
        caps = self.capabilities()
        wanted = list(dict.fromkeys(symbols))
        for symbol in wanted:  # refuse the whole call before any request
            caps.require("klines", parse_symbol(symbol).exchange, f)
        batch = KlineBatch(table=no_rows("klines"))
        tally = Tally()
        tables: dict[str, pa.Table] = {}

        async def one(symbol: str) -> None:
            table = await self._kline_call(symbol, f, start, end, batch, tally)
            if table is not None:
                tables[symbol] = table

        await _pooled(wanted, one, CONNECTIONS)
        parts = [tables[s] for s in wanted if s in tables]
        batch.table = pa.concat_tables(parts) if parts else batch.table
        batch.requests = tally.requests
        return batch

    async def _kline_call(
        self, symbol: str, freq: str, start: dt.date, end: dt.date, batch: KlineBatch, tally: Tally
    ) -> pa.Table | None:
        """One product's window; books its range as answered / unavailable, or a failure."""
        code, guessed = self.code_for(symbol)
        rows = DEPTH[freq]
        params: dict[str, str | int] = {"code": code, "time": freq, "rows": rows}
        try:
            payload = await self.http.request(
                "GET", "/redis.php", params=params, parse=parse_bars,
                bucket=f"kline:{code}", tally=tally,
            )  # fmt: skip
        except PermanentVendorError as exc:  # 产品不存在, 参数错误: this product only
            reason = exc.bare_message
            if isinstance(exc, UnknownProduct) and guessed:
                reason += f" (code {code!r} guessed: `etl instruments sync --vendor mdapi` maps it)"
            batch.failures.append(Failure(symbol, start, end, reason))
            return None
        bars = decode_bars(payload, code, volume=not symbol.endswith(".FX"))
        now = self.context.now()
        oldest = min((b.ms for b in bars), default=None)
        spans, unavailable = coverage(symbol, freq, start, end, oldest, now)
        batch.answered += spans
        batch.unavailable += unavailable
        request_id = f"mdapi-{code}-{freq}-{rows}"
        return bars_table(bars, symbol, freq, start=start, end=end, now=now, request_id=request_id)


async def _pooled(items: list[str], fn: Callable[[str], Awaitable[None]], workers: int) -> None:
    """``fn`` over ``items`` by ``workers`` tasks; the first error cancels the rest and is
    raised (an auth error or a schema error stops the whole call)."""
    pending = list(items)

    async def worker() -> None:
        while pending:
            await fn(pending.pop(0))

    tasks = [asyncio.create_task(worker()) for _ in range(min(workers, len(items)))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
