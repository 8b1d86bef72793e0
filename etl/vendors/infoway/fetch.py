"""The vendor calls behind one symbol's kline range: paging back minute history, or the latest
≤ 500 day bars, and the bookkeeping of what was answered, unavailable or failed.

Kept apart from the adapter so that the stopping rules (docs/vendors/infoway.md "Endpoints":
minute and hour paging; "Capabilities": the latest 500 day bars) read in one place; the adapter
gives it a ``send`` function.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final
from zoneinfo import ZoneInfo

from etl.errors import PermanentVendorError, SchemaError
from etl.vendors.base import Failure, Span, Unavailable
from etl.vendors.infoway import plan as p
from etl.vendors.infoway.wire import (
    KLINE_TYPES,
    Answer,
    Bar,
    HistoryLimit,
    parse_bars,
)

__all__ = ["KlineCall", "Outcome", "Send"]

_DAY: Final = dt.timedelta(days=1)
# POST /{market}/v2/batch_kline with this JSON body -> the parsed answer.
Send = Callable[[dict[str, Any]], Awaitable[Answer]]
# Bars safe to store now (complete days), and the cursor a resume pages back from after them;
# answers whether to go on (False: the caller is stopping, see Paging).
Emit = Callable[[list[Bar], int], Awaitable[bool]]


@dataclass
class Outcome:
    """One symbol's share of a kline fetch (merged into the ``KlineBatch``)."""

    bars: list[Bar] = field(default_factory=list)
    answered: list[Span] = field(default_factory=list)
    unavailable: list[Unavailable] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


@dataclass
class KlineCall:
    """The calls of one symbol's range ``[lo, hi]`` (trade dates, both inclusive, already cut
    to what is complete at ``now``): one code, one klineType."""

    symbol: str
    code: str
    freq: str
    zone: ZoneInfo
    now: dt.datetime
    send: Send
    out: Outcome = field(default_factory=Outcome)
    emit: Emit | None = None  # hand over complete days page by page (see Paging)
    floor: int | None = None  # the oldest bar time received, or a resume's cursor - 1

    async def _page(self, count: int, before: int | None) -> list[Bar] | None:
        """One call; None when the vendor leaves our code out of its answer."""
        body: dict[str, Any] = {
            "codes": self.code,
            "klineType": KLINE_TYPES[self.freq],
            "klineNum": count,
        }
        if before is not None:
            body["timestamp"] = before
        answer = await self.send(body)
        return parse_bars(answer.data, self.code, answer.trace_id)

    def _fail(self, lo: dt.date, hi: dt.date, reason: str) -> None:
        """The whole range fails and keeps nothing (a retry fetches it again)."""
        self.out.bars = []
        self.out.failures.append(Failure(self.symbol, lo, hi, f"{reason} (code {self.code})"))

    async def run(self, lo: dt.date, hi: dt.date, resume: int | None = None) -> Outcome:
        """``resume``: page back from this cursor (a resumed fetch whose newer pages are
        stored), not from the end of ``hi``."""
        try:
            if self.freq in p.MINUTE_FREQS:
                await self._paged(lo, hi, resume)
            else:
                await self._latest(lo, hi)
        except PermanentVendorError as exc:  # "All product not exists", a refused parameter
            self._fail(lo, hi, exc.bare_message)  # this symbol fails, the others go on
        return self.out

    async def _paged(self, lo: dt.date, hi: dt.date, resume: int | None = None) -> None:
        """Pages of 500, newest first, back from the end of ``hi`` (``timestamp`` exclusive),
        until a bar before ``lo`` arrives, a page is short (the vendor has nothing older) or
        the plan's history ends. The first call omits ``timestamp`` when the range reaches
        the present, as the vendor's paging starts.

        With ``emit``, the days a page completes (every day newer than its oldest bar's) are
        handed over at once with the cursor of their oldest midnight: a resume from that
        cursor asks only for what was not handed over. Regression: a backfill killed
        mid-range paged again from the newest page (324 requests for 200).

        When ``emit`` answers False (the caller is stopping) paging ends there: the held-back
        day is dropped and nothing is answered, so a resume from the cursor just handed over
        asks for the rest. Regression: Ctrl-C waited for every page of the symbols in flight."""
        lo_s = p.local_midnight(lo, self.zone)
        hi_s = p.local_midnight(hi + _DAY, self.zone)
        cursor = hi_s if hi_s <= self.now.timestamp() else None
        if resume is not None and resume < hi_s:
            if resume <= lo_s:  # everything was handed over before the kill
                self.out.answered.append(Span(self.symbol, lo, hi))
                return
            cursor, self.floor = resume, resume - 1
        while True:
            try:
                bars = await self._page(p.PAGE, cursor)
            except HistoryLimit:
                self._history_ends(lo, hi)
                return
            if bars is None:
                self._fail(lo, hi, "unknown to Infoway")
                return
            self.out.bars += bars
            if not bars:
                break
            oldest = min(b.t for b in bars)
            self.floor = oldest if self.floor is None else min(self.floor, oldest)
            if not await self._hand_over(lo_s, hi_s):
                self.out.bars = []
                return
            if oldest < lo_s or len({b.t for b in bars}) < p.PAGE:
                break
            if cursor is not None and oldest >= cursor:
                raise SchemaError(
                    f"a page before {cursor} held bars from {oldest} on: timestamp ignored",
                    vendor="infoway",
                    symbol=self.symbol,
                )
            cursor = oldest
        self.out.answered.append(Span(self.symbol, lo, hi))

    async def _hand_over(self, lo_s: int, hi_s: int) -> bool:
        """Emit the bars of the days after the oldest bar's day (complete: paging went past
        them); keep the oldest day's, which the next page may complete. Answers whether to
        go on paging (``emit``'s answer; True when nothing was emitted)."""
        if self.emit is None or self.floor is None:
            return True
        day = dt.datetime.fromtimestamp(self.floor, self.zone).date()
        boundary = p.local_midnight(day + _DAY, self.zone)
        ready = [b for b in self.out.bars if b.t >= boundary]
        if not ready:
            return True
        self.out.bars = [b for b in self.out.bars if b.t < boundary]
        return await self.emit([b for b in ready if lo_s <= b.t < hi_s], max(boundary, lo_s))

    def _history_ends(self, lo: dt.date, hi: dt.date) -> None:
        """``Timestamp limit error``: the days before the oldest bar received, and its own
        (maybe partial) day, are beyond the plan's history; newer days are answered."""
        why = "older than Infoway's minute history (Timestamp limit error)"
        if self.floor is None:
            self.out.unavailable.append(Unavailable(self.symbol, lo, hi, why))
            return
        oldest = self.floor
        cut = dt.datetime.fromtimestamp(oldest, self.zone).date()
        self.out.unavailable.append(Unavailable(self.symbol, lo, min(hi, cut), why))
        keep_from = p.local_midnight(cut + _DAY, self.zone)
        self.out.bars = [b for b in self.out.bars if b.t >= keep_from]
        if cut < hi:
            self.out.answered.append(Span(self.symbol, max(lo, cut + _DAY), hi))

    async def _latest(self, lo: dt.date, hi: dt.date) -> None:
        """Day bars and longer: the latest ``klineNum`` bars, enough to reach ``lo`` where the
        vendor's 500 allow; a full page of 500 that starts after ``lo`` leaves the older
        part unavailable (the planner knows it from the table's ``depth``)."""
        today = self.now.astimezone(self.zone).date()
        count = p.latest_count(self.freq, lo, today)
        bars = await self._page(count, None)
        if bars is None:
            self._fail(lo, hi, "unknown to Infoway")
            return
        self.out.bars += bars
        first = lo
        if count == p.DEPTH and len({b.t for b in bars}) >= p.DEPTH:
            oldest = dt.datetime.fromtimestamp(min(b.t for b in bars), self.zone).date()
            if oldest > lo:
                why = f"beyond Infoway's window (only the latest {p.DEPTH} {self.freq} bars)"
                self.out.unavailable.append(
                    Unavailable(self.symbol, lo, min(hi, oldest - _DAY), why)
                )
                first = oldest
        if first <= hi:
            self.out.answered.append(Span(self.symbol, first, hi))
