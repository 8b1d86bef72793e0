"""The ``sim`` vendor: the deterministic synthetic market, served without any network.

It is the embedded default (``etl demo``, tests): the data comes from :mod:`etl.synthetic`
and this module only maps it to the canonical tables and to the batch bookkeeping of
:class:`~etl.vendors.base.KlineBatch`. ``now`` is always ``context.now()``; the seed is the
vendor setting ``seed`` (``[vendors.sim] seed = 7`` in etl.toml), default 0.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import ClassVar, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from etl.calendars import sessions
from etl.calendars.markets import CFE_TREASURY_VARIETIES
from etl.errors import BadInputError, CapabilityError, ConfigError, PermanentVendorError
from etl.names import FREQS, MARKETS, parse_freq, parse_market
from etl.schema import empty_table
from etl.synthetic import (
    DAILY_ONLY_MARKETS,
    STATEMENT_DATASETS,
    VARIETIES,
    Bars,
    Instrument,
    calendar_market,
    completed_through,
    instruments,
    klines,
    local_today,
    main_contract,
    statements,
    universe,
)
from etl.synthetic.actions import actions
from etl.vendors.base import (
    Capabilities,
    CheckResult,
    DatasetCapability,
    Failure,
    KlineBatch,
    Paging,
    RateLimits,
    Span,
    Unavailable,
    VendorAdapter,
    no_rows,
    target_schema,
)

__all__ = ["SimAdapter"]

SINCE: Final = dt.date(2005, 1, 4)  # the calendars' first session
_STATEMENTS_SINCE: Final = dt.date(2013, 1, 1)
_ONE_DAY: Final = dt.timedelta(days=1)
_FUTURES_EXCHANGES: Final = frozenset({"CFE", "SHF", "DCE", "CZC", "INE"})
_CN_STOCK_MARKETS: Final = frozenset({"SH", "SZ", "BJ"})
_FACTOR_MARKETS: Final = frozenset({"SH", "SZ", "BJ", "HK", "US"})
_PRICE_COLUMNS: Final = ("open", "high", "low", "close")
_NULLABLE_COLUMNS: Final = ("volume", "amount", "settle", "open_interest")


class SimAdapter(VendorAdapter):
    """Offline synthetic vendor (no key, no network, deterministic for a seed)."""

    name: ClassVar[str] = "sim"
    title: ClassVar[str] = "Synthetic market (offline, deterministic)"
    _asked: int = 0  # calls answered: the requests of a vendor that has no wire

    def _ask(self, what: str) -> None:
        """Count one call as one request, and tell the task as an HTTP vendor's client does:
        a first run on sim says how many requests it made, as its ``--dry-run`` planned them
        (regression: every sim task said "0 requests")."""
        self._asked += 1
        if self.context.on_request is not None:
            self.context.on_request("GET", f"/sim/{what}")

    def requests_sent(self) -> int:
        return self._asked

    @property
    def seed(self) -> int:
        value = self.settings.extra.get("seed", 0)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"[vendors.sim] seed must be an integer, got {value!r}")
        return value

    def _now(self) -> dt.datetime:
        now = self.context.now()
        if now.tzinfo is None:
            raise ConfigError("the clock given to the sim vendor must be timezone-aware")
        return now

    def capabilities(self) -> Capabilities:
        intraday_markets = frozenset(MARKETS) - DAILY_ONLY_MARKETS
        per_call = 500
        return Capabilities(
            vendor=self.name,
            datasets=(
                DatasetCapability(
                    "klines", intraday_markets, frozenset(FREQS), SINCE,
                    symbols_per_call=per_call,
                ),
                DatasetCapability(
                    "klines", DAILY_ONLY_MARKETS, frozenset({"1d", "1w", "1M"}), SINCE,
                    symbols_per_call=per_call, note="commodity futures: day bars and longer",
                ),
                DatasetCapability("calendar", frozenset(MARKETS), since=SINCE),
                DatasetCapability("instruments", frozenset(MARKETS)),
                *(
                    DatasetCapability(
                        ds, _CN_STOCK_MARKETS, since=_STATEMENTS_SINCE, symbols_per_call=per_call
                    )
                    for ds in STATEMENT_DATASETS
                ),
                DatasetCapability(
                    "adj_factors", _FACTOR_MARKETS, symbols_per_call=per_call,
                    note="backward and forward factors per ex-date",
                ),
                DatasetCapability("future_varieties", _FUTURES_EXCHANGES),
                DatasetCapability(
                    "main_contracts", _FUTURES_EXCHANGES, note="today's main contract only"
                ),
            ),
            rate=RateLimits(per_second=1000.0, note="local generator, no network"),
        )  # fmt: skip

    async def check(self) -> CheckResult:
        listed = len(instruments(self._now(), seed=self.seed))
        return CheckResult(
            success=True,
            message=f"sim: offline synthetic market, seed {self.seed}, {listed} instruments",
            response_time=0.0,
        )

    async def instruments(self, market: str | None = None) -> pa.Table:
        if market is not None:
            market = parse_market(market)
        self._ask("instruments")
        found = instruments(self._now(), seed=self.seed, market=market)
        rows = [
            {
                "symbol": i.symbol,
                "market": i.market,
                "name": i.name,
                "type": i.type,
                "currency": i.currency,
                "list_date": i.list_date,
                "delist_date": i.delist_date,
                "vendor_code": i.symbol,
                "vendor_id": None,
                "vendor_extra": None,
                "vendor": self.name,
            }
            for i in found
        ]
        return pa.Table.from_pylist(rows, schema=target_schema("instruments"))

    async def calendar(self, market: str, start: dt.date, end: dt.date) -> pa.Table:
        market = parse_market(market)
        if start > end:
            raise BadInputError(f"start {start} is after end {end}")
        self._ask("calendar")
        found = sessions(market, start, end)
        every = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)
        is_open = np.isin(every, found.days)
        half = np.isin(every, found.days[found.half_day])
        columns = {
            "market": pa.array([market] * len(every), pa.string()),
            "trade_date": pa.array(every, pa.date32()),
            "is_open": pa.array(is_open, pa.bool_()),
            "is_half_day": pa.array(half, pa.bool_()),
            "vendor": pa.array([self.name] * len(every), pa.string()),
        }
        return pa.Table.from_pydict(columns, schema=target_schema("calendar"))

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
        self._ask(f"klines/{f}")
        now, seed = self._now(), self.seed
        known: list[Instrument] = []
        failures: list[Failure] = []
        for symbol in dict.fromkeys(symbols):
            inst = universe(seed).visible(symbol, now)
            if inst is None:
                failures.append(Failure(symbol, start, end, "unknown symbol"))
            else:
                known.append(inst)
        caps = self.capabilities()
        for inst in known:  # refuse the whole call before generating anything
            caps.require("klines", inst.market, f)
        batch = KlineBatch(table=no_rows("klines"), failures=failures)
        batch.requests = 1
        bars: list[Bars] = []
        first = max(start, SINCE)
        for inst in known:
            if start < SINCE:
                last_old = min(end, SINCE - _ONE_DAY)
                batch.unavailable.append(
                    Unavailable(inst.symbol, start, last_old, f"sim serves klines since {SINCE}")
                )
                if end < SINCE:
                    continue
            if self._account(batch, inst, f, (first, end), now):
                bars.append(klines(inst.symbol, f, first, end, now, seed=seed))
        request_id = f"sim-{seed}-{f}-{start:%Y%m%d}-{end:%Y%m%d}"
        batch.table = _klines_table(bars, self.name, request_id)
        return batch

    def _account(
        self,
        batch: KlineBatch,
        inst: Instrument,
        freq: str,
        span: tuple[dt.date, dt.date],
        now: dt.datetime,
    ) -> bool:
        """Put (symbol, [start, end]) into answered and, for a part not complete at ``now``,
        unavailable; say whether any bar can exist. A range wholly outside the listed life
        is answered: the vendor says there is nothing there."""
        start, end = span
        lo = max(start, inst.list_date or start)
        hi = min(end, inst.delist_date or end)
        if lo > hi:
            batch.answered.append(Span(inst.symbol, start, end))
            return False
        market = calendar_market(inst)
        if lo > local_today(market, now):  # the future: not even the calendar is asked
            batch.unavailable.append(Unavailable(inst.symbol, lo, hi, "not complete yet at now"))
            return False
        treasury = inst.variety in CFE_TREASURY_VARIETIES
        done = completed_through(market, freq, lo, hi, now, treasury=treasury)
        if done >= lo:
            batch.answered.append(Span(inst.symbol, lo, min(done, hi)))
        if done < hi:
            batch.unavailable.append(
                Unavailable(inst.symbol, max(lo, done + _ONE_DAY), hi, "not complete yet at now")
            )
        return True

    async def statements(
        self, dataset: str, symbols: Sequence[str], start: dt.date | None, end: dt.date | None
    ) -> pa.Table:
        """Every announced version of ``dataset`` for the known symbols (reporting periods in
        [start, end]). Unknown symbols are left out, as AmazingData does; if none is known
        the call fails."""
        if dataset not in STATEMENT_DATASETS:
            raise CapabilityError(f"{self.name} does not serve {dataset}")
        self._ask(dataset)
        now, seed = self._now(), self.seed
        wanted = list(dict.fromkeys(symbols))
        known = [s for s in wanted if universe(seed).visible(s, now) is not None]
        if wanted and not known:
            raise PermanentVendorError(
                "unknown symbols", vendor=self.name, symbol=",".join(wanted[:5])
            )
        rows = []
        for symbol in known:
            for row in statements(dataset, symbol, now, seed=seed, start=start, end=end):
                row["vendor"] = self.name
                rows.append(row)
        return pa.Table.from_pylist(rows, schema=target_schema(dataset))

    async def adj_factors(self, symbols: Sequence[str], start: dt.date, end: dt.date) -> pa.Table:
        """The synthetic corporate actions of the known symbols with ex-dates in
        ``[start, end]`` that have happened by now: both the event's (forward) factor and the
        cumulative backward factor since listing. Unknown symbols are left out."""
        self._ask("adj_factors")
        now, seed = self._now(), self.seed
        rows = []
        for symbol in dict.fromkeys(symbols):
            inst = universe(seed).visible(symbol, now)
            if inst is None:
                continue
            acts = actions(inst, seed)
            last = min(end, local_today(inst.market, now))
            rows += [
                {"symbol": symbol, "ex_date": acts.ex_dates[i],
                 "backward_factor": acts.backward[i], "forward_factor": acts.forward[i],
                 "vendor": self.name}
                for i in acts.between(start, last)
            ]  # fmt: skip
        return pa.Table.from_pylist(rows, schema=target_schema("adj_factors"))

    async def future_varieties(self) -> pa.Table:
        self._ask("future_varieties")
        rows = [
            {"variety": v.code, "exchange": v.exchange, "name": v.name, "vendor": self.name}
            for v in VARIETIES
        ]
        return pa.Table.from_pylist(rows, schema=target_schema("future_varieties"))

    async def main_contracts(self) -> pa.Table:
        """Today's main contract of every variety already trading; ``trade_date`` is today
        in Asia/Shanghai if it is a session, else the latest session before."""
        self._ask("main_contracts")
        today = local_today("SH", self._now())
        recent = sessions("SH", today - dt.timedelta(days=30), today).days
        if len(recent) == 0:
            raise BadInputError(f"no SSE session in the 30 days up to {today}")
        trade_date = dt.date.fromisoformat(str(recent[-1]))
        rows = [
            {
                "exchange": v.exchange,
                "variety": v.code,
                "trade_date": trade_date,
                "symbol": main_contract(v.code, trade_date),
                "vendor": self.name,
            }
            for v in VARIETIES
            if v.start <= trade_date
        ]
        return pa.Table.from_pylist(rows, schema=target_schema("main_contracts"))


def _klines_table(bars: list[Bars], vendor: str, request_id: str) -> pa.Table:
    target = target_schema("klines")
    bars = [b for b in bars if len(b)]
    if not bars:
        return empty_table(target)
    counts = [len(b) for b in bars]
    total = sum(counts)
    columns: dict[str, pa.Array] = {
        "symbol": pa.array(np.repeat([b.symbol for b in bars], counts), pa.string()),
        "freq": pa.array([bars[0].freq] * total, pa.string()),
        "ts": pa.array(np.concatenate([b.ts for b in bars]), pa.timestamp("us", tz="UTC")),
        "trade_date": pa.array(np.concatenate([b.trade_date for b in bars]), pa.date32()),
        "vendor": pa.array([vendor] * total, pa.string()),
        "request_id": pa.array([request_id] * total, pa.string()),
        "source": pa.array(["rest"] * total, pa.string()),
    }
    for name in _PRICE_COLUMNS:
        columns[name] = pa.array(np.concatenate([getattr(b, name) for b in bars]), pa.float64())
    for name in _NULLABLE_COLUMNS:
        values, mask = _with_nulls([getattr(b, name) for b in bars], counts)
        columns[name] = pa.array(values, pa.float64(), mask=mask)
    return pa.Table.from_pydict({f.name: columns[f.name] for f in target}, schema=target)


def _with_nulls(
    parts: list[npt.NDArray[np.float64] | None], counts: list[int]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    values = [p if p is not None else np.zeros(n) for p, n in zip(parts, counts, strict=True)]
    masks = [np.full(n, p is None) for p, n in zip(parts, counts, strict=True)]
    return np.concatenate(values), np.concatenate(masks)
