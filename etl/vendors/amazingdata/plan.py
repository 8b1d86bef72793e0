"""What AmazingData serves (its capability table) and how requests are cut to fit it:
pure helpers of the adapter, no I/O."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Final

from etl.vendors.amazingdata import api
from etl.vendors.amazingdata.wire import PERIODS, STATEMENT_PATHS
from etl.vendors.base import Capabilities, DatasetCapability, RateLimits, Span

__all__ = [
    "CODES_PER_CALL",
    "DAY_COMPLETE",
    "capabilities",
    "chunks",
    "complete_through",
    "merge",
    "pooled",
    "windows",
]

STOCK_MARKETS: Final = frozenset({"SH", "SZ", "BJ"})
FUTURE_MARKETS: Final = frozenset({"CFE"})
ALL_FREQS: Final = frozenset(PERIODS)
MINUTE_FREQS: Final = ("1m", "5m", "15m", "30m", "1h")
CODES_PER_CALL: Final = api.MAX_CODES
MINUTE_DAYS_PER_CALL: Final = api.MAX_MINUTE_DAYS  # calendar days, both ends counted
STOCKS_SINCE: Final = dt.date(2013, 1, 1)
CFFEX_SINCE: Final = dt.date(2010, 4, 16)  # CFFEX's first session (IF, 2010-04-16)
IN_FLIGHT: Final = 2
DEFAULT_RATE: Final = 5.0
SECURITY_TYPES: Final = {  # /base/codes security_type -> instruments type, markets
    name: (kind, frozenset(markets)) for name, (kind, markets) in api.SECURITY_TYPES.items()
}
# After 15:30 Shanghai time a day's bars are final (treasury futures close at 15:15).
DAY_COMPLETE: Final = dt.time(15, 30)
_DAY: Final = dt.timedelta(days=1)


def capabilities(vendor: str, rate: float | None) -> Capabilities:
    """The table of docs/vendors/amazingdata.md "Capabilities"; ``rate`` is ETL_AMAZINGDATA_RATE."""
    per_call = {f: MINUTE_DAYS_PER_CALL for f in MINUTE_FREQS}
    return Capabilities(
        vendor=vendor,
        datasets=(
            DatasetCapability(
                "klines", STOCK_MARKETS, ALL_FREQS, STOCKS_SINCE,
                symbols_per_call=CODES_PER_CALL, span_days_per_call=per_call,
                note="stocks, ETFs and indices",
            ),
            DatasetCapability(
                "klines", FUTURE_MARKETS, ALL_FREQS, CFFEX_SINCE,
                symbols_per_call=CODES_PER_CALL, span_days_per_call=per_call,
                note="CFFEX futures, with settle and open interest",
            ),
            DatasetCapability("calendar", STOCK_MARKETS, since=STOCKS_SINCE, note="BJ via SH"),
            DatasetCapability("calendar", FUTURE_MARKETS, since=CFFEX_SINCE),
            DatasetCapability(
                "instruments", STOCK_MARKETS | FUTURE_MARKETS, note="today's list"
            ),
            *(
                DatasetCapability(
                    ds, STOCK_MARKETS, since=STOCKS_SINCE, symbols_per_call=CODES_PER_CALL,
                    note="every reported version",
                )
                for ds in STATEMENT_PATHS
            ),
            DatasetCapability(
                "adj_factors", STOCK_MARKETS, symbols_per_call=CODES_PER_CALL,
                note="backward factors per ex-date",
            ),
            DatasetCapability("future_varieties", FUTURE_MARKETS),
            DatasetCapability(
                "main_contracts", FUTURE_MARKETS,
                note="today only: past days cannot be filled",
            ),
        ),
        rate=RateLimits(
            per_second=rate or DEFAULT_RATE, in_flight=IN_FLIGHT, scope="key",
            note="per user; the login is not counted",
        ),
    )  # fmt: skip


def complete_through(freq: str, local_now: dt.datetime) -> dt.date:
    """The last day whose ``freq`` bars can no longer change at ``local_now`` (Shanghai):
    today after the close, else yesterday; for 1w the last finished week, for 1M month."""
    today = local_now.date()
    last_day = today if local_now.time() >= DAY_COMPLETE else today - _DAY
    if freq == "1w":
        return last_day if today.weekday() >= 5 else today - dt.timedelta(days=today.weekday() + 1)
    if freq == "1M":
        return today.replace(day=1) - _DAY
    return last_day


def chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def windows(lo: dt.date, hi: dt.date, days: int | None) -> list[tuple[dt.date, dt.date]]:
    """``[lo, hi]`` cut into inclusive windows of at most ``days`` calendar days."""
    if days is None:
        return [(lo, hi)]
    out, cur = [], lo
    while cur <= hi:
        last = min(hi, cur + dt.timedelta(days=days - 1))
        out.append((cur, last))
        cur = last + _DAY
    return out


def merge(spans: Iterable[Span]) -> list[Span]:
    """Adjacent or overlapping spans of one symbol joined (calls cut the range in windows)."""
    out: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.symbol, s.start)):
        prev = out[-1] if out else None
        if prev and prev.symbol == span.symbol and span.start <= prev.end + _DAY:
            out[-1] = Span(span.symbol, prev.start, max(prev.end, span.end))
        else:
            out.append(span)
    return out


async def pooled(items: list[str], fn: Callable[[str], Awaitable[None]], workers: int) -> None:
    """``fn`` over ``items`` by ``workers`` tasks; the first error cancels the rest."""
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
