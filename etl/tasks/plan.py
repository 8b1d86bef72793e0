"""Planning fill-missing: from absent slots and a vendor's capability table to vendor calls.

What the vendor cannot serve by its documentation (older than the history it documents, a
market or frequency it lacks) is marked ``unfillable`` and never requested; a limit relative
to the vendor's clock (its latest N bars) is left to the vendor's answer. The rest is cut
into calls: per symbol, runs of absent trade dates are merged while one merged call costs no
more requests than separate ones, under the vendor's span limit; then symbols asking for the
same range share calls up to the vendor's symbols-per-call.

One planner, two ways in: :func:`plan_fill` takes detect's absent slots (a polars frame);
:func:`plan_all_absent` takes the expectation of a selection nothing is stored for (every
expected slot absent and ``missing``), without polars, so a fill of a new symbol reaches its
first request without importing it (0.1-0.15 s; issue 10, start-up). Both reduce their input
to the same per-symbol form (:class:`Absent`: trade dates and slots per date) that the
planning works on; only the unfillable slot rows are built from each input's own slots.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from etl.calendars.bars import BarGrid, bar_grid
from etl.calendars.markets import market_of_symbol
from etl.tasks.costs import range_requests, seconds_at
from etl.tasks.depths import Depth
from etl.tasks.expected import Judged, Selection
from etl.vendors.base import Capabilities, DatasetCapability

if TYPE_CHECKING:
    import polars as pl

__all__ = ["Absent", "Cut", "FillPlan", "PlannedCall", "plan_all_absent", "plan_fill"]

MAX_SYMBOLS_PER_UNIT = 50
MAX_UNIT_BARS = 1_000_000
RUN_BREAK_DAYS = 7
_EXCHANGE = re.compile(r"\.([A-Z]+)$")


@dataclass(frozen=True)
class PlannedCall:
    symbols: tuple[str, ...]
    start: dt.date
    end: dt.date
    slots: int  # absent slots this call should fill
    requests: int  # estimated vendor requests (paging, span limits)


@dataclass(frozen=True)
class Absent:
    """One symbol's absent slots as the planner needs them: its trade dates (sorted, each
    once, datetime64[D]) and the absent slots of each."""

    exchange: str | None
    days: npt.NDArray[np.datetime64]
    counts: npt.NDArray[np.int64]


@dataclass(frozen=True)
class Cut:
    """Slots of one symbol the vendor cannot serve: those with a trade date in
    ``[lo, hi)`` (an open end is ``None``), for ``reason``."""

    symbol: str
    lo: dt.date | None
    hi: dt.date | None
    reason: str


@dataclass
class FillPlan:
    vendor: str
    calls: list[PlannedCall] = field(default_factory=list)
    # the unfillable slots (symbol, ts, trade_date, state, reason); None: there are none (a
    # plan made without polars builds no frame for nothing)
    rows: pl.DataFrame | None = None

    @property
    def unfillable(self) -> pl.DataFrame:
        if self.rows is not None:
            return self.rows
        import polars as pl  # only asked for when there is nothing to show

        return pl.DataFrame(schema=_UNFILLABLE_SCHEMA())

    @property
    def unfillable_count(self) -> int:
        return 0 if self.rows is None else self.rows.height

    @property
    def requests(self) -> int:
        return sum(c.requests for c in self.calls)

    @property
    def slots(self) -> int:
        return sum(c.slots for c in self.calls)

    def summary(self, caps: Capabilities, rate: float | None) -> dict[str, Any]:
        per_second, seconds = seconds_at(self.requests, caps, rate)
        return {
            "vendor": self.vendor,
            "requests": self.requests,
            "calls": len(self.calls),
            "rows_expected": self.slots,
            "quota_used": self.requests,
            "seconds_at_rate_limit": round(seconds, 1),
            "rate_limit_per_second": per_second,
            "unfillable": self.unfillable_count,
            "plan": [
                {
                    "symbols": list(c.symbols),
                    "start": c.start.isoformat(),
                    "end": c.end.isoformat(),
                    "rows_expected": c.slots,
                    "requests": c.requests,
                }
                for c in self.calls[:1000]
            ],
        }


def _UNFILLABLE_SCHEMA() -> dict[str, Any]:  # noqa: N802 (a schema, built when asked)
    import polars as pl

    return {"symbol": pl.String, "ts": pl.Datetime("us", "UTC"), "trade_date": pl.Date,
            "state": pl.String, "reason": pl.String}  # fmt: skip


def exchange_of(symbol: str) -> str | None:
    found = _EXCHANGE.search(symbol)
    return found.group(1) if found else None


def plan_fill(
    sel: Selection,
    slots: pl.DataFrame,
    vendor: str,
    caps: Capabilities,
    now: dt.datetime,
    *,
    others: Mapping[str, Capabilities] | None = None,
    depths: dict[str, Depth] | None = None,
) -> FillPlan:
    """``slots``: the absent slots to fill (symbol, ts, trade_date, state, reason).
    ``depths``: where the vendor's answers showed a symbol's history starts (slots before
    are unfillable with that answer as the reason, not asked again)."""
    import polars as pl

    plan = FillPlan(vendor=vendor)
    if slots.height == 0:
        plan.rows = slots.head(0)
        return plan
    per_date = slots.group_by("symbol", "trade_date").len().sort("symbol", "trade_date")
    symbols = per_date["symbol"].to_numpy()
    days = per_date["trade_date"].to_numpy().astype("datetime64[D]")
    counts = per_date["len"].to_numpy().astype(np.int64)
    bounds = [0, *(np.flatnonzero(symbols[1:] != symbols[:-1]) + 1).tolist(), len(symbols)]
    absent = {
        str(symbols[lo]): Absent(exchange_of(str(symbols[lo])), days[lo:hi], counts[lo:hi])
        for lo, hi in itertools.pairwise(bounds)
    }
    plan.calls, cuts = _plan(sel, absent, vendor, caps, others, depths)
    rules = pl.DataFrame(
        [(c.symbol, c.lo, c.hi, c.reason) for c in cuts],
        schema={"symbol": pl.String, "_lo": pl.Date, "_hi": pl.Date, "_why": pl.String},
        orient="row",
    )
    plan.rows = (
        slots.join(rules, on="symbol", how="inner")
        .filter((pl.col("_lo").is_null() | (pl.col("trade_date") >= pl.col("_lo")))
                & (pl.col("_hi").is_null() | (pl.col("trade_date") < pl.col("_hi"))))
        .sort("symbol", "ts")
        .select("symbol", "ts", "trade_date", pl.lit("unfillable").alias("state"),
                pl.col("_why").alias("reason"))
    )  # fmt: skip
    return plan


def plan_all_absent(
    sel: Selection,
    judged: list[Judged],
    grids: Mapping[str, BarGrid],
    vendor: str,
    caps: Capabilities,
    *,
    others: Mapping[str, Capabilities] | None = None,
    depths: dict[str, Depth] | None = None,
) -> FillPlan:
    """The plan :func:`plan_fill` makes of a klines selection when every expected slot is
    absent and ``missing`` (nothing stored, nothing in the gap ledger): ``judged`` symbols
    with their profile's ``grids`` (:func:`~etl.tasks.expected.judge`,
    :func:`~etl.tasks.expected.bar_grids`). polars is imported only to build the rows of
    unfillable slots, when there are any."""
    per_profile = {p: _days_of(g) for p, g in grids.items()}
    absent: dict[str, Absent] = {}
    for j in sorted(judged, key=lambda j: j.symbol):
        days, counts = per_profile[j.profile]
        lo = np.searchsorted(days, np.datetime64(j.first_day, "D"), "left")
        hi = np.searchsorted(days, np.datetime64(j.last_day, "D"), "right")
        if hi > lo:
            absent[j.symbol] = Absent(exchange_of(j.symbol), days[lo:hi], counts[lo:hi])
    plan = FillPlan(vendor=vendor)
    plan.calls, cuts = _plan(sel, absent, vendor, caps, others, depths)
    if cuts:
        plan.rows = _cut_rows(cuts, {j.symbol: j for j in judged}, grids)
    return plan


def _days_of(grid: BarGrid) -> tuple[npt.NDArray[np.datetime64], npt.NDArray[np.int64]]:
    days, counts = np.unique(grid.trade_date.astype("datetime64[D]"), return_counts=True)
    return days, counts.astype(np.int64)


def _cut_rows(cuts: list[Cut], judged: dict[str, Judged], grids: Mapping[str, BarGrid]) -> Any:
    """The slot rows ``cuts`` cover, each symbol's grid clipped to its listed life."""
    import polars as pl  # only when a slot is unfillable (rare): not before the first request

    parts = []
    for cut in cuts:
        j = judged[cut.symbol]
        grid = grids[j.profile]
        days = grid.trade_date.astype("datetime64[D]")
        lo = max(j.first_day, cut.lo) if cut.lo else j.first_day
        hi = np.datetime64(cut.hi, "D") if cut.hi else np.datetime64(j.last_day, "D") + 1
        keep = (days >= np.datetime64(lo, "D")) & (days < hi)
        keep &= days <= np.datetime64(j.last_day, "D")
        n = int(keep.sum())
        parts.append(pl.DataFrame({
            "symbol": [cut.symbol] * n,
            "ts": pl.Series(grid.ts[keep]).cast(pl.Datetime("us", "UTC")),
            "trade_date": pl.Series(days[keep]).cast(pl.Date),
            "state": ["unfillable"] * n,
            "reason": [cut.reason] * n,
        }, schema=_UNFILLABLE_SCHEMA()))  # fmt: skip
    return pl.concat(parts).sort("symbol", "ts")


def _plan(
    sel: Selection,
    absent: dict[str, Absent],
    vendor: str,
    caps: Capabilities,
    others: Mapping[str, Capabilities] | None,
    depths: dict[str, Depth] | None,
) -> tuple[list[PlannedCall], list[Cut]]:
    """The calls for ``absent`` (by symbol, in symbol order), and the cuts: what the vendor
    cannot serve by its documentation or by the depths its answers showed, each cut covering
    at least one absent slot (in that order of precedence)."""
    what = " ".join(x for x in (sel.dataset, sel.freq) if x)
    cuts: list[Cut] = []
    fetch: dict[str, Absent] = {}
    for symbol, a in absent.items():
        cap = caps.find(sel.dataset, a.exchange, sel.freq)
        if cap is None:
            able = sorted(
                n for n, c in (others or {}).items() if c.serves(sel.dataset, a.exchange, sel.freq)
            )
            hint = f"; vendors that can: {', '.join(able)}" if able else ""
            why = f"{vendor} does not serve {what} for {a.exchange}{hint}"
            cuts.append(Cut(symbol, None, None, why))
            continue
        floor: dt.date | None = None
        if cap.since:
            if (a.days < np.datetime64(cap.since, "D")).any():
                why = f"older than {vendor}'s history ({what} since {cap.since})"
                cuts.append(Cut(symbol, None, cap.since, why))
            floor = cap.since
        # A latest-N-bars window (cap.depth) makes nothing unfillable here: which bars are the
        # latest depends on the vendor's clock and calendar, not ours, and its one call per
        # symbol answers for the whole range anyway, so the answer decides (the adapter
        # records what lies beyond it as unavailable). Regression: slots older than N bars
        # by the local clock were marked unfillable without a request.
        depth = (depths or {}).get(symbol)
        if depth is not None and (floor is None or depth.since > floor):
            beyond = a.days < np.datetime64(depth.since, "D")
            if floor is not None:
                beyond &= a.days >= np.datetime64(floor, "D")
            if beyond.any():
                cuts.append(Cut(symbol, floor, depth.since, depth.why()))
            floor = depth.since
        keep = a.days >= np.datetime64(floor, "D") if floor else np.ones(len(a.days), bool)
        if keep.any():
            fetch[symbol] = Absent(a.exchange, a.days[keep], a.counts[keep])
    return _calls(sel, fetch, caps), cuts


def _runs(a: Absent) -> list[tuple[dt.date, dt.date, int]]:
    """Runs of absent trade dates, broken only by long pauses (a week or more), so a
    full-market fill of ten years yields a few runs per symbol, not one per weekend."""
    breaks = np.flatnonzero(np.diff(a.days) > np.timedelta64(RUN_BREAK_DAYS, "D")) + 1
    bounds = [0, *breaks.tolist(), len(a.days)]
    return [
        (_date(a.days[lo]), _date(a.days[hi - 1]), int(a.counts[lo:hi].sum()))
        for lo, hi in itertools.pairwise(bounds)
    ]


def _date(day: np.datetime64) -> dt.date:
    out = day.astype("datetime64[D]").astype(dt.date)
    assert isinstance(out, dt.date)
    return out


def _calls(sel: Selection, fetch: dict[str, Absent], caps: Capabilities) -> list[PlannedCall]:
    if not fetch:
        return []
    freq = sel.freq or "period"
    ranges: dict[tuple[str | None, dt.date, dt.date], list[tuple[str, int]]] = defaultdict(list)
    for symbol, a in fetch.items():
        cap = caps.find(sel.dataset, a.exchange, sel.freq)
        assert cap is not None
        market = market_of_symbol(symbol)
        current: list[Any] | None = None
        for start, end, slots in _runs(a):
            if current is not None:
                merged = range_requests(cap, freq, current[0], end, market)
                apart = range_requests(cap, freq, current[0], current[1], market) + range_requests(
                    cap, freq, start, end, market
                )
                if merged <= apart:
                    current[1], current[2] = end, current[2] + slots
                    continue
                ranges[(a.exchange, current[0], current[1])].append((symbol, current[2]))
            current = [start, end, slots]
        if current is not None:
            ranges[(a.exchange, current[0], current[1])].append((symbol, current[2]))
    calls = []
    for (exchange, start, end), members in sorted(
        ranges.items(), key=lambda kv: (kv[0][1], kv[0][0] or "")
    ):
        cap = caps.find(sel.dataset, exchange, sel.freq)
        assert cap is not None
        size = max(1, min(cap.symbols_per_call, MAX_SYMBOLS_PER_UNIT))
        for i in range(0, len(members), size):
            chunk = members[i : i + size]
            symbols = tuple(s for s, _ in chunk)
            # A page per call for paging vendors; otherwise about a million bars per call,
            # so memory stays bounded and a killed fill loses little.
            budget = cap.rows_per_call or max(1, MAX_UNIT_BARS // len(symbols))
            windows = _windows(cap, sel.freq, exchange or "", start, end, budget)
            if len(windows) == 1:
                market = market_of_symbol(symbols[0])
                per_symbol_cost = range_requests(cap, freq, start, end, market)
                requests = per_symbol_cost * (len(chunk) if cap.symbols_per_call == 1 else 1)
                calls.append(PlannedCall(symbols, start, end, sum(n for _, n in chunk), requests))
                continue
            for w_start, w_end in windows:
                lo, hi = np.datetime64(w_start, "D"), np.datetime64(w_end, "D")
                n = sum(
                    int(fetch[s].counts[(fetch[s].days >= lo) & (fetch[s].days <= hi)].sum())
                    for s in symbols
                )
                if n:
                    market = market_of_symbol(symbols[0])
                    cost = range_requests(cap, freq, w_start, w_end, market) * (
                        len(symbols) if cap.symbols_per_call == 1 else 1
                    )
                    calls.append(PlannedCall(symbols, w_start, w_end, n, cost))
    return calls


def _windows(
    cap: DatasetCapability,
    freq: str | None,
    exchange: str,
    start: dt.date,
    end: dt.date,
    budget: int,
) -> list[tuple[dt.date, dt.date]]:
    """Cut a range into windows of at most ``budget`` bars (per symbol).

    For a paging vendor the budget is one page: a killed or failed fill loses a page, and
    progress and resume move page by page. A vendor with a span limit (AmazingData: 31 days
    of minute bars a request) gets windows of at most that span, so a call is one request
    (regression: a half-year hole was one call of 6 requests, and a kill lost all it had
    received). Vendors that only serve their latest N bars are not cut (every call would
    return the same N bars)."""
    market = market_of_symbol(f"X.{exchange}")
    if not freq or cap.depth.get(freq) or market is None:
        return [(start, end)]
    return _by_span(_by_bars(market, freq, start, end, budget), cap.span_days_per_call.get(freq))


def _by_span(
    windows: list[tuple[dt.date, dt.date]], span: int | None
) -> list[tuple[dt.date, dt.date]]:
    """Each window cut into windows of at most ``span`` calendar days (as the vendor cuts)."""
    if not span:
        return windows
    out = []
    for first, hi in windows:
        lo = first
        while lo <= hi:
            last = min(hi, lo + dt.timedelta(days=span - 1))
            out.append((lo, last))
            lo = last + dt.timedelta(days=1)
    return out


def _by_bars(
    market: str, freq: str, start: dt.date, end: dt.date, budget: int
) -> list[tuple[dt.date, dt.date]]:
    """``[start, end]`` cut at day boundaries into windows of at most ``budget`` bars."""
    grid = bar_grid(market, freq, start, end)
    if len(grid) <= budget:
        return [(start, end)]
    days, counts = np.unique(grid.trade_date, return_counts=True)
    windows: list[tuple[dt.date, dt.date]] = []
    first = last = days[0].astype(dt.date)
    filled = 0
    for day64, n in zip(days, counts, strict=True):
        day = day64.astype(dt.date)
        if filled and filled + int(n) > budget:
            windows.append((first, last))
            first, filled = day, 0
        filled += int(n)
        last = day
    windows.append((first, last))
    # Contiguous over [start, end]: no calendar day falls between two windows.
    cut = [windows[i][1] for i in range(len(windows) - 1)]
    starts = [start, *(d + dt.timedelta(days=1) for d in cut)]
    return list(zip(starts, [*cut, end], strict=True))
