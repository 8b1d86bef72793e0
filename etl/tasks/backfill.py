"""``etl backfill``: fetch a dataset for symbols over a range and store it (a resumable task).

Planning asks the vendor's capability table first, so a request the vendor cannot serve is
refused before anything is fetched. Units keep memory bounded: a few symbols at a time, and
intraday ranges split so that one unit holds about a million bars at most.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from etl.calendars.markets import market_of_symbol
from etl.errors import BadInputError
from etl.lake.parquet_io import may_hold
from etl.names import parse_date
from etl.tasks.costs import bars_between, range_requests, seconds_at
from etl.tasks.depths import learn, learned
from etl.tasks.expected import Selection, expected_days, stored_files
from etl.tasks.items import Item, ItemCounts, classify, count_items
from etl.tasks.pipeline import Fetch, Fetched, PageCheck, PipelineResult, Unit, run_units
from etl.tasks.records import TaskRecord
from etl.tasks.runner import TaskRun, open_run
from etl.tasks.runtime import Runtime
from etl.vendors.base import ADJ_FACTORS_SINCE, DatasetCapability, Paging, Unavailable

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

    from etl.normalize import Issue
    from etl.tasks.engine import TaskSpec

__all__ = ["BackfillRequest", "backfill", "plan_backfill", "plan_units"]

STATEMENTS = ("balance_sheet", "income", "cash_flow")
SNAPSHOTS = ("future_varieties", "main_contracts")
MAX_UNIT_BARS = 1_000_000
MAX_UNIT_SYMBOLS = 50
_BARS_PER_DAY = {"1m": 1440, "5m": 288, "15m": 96, "30m": 48, "1h": 24, "1d": 1, "1w": 1, "1M": 1}


@dataclass(frozen=True)
class BackfillRequest:
    vendor: str
    dataset: str
    symbols: tuple[str, ...] = ()
    freq: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    refetch: bool = False  # klines: fetch bars the lake already holds again
    # klines: bars ending after this instant are forming (the recorder's stream time), not
    # only those ending after the host's clock (see TaskSpec.closed_by)
    closed_by: dt.datetime | None = None

    def params(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "dataset": self.dataset,
            "freq": self.freq,
            "symbols": list(self.symbols),
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "refetch": self.refetch,
        }

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> BackfillRequest:
        return cls(
            vendor=params["vendor"],
            dataset=params["dataset"],
            symbols=tuple(params.get("symbols") or ()),
            freq=params.get("freq"),
            start=parse_date(params["start"]) if params.get("start") else None,
            end=parse_date(params["end"]) if params.get("end") else None,
            refetch=bool(params.get("refetch")),
        )


def check_request(rt: Runtime, req: BackfillRequest) -> list[DatasetCapability]:
    """Bad input and capability errors, raised before any fetch (exit 2)."""
    caps = rt.capabilities()
    if req.vendor not in caps:
        raise BadInputError(f"unknown vendor {req.vendor!r}: use one of {', '.join(caps)}")
    table = caps[req.vendor]
    if req.dataset == "klines":
        if req.freq is None:
            raise BadInputError("--freq is required for klines (1m 5m 15m 30m 1h 1d 1w 1M)")
        if req.start is None or req.end is None:
            raise BadInputError("--start and --end are required for klines")
    elif req.freq is not None:
        raise BadInputError(f"--freq applies to klines only, not {req.dataset}")
    if req.dataset in ("klines", *STATEMENTS, "adj_factors") and not req.symbols:
        raise BadInputError(f"--symbols is required for {req.dataset}")
    if req.dataset == "adj_factors" and (req.start is None or req.end is None):
        raise BadInputError(
            "--start and --end (the ex-dates to fetch) are required for adj_factors"
        )
    if req.dataset in ("instruments", "calendar"):
        raise BadInputError(f"use `etl {req.dataset} sync` for {req.dataset}, not backfill")
    found = []
    exchanges: list[str | None] = [*sorted({s.rsplit(".", 1)[1] for s in req.symbols})] or [None]
    for exchange in exchanges:
        cap = table.require(req.dataset, exchange, req.freq, others=caps)
        if cap.since and req.end and req.end < cap.since:
            raise BadInputError(
                f"{req.vendor} serves {req.dataset} from {cap.since} on; --end {req.end} is older"
            )
        found.append(cap)
    return found


def plan_units(req: BackfillRequest, cap: DatasetCapability) -> list[Unit]:
    if req.dataset in SNAPSHOTS:
        return [Unit((), None, None, label=req.dataset)]
    per_call = max(1, min(cap.symbols_per_call, MAX_UNIT_SYMBOLS))
    groups: dict[str, list[str]] = {}
    for symbol in req.symbols:  # one market per unit keeps each call's calendar simple
        groups.setdefault(symbol.rsplit(".", 1)[1], []).append(symbol)
    units = []
    for symbols in groups.values():
        for i in range(0, len(symbols), per_call):
            chunk = tuple(symbols[i : i + per_call])
            for start, end in _windows(req, cap, len(chunk)):
                units.append(Unit(chunk, start, end, label=f"{req.dataset}:{req.freq or ''}"))
    return units


def _windows(req: BackfillRequest, cap: DatasetCapability, n: int) -> list[tuple[Any, Any]]:
    if req.dataset != "klines" or req.start is None or req.end is None:
        return [(req.start, req.end)]
    assert req.freq is not None
    days = (req.end - req.start).days + 1
    per_unit = max(1, math.floor(MAX_UNIT_BARS / (n * _BARS_PER_DAY[req.freq])))
    span = cap.span_days_per_call.get(req.freq)
    if span:
        per_unit = min(per_unit, span)
    if days <= per_unit:
        return [(req.start, req.end)]
    out = []
    cur = req.start
    while cur <= req.end:
        last = min(req.end, cur + dt.timedelta(days=per_unit - 1))
        out.append((cur, last))
        cur = last + dt.timedelta(days=1)
    return out


def _fetcher(rt: Runtime, req: BackfillRequest) -> Fetch:
    adapter = rt.adapter(req.vendor)

    async def fetch(unit: Unit, paging: Paging) -> Fetched:
        now = rt.clock()
        if req.dataset == "klines":
            assert req.freq is not None
            batch = await adapter.klines(
                list(unit.symbols),
                req.freq,
                unit.start,
                unit.end,
                paging=paging,
                closed_by=req.closed_by,
            )
            if req.closed_by is not None:  # the vendor's present, by the recorder's stream
                now = min(now, req.closed_by)
            from etl.normalize import validate_klines  # with polars, once answered: _page_check

            checked = validate_klines(
                batch.table, freq=req.freq, start=unit.start, end=unit.end, now=now
            )
            return Fetched(
                checked.frame,
                checked.issues,
                list(batch.failures),
                list(batch.unavailable),
                list(batch.answered),
                batch.requests,
            )
        if req.dataset in STATEMENTS:
            table = await adapter.statements(req.dataset, list(unit.symbols), unit.start, unit.end)
        elif req.dataset == "adj_factors":
            # Factors are cumulative: every ex-date since listing is stored, whatever --start
            # says, so that the factor before a symbol's first stored ex-date is 1.0 and an
            # adjusted series needs nothing the lake lacks (they are sparse: one call each).
            assert unit.end is not None
            table = await adapter.adj_factors(list(unit.symbols), ADJ_FACTORS_SINCE, unit.end)
        elif req.dataset == "future_varieties":
            table = await adapter.future_varieties()
        elif req.dataset == "main_contracts":
            table = await adapter.main_contracts()
        else:
            raise BadInputError(f"backfill does not handle {req.dataset}")
        from etl.normalize import validate

        checked = validate(req.dataset, table)
        return Fetched(checked.frame, checked.issues, requests=1)

    return fetch


def _page_check(rt: Runtime, req: BackfillRequest) -> PageCheck:
    """Validate one page a paging vendor hands over, as its unit's rows would be.

    The validator (and polars) is imported when an answer is checked, not with this module:
    the first request does not wait for it (issue 10, start-up)."""

    def check(unit: Unit, table: pa.Table) -> tuple[pl.DataFrame, list[Issue]]:
        from etl.normalize import validate_klines

        assert req.freq is not None
        now = rt.clock()
        if req.closed_by is not None:  # as the unit's own rows are judged
            now = min(now, req.closed_by)
        checked = validate_klines(table, freq=req.freq, start=unit.start, end=unit.end, now=now)
        return checked.frame, checked.issues

    return check


def _units(
    req: BackfillRequest, caps: list[DatasetCapability]
) -> list[tuple[Unit, DatasetCapability]]:
    """Every unit of ``req`` once, with the capability (market) it is fetched under."""
    units: list[tuple[Unit, DatasetCapability]] = []
    seen: set[str] = set()
    for cap in caps:
        exch = sorted(cap.exchanges)
        sub = (
            req
            if req.dataset in SNAPSHOTS
            else BackfillRequest(
                req.vendor,
                req.dataset,
                tuple(s for s in req.symbols if s.rsplit(".", 1)[1] in exch),
                req.freq,
                req.start,
                req.end,
            )
        )
        for unit in plan_units(sub, cap):
            if unit.id not in seen:
                seen.add(unit.id)
                units.append((unit, cap))
    return units


def _unit_cost(req: BackfillRequest, unit: Unit, cap: DatasetCapability) -> tuple[int, int | None]:
    """(requests, rows expected) of one unit: kline pages and span limits counted on the
    market's calendar; one call per symbol group otherwise (rows unknown before asking)."""
    per_call = 1 if cap.symbols_per_call > 1 else max(1, len(unit.symbols))
    if req.dataset != "klines" or unit.start is None or unit.end is None:
        return per_call, None
    assert req.freq is not None
    market = market_of_symbol(unit.symbols[0]) if unit.symbols else None
    requests = range_requests(cap, req.freq, unit.start, unit.end, market) * per_call
    bars = bars_between(market, req.freq, unit.start, unit.end) if market else 0
    return requests, bars * len(unit.symbols)


def plan_backfill(rt: Runtime, req: BackfillRequest) -> dict[str, Any]:
    """``backfill --dry-run``: the calls, requests, bars and seconds at the vendor's rate;
    bad input raises first, and nothing is fetched or written."""
    caps = check_request(rt, req)
    table = rt.capabilities()[req.vendor]
    plan = []
    requests = rows = 0
    pairs = _units(req, caps)
    beyond: list[Unavailable] = []
    if req.dataset == "klines" and not req.refetch:  # as the run will: stored ranges skipped
        kept, beyond = _within_depth(rt, req, [u for u, _ in pairs])
        cap_of = {u.symbols: c for u, c in pairs}
        keep = {u.id for u in _still_needed(rt, req, kept)}
        pairs = [(u, cap_of[u.symbols]) for u in kept if u.id in keep]
    for unit, cap in pairs:
        n, bars = _unit_cost(req, unit, cap)
        requests += n
        rows += bars or 0
        plan.append({
            "symbols": list(unit.symbols),
            "start": unit.start.isoformat() if unit.start else None,
            "end": unit.end.isoformat() if unit.end else None,
            "rows_expected": bars,
            "requests": n,
        })  # fmt: skip
    per_second, seconds = seconds_at(requests, table, rt.settings.vendor(req.vendor).rate)
    return {
        "dry_run": True,
        "vendor": req.vendor,
        "selection": {k: v for k, v in req.params().items() if k != "vendor"},
        "calls": len(plan),
        "requests": requests,
        "rows_expected": rows if req.dataset == "klines" else None,
        "quota_used": requests,
        "seconds_at_rate_limit": round(seconds, 1),
        "rate_limit_per_second": per_second,
        "plan": plan[:1000],
        "unavailable": [_unavailable_doc(u) for u in beyond[:1000]],
    }


def _unavailable_doc(u: Unavailable) -> dict[str, Any]:
    return {"symbol": u.symbol, "start": u.start.isoformat(), "end": u.end.isoformat(),
            "reason": u.reason}  # fmt: skip


def _within_depth(
    rt: Runtime, req: BackfillRequest, units: list[Unit]
) -> tuple[list[Unit], list[Unavailable]]:
    """Units cut to the depths the vendor's answers showed (:mod:`etl.tasks.depths`): a
    unit wholly before a symbol's learned depth is not asked; one that straddles it starts
    there. What is cut is unavailable, with the vendor's answer as the reason."""
    depths = learned(rt.root, req.vendor, req.freq)
    if not depths:
        return units, []
    kept: list[Unit] = []
    beyond: list[Unavailable] = []
    for unit in units:
        known = [depths[s] for s in unit.symbols if s in depths]
        if len(unit.symbols) != 1 or not known or unit.start is None or unit.end is None:
            kept.append(unit)  # depths are per symbol: shared calls are asked as planned
            continue
        depth = known[0]
        if unit.start >= depth.since:
            kept.append(unit)
            continue
        last = min(unit.end, depth.since - dt.timedelta(days=1))
        beyond.append(Unavailable(unit.symbols[0], unit.start, last, depth.why()))
        if depth.since <= unit.end:
            kept.append(Unit(unit.symbols, depth.since, unit.end, unit.label))
    return kept, beyond


def _still_needed(rt: Runtime, req: BackfillRequest, units: list[Unit]) -> list[Unit]:
    """The kline units that hold a slot the lake lacks, whatever its state (a rerun asks
    again for bars a vendor left out), or a symbol no calendar judges: a backfill over a
    stored, complete range asks the vendor nothing (``--refetch`` fetches it all again).
    Regression: rerunning a finished backfill made every request again."""
    assert req.start is not None and req.end is not None
    sel = Selection("klines", req.start, req.end, req.freq, req.symbols)
    unjudged, days = _absent_days(rt, sel)

    def needed(unit: Unit) -> bool:
        for symbol in unit.symbols:
            if symbol in unjudged:
                return True
            found = days.get(symbol)
            if found is None or unit.start is None or unit.end is None:
                continue
            lo = np.searchsorted(found, np.datetime64(unit.start), "left")
            hi = np.searchsorted(found, np.datetime64(unit.end), "right")
            if hi > lo:
                return True
        return False

    return [u for u in units if needed(u)]


def _absent_days(rt: Runtime, sel: Selection) -> tuple[set[str], dict[str, np.ndarray]]:
    """(the symbols no calendar judges, symbol -> sorted trade dates of its absent slots).

    When no file of the range's partitions can hold a row of the selection's symbols (their
    footers' statistics leave them out: a new symbol, a fresh data root), every expected
    slot is absent, and the expectation alone answers: no detect, and no DuckDB, on the way
    to the first request (issue 10, start-up). Otherwise detect-missing decides."""
    if not any(may_hold(f, "symbol", sel.symbols) for f in stored_files(rt.root, sel)):
        unjudged, expected = expected_days(rt.root, sel)
        return {u["symbol"] for u in unjudged}, expected
    from etl.tasks.detect import detect

    report = detect(rt.root, sel, rt.clock(), keep_slots=True)
    days: dict[str, np.ndarray] = {
        str(key[0]): np.sort(part["trade_date"].to_numpy())
        for key, part in report.slots.partition_by("symbol", as_dict=True).items()
    }
    return {str(u["symbol"]) for u in report.unjudged}, days


async def _run(rt: Runtime, run: TaskRun, req: BackfillRequest) -> None:
    pairs = _units(req, check_request(rt, req))
    cap_of = {unit.symbols: cap for unit, cap in pairs}  # a unit cut to a depth keeps its
    units = [unit for unit, _ in pairs]  # symbols, so its market's capability
    beyond: list[Unavailable] = []
    if req.dataset == "klines" and not req.refetch:
        units, beyond = _within_depth(rt, req, units)
        units = _still_needed(rt, req, units)
    run.record.total_count = len(req.symbols) or 1
    rate = rt.capabilities()[req.vendor].rate
    concurrency = rate.in_flight or 2
    adapter = rt.adapter(req.vendor)
    sent = adapter.requests_sent()
    with run.stop_signals(_loop()):
        result = await run_units(
            rt,
            run,
            req.dataset,
            units,
            _fetcher(rt, req),
            concurrency=concurrency,
            page_check=_page_check(rt, req) if req.dataset == "klines" else None,
            flush_rows=1,  # each answer (page) stored before the unit asks for more
            pace=adapter.pace,  # as many units at once as keep the rate busy, no more
            # the progress counts requests (pages), as --dry-run estimates them
            weight=lambda unit: _unit_cost(req, unit, cap_of[unit.symbols])[0],
        )
    # every request the adapter sent for this run (pages, logins, retries), not one per call
    result.requests = adapter.requests_sent() - sent
    if req.dataset == "klines":  # what the answers showed of the vendor's depth
        learn(rt.root, req.vendor, req.freq, result.unavailable, result.answered, rt.clock())
    result.unavailable = beyond + result.unavailable
    # A symbol is a success only once every unit holding it is done and none failed: a run
    # stopped after 4 of 257 symbols says 4/257 (regression: it said 257/257 ok).
    unfinished = {s for u in units if u.id not in result.done for s in u.symbols}
    failed = result.failed_symbols
    if req.symbols:
        run.record.success_count = sum(
            1 for s in dict.fromkeys(req.symbols) if s not in unfinished and s not in failed
        )
    else:
        clean = not failed and not run.record.error_count
        run.record.success_count = int(clean and all(u.id in result.done for u in units))
    run.record.items = _items(req, units, result, bool(run.record.error_count)).as_dict()
    run.record.result = {
        "requests": result.requests,
        "repaired_rows": result.repaired,
        "dropped_rows": result.dropped,
        "unavailable": [
            {
                "symbol": u.symbol,
                "start": u.start.isoformat(),
                "end": u.end.isoformat(),
                "reason": u.reason,
            }
            for u in result.unavailable[:1000]
        ],
        "markets": sorted({m for s in req.symbols if (m := market_of_symbol(s))}),
    }


def _items(
    req: BackfillRequest, units: list[Unit], result: PipelineResult, errors: bool
) -> ItemCounts:
    """Each symbol asked for (or the one snapshot or dataset) in its category: finished
    when every unit holding it is done, started when rows of it were committed by any run
    (or, while unfinished, a unit of it is done), with the reasons the vendor left ranges
    out of reach."""
    if not req.symbols:
        finished = all(u.id in result.done for u in units)
        one = Item(finished, bool(result.done), errors or bool(result.failed_symbols))
        return count_items(req.dataset, {req.dataset: one})
    held: dict[str, list[str]] = {}
    for unit in units:
        for symbol in unit.symbols:
            held.setdefault(symbol, []).append(unit.id)
    left: dict[str, list[str]] = {}
    for u in result.unavailable:
        left.setdefault(u.symbol, []).append(classify(u.reason))
    items = {}
    for symbol in dict.fromkeys(req.symbols):
        ids = held.get(symbol, [])
        done = [i for i in ids if i in result.done]
        finished = len(done) == len(ids)
        items[symbol] = Item(
            finished=finished,
            # a finished symbol is partly done only if rows of it were stored: one the
            # vendor left wholly out of reach is unavailable (regression: "1 partly done
            # (beyond depth 1); 0 rows written")
            started=symbol in result.touched or (bool(done) and not finished),
            failed=symbol in result.failed_symbols,
            left=tuple(left.get(symbol, ())),
        )
    return count_items("symbols", items)


def _loop() -> Any:
    import asyncio

    return asyncio.get_running_loop()


def spec_of(req: BackfillRequest) -> TaskSpec:
    """The engine's spec for a backfill request."""
    from etl.tasks.engine import TaskSpec

    if req.dataset in SNAPSHOTS:
        return TaskSpec.snapshot(req.vendor, req.dataset)
    if req.start is None or req.end is None:
        raise BadInputError(f"--start and --end are required for {req.dataset}")
    sel = Selection(req.dataset, req.start, req.end, req.freq, req.symbols)
    return TaskSpec.backfill(req.vendor, sel, refetch=req.refetch, closed_by=req.closed_by)


def request_of(spec: TaskSpec) -> BackfillRequest:
    sel = spec.selection
    if sel is None:
        return BackfillRequest(spec.vendor, spec.dataset)
    return BackfillRequest(
        spec.vendor, sel.dataset, sel.symbols, sel.freq, sel.start, sel.end, spec.refetch,
        spec.closed_by,
    )  # fmt: skip


async def backfill(rt: Runtime, req: BackfillRequest) -> TaskRecord:
    """Check, then run a backfill as a new task; returns its final record."""
    from etl.tasks import engine

    return await engine.start(rt, spec_of(req))


async def execute(rt: Runtime, record: TaskRecord, req: BackfillRequest) -> None:
    with open_run(rt.store, record, clock=rt.clock, ui=rt.ui()) as run:
        await _run(rt, run, req)
