"""fill-missing: fetch only what detect-missing finds, record what the vendor said, detect again.

1. detect the selection; keep the slots to fetch (``missing``, ``failed``, ``unfillable``, and
   ``confirmed_empty`` with ``--recheck``). When nothing is stored or in the gap ledger for
   the judged symbols of a klines selection, every expected slot is ``missing`` and the plan
   is made from the expectation, without detect and polars (a new symbol's fill reaches its
   first request 0.1-0.15 s sooner; issue 10); its ``before`` report is built from the
   expectation after the run;
2. plan vendor calls from the capability table; what the vendor cannot serve becomes
   ``unfillable`` without a request (``--dry-run`` stops here and prints the plan);
3. run the calls through the shared pipeline (concurrent within the rate governor, validated,
   committed in batches); after each commit the gap ledger records, for slots still absent,
   what the vendor said: answered but empty, failed, or unavailable;
4. detect again: the task's result says how many gaps closed and what is left, by state.

The calls are planned once, by the task's first run, and kept in its resume state: a resumed
fill runs the calls its first run planned that are not done (as a backfill runs its units),
so nothing committed is fetched again, and a hole is not cut anew (a plan made over the holes
a kill left can start a window later and cut a hole into one call more).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from etl.errors import BadInputError
from etl.names import parse_date
from etl.tasks.claims import claim
from etl.tasks.depths import Depth, learn, learned
from etl.tasks.expected import (
    SLOT_BUDGET,
    STATEMENT_DATASETS,
    Selection,
    bar_grids,
    judge,
    nothing_stored,
)
from etl.tasks.items import Item, ItemCounts, classify, count_items
from etl.tasks.ledger import record_states
from etl.tasks.outcomes import ledger_outcomes
from etl.tasks.pipeline import Fetch, Fetched, PipelineResult, Unit, run_units
from etl.tasks.plan import FillPlan, PlannedCall, plan_all_absent, plan_fill
from etl.tasks.records import TaskRecord
from etl.tasks.runner import open_run
from etl.tasks.runtime import Runtime
from etl.vendors.base import Capabilities, Paging

if TYPE_CHECKING:
    import polars as pl

    from etl.tasks.detect import DetectReport

__all__ = ["fill_missing", "plan_only", "selection_from_params"]

# Each answer is spooled as it arrives (the pipeline's ``spool``), and units are planned one
# vendor request each (a page, a span-limited window): a killed fill loses only the calls in
# flight, and a resume asks for nothing it had already received.
FILL_FLUSH_ROWS = 1
FILL_FLUSH_SECONDS = 0.0


def selection_from_params(params: dict[str, Any]) -> Selection:
    return Selection(
        dataset=params["dataset"],
        start=parse_date(params["start"]),
        end=parse_date(params["end"]),
        freq=params.get("freq"),
        symbols=tuple(params.get("symbols") or ()),
        market=params.get("market"),
    )


def _to_fetch(report: DetectReport, recheck: bool) -> pl.DataFrame:
    import polars as pl  # detect's report is polars already

    states = ["missing", "failed", "unfillable", *(["confirmed_empty"] if recheck else [])]
    return report.slots.filter(pl.col("state").is_in(states))


def check_vendor(rt: Runtime, vendor: str, sel: Selection) -> None:
    caps = rt.capabilities()
    if vendor not in caps:
        raise BadInputError(f"unknown vendor {vendor!r}: use one of {', '.join(caps)}")
    if not caps[vendor].serves(sel.dataset):
        able = sorted(n for n, c in caps.items() if c.serves(sel.dataset))
        raise BadInputError(
            f"{vendor} does not serve {sel.dataset}; vendors that can: {', '.join(able) or 'none'}"
        )


def plan_only(rt: Runtime, vendor: str, sel: Selection, *, recheck: bool = False) -> dict[str, Any]:
    """``--dry-run``: the plan, with nothing fetched and nothing written."""
    from etl.tasks.detect import detect

    check_vendor(rt, vendor, sel)
    report = detect(rt.root, sel, rt.clock(), keep_slots=True)
    caps = rt.capabilities()
    plan = plan_fill(
        sel, _to_fetch(report, recheck), vendor, caps[vendor], rt.clock(), others=caps,
        depths=None if recheck else learned(rt.root, vendor, sel.freq),
    )  # fmt: skip
    doc = plan.summary(caps[vendor], rt.settings.vendor(vendor).rate)
    doc.update({"dry_run": True, "selection": sel.params(), "states_before": report.state_counts()})
    return doc


async def fill_missing(
    rt: Runtime, vendor: str, sel: Selection, *, recheck: bool = False
) -> TaskRecord:
    from etl.tasks import engine

    return await engine.start(rt, engine.TaskSpec.fill(vendor, sel, recheck=recheck))


async def execute(
    rt: Runtime, record: TaskRecord, vendor: str, sel: Selection, recheck: bool
) -> None:
    with open_run(rt.store, record, clock=rt.clock, ui=rt.ui()) as run:
        started = rt.clock()
        caps = rt.capabilities()
        depths = None if recheck else learned(rt.root, vendor, sel.freq)
        fast = _plan_all_absent(rt, run.id, vendor, sel, caps, depths)
        before: DetectReport | None = None
        if fast is None:
            # detect imports polars: a fill of what nothing is stored for plans without it,
            # and reaches its first request 0.1-0.15 s sooner (issue 10, start-up)
            from etl.tasks import detect as detecting

            before = detecting.detect(rt.root, sel, started, keep_slots=True)
            symbols = [*before.judged, *(u["symbol"] for u in before.unjudged)]
        else:
            plan, symbols = fast
        with claim(rt.root, run.id, sel, symbols):
            if before is not None:
                plan = plan_fill(
                    sel, _to_fetch(before, recheck), vendor, caps[vendor], rt.clock(),
                    others=caps, depths=depths,
                )  # fmt: skip
            if plan.unfillable_count:  # (the lake's writer loads only when it writes)
                record_states(
                    rt.lake, sel, plan.unfillable, vendor=vendor, task_id=run.id, now=rt.clock()
                )
            run.record.total_count = len(symbols)
            run.note(f"{plan.requests} requests planned for {plan.slots} slots")
            label = f"fill:{sel.dataset}:{sel.freq}"
            units = [Unit(c.symbols, c.start, c.end, label=label) for c in _calls(rt, run.id, plan)]
            adapter = rt.adapter(vendor)
            sent = adapter.requests_sent()
            with run.stop_signals(asyncio.get_running_loop()):
                result = await run_units(
                    rt,
                    run,
                    sel.dataset,
                    units,
                    _fetcher(rt, vendor, sel),
                    concurrency=caps[vendor].rate.in_flight or 2,
                    outcomes=ledger_outcomes(rt, vendor, sel, run.id),
                    flush_rows=FILL_FLUSH_ROWS,
                    flush_seconds=FILL_FLUSH_SECONDS,
                    pace=adapter.pace,  # as many calls at once as keep the rate busy
                    spool=True,  # an answer is safe once received, before its commit
                )
            result.requests = adapter.requests_sent() - sent  # all it sent
            if sel.dataset == "klines":  # what the answers showed of the vendor's depth
                learn(rt.root, vendor, sel.freq, result.unavailable, result.answered, rt.clock())
        from etl.tasks import detect as detecting

        after = detecting.detect(rt.root, sel, rt.clock(), keep_slots=True)
        if before is None:  # every expected slot was missing: not what the lake holds now
            before = detecting.all_absent(rt.root, sel, started)
        _summarise(run.record, plan, before, after, result.requests, caps[vendor], rt, vendor)
        run.record.items = _items(before, after, units, result).as_dict()


def _plan_all_absent(
    rt: Runtime,
    task_id: int,
    vendor: str,
    sel: Selection,
    caps: Mapping[str, Capabilities],
    depths: dict[str, Depth] | None,
) -> tuple[FillPlan, list[str]] | None:
    """(the plan, the selection's symbols) when nothing is stored or in the gap ledger for
    the judged symbols of a klines selection (every expected slot is absent and
    ``missing``: what detect would find, known from the expectation alone), planned without
    polars; ``None`` otherwise, and for a resumed run that kept its first run's plan (the
    lake holds what it committed). Bounded as detect's own fast path is (one chunk)."""
    if sel.dataset != "klines" or rt.store.load_plan(task_id) is not None:
        return None
    judged, unjudged = judge(rt.root, sel)
    symbols = [j.symbol for j in judged]
    if not nothing_stored(rt.root, sel, symbols):
        return None
    grids, _ = bar_grids(rt.root, sorted({j.profile for j in judged}), sel)
    if sum(len(grids[j.profile]) for j in judged) > SLOT_BUDGET:
        return None
    plan = plan_all_absent(sel, judged, grids, vendor, caps[vendor], others=caps, depths=depths)
    return plan, [*symbols, *(u["symbol"] for u in unjudged)]


def _calls(rt: Runtime, task_id: int, plan: FillPlan) -> list[PlannedCall]:
    """The calls the task's first run planned (kept beside its record), else ``plan``'s,
    kept for the runs that resume it."""
    kept = rt.store.load_plan(task_id)
    if kept is not None:
        day = dt.date.fromisoformat
        return [PlannedCall(tuple(s), day(a), day(b), 0, 0) for s, a, b in kept]
    calls = [[list(c.symbols), c.start.isoformat(), c.end.isoformat()] for c in plan.calls]
    rt.store.save_plan(task_id, calls)
    return plan.calls


def _fetcher(rt: Runtime, vendor: str, sel: Selection) -> Fetch:
    adapter = rt.adapter(vendor)

    async def fetch(unit: Unit, _paging: Paging) -> Fetched:
        # Fill calls are planned about a page each: nothing to gain from following pages.
        if sel.dataset == "klines":
            assert sel.freq is not None
            batch = await adapter.klines(list(unit.symbols), sel.freq, unit.start, unit.end)
            from etl.normalize import validate_klines  # polars: once answered, not before

            checked = validate_klines(
                batch.table, freq=sel.freq, start=unit.start, end=unit.end, now=rt.clock()
            )
            return Fetched(
                checked.frame,
                checked.issues,
                list(batch.failures),
                list(batch.unavailable),
                list(batch.answered),
                batch.requests,
            )
        if sel.dataset in STATEMENT_DATASETS:
            table = await adapter.statements(sel.dataset, list(unit.symbols), unit.start, unit.end)
            from etl.normalize import validate  # polars: once answered, not before

            checked = validate(sel.dataset, table)
            # A statements answer covers every symbol asked for over the range.
            from etl.vendors.base import Span

            spans = [Span(s, unit.start, unit.end) for s in unit.symbols]
            return Fetched(checked.frame, checked.issues, answered=spans, requests=1)
        raise BadInputError(f"fill-missing does not handle {sel.dataset}")

    return fetch


def _summarise(
    record: TaskRecord,
    plan: FillPlan,
    before: DetectReport,
    after: DetectReport,
    requests: int,
    caps: Any,
    rt: Runtime,
    vendor: str,
) -> None:
    open_before = before.state_counts()
    open_after = after.state_counts()
    to_fetch_before = sum(open_before[s] for s in ("missing", "failed", "unfillable"))
    to_fetch_after = sum(open_after[s] for s in ("missing", "failed", "unfillable"))
    # A symbol is ok when everything the vendor can serve was filled: slots its answers put
    # out of reach (unfillable) are reported with their reason (left_reasons), not counted
    # as a failure of the task (regression: a healthy job read "0/5 ok, 0 errors").
    incomplete = set(after.symbols_in(("missing", "failed")))
    record.success_count = len([s for s in before.judged if s not in incomplete])
    record.result = {
        "requests": requests,
        "planned": plan.summary(caps, rt.settings.vendor(vendor).rate) | {"plan": None},
        "gaps_closed": max(to_fetch_before - to_fetch_after, 0),
        "before": open_before,
        "left": open_after,
        "unjudged": len(after.unjudged),
        # why what is left is left, so the summary can say it (not only the gap ledger)
        "left_reasons": _reasons(after),
    }


def _absent(report: DetectReport) -> dict[str, dict[str, int]]:
    """symbol -> state -> absent slots."""
    return {str(r.pop("symbol")): r for r in report.per_symbol.to_dicts()}


def _items(
    before: DetectReport, after: DetectReport, units: list[Unit], result: PipelineResult
) -> ItemCounts:
    """Each symbol of the selection in its category. A symbol with nothing to fetch is
    done; one the calendar cannot judge is unavailable (the reason says what to sync).
    What the vendor put out of reach counts only when this fill found it (more slots
    unavailable than before): a scheduled fill is not flagged every run for slots an
    earlier answer already settled."""
    was, now = _absent(before), _absent(after)
    held: dict[str, list[str]] = {}
    for unit in units:
        for symbol in unit.symbols:
            held.setdefault(symbol, []).append(unit.id)
    import polars as pl  # the reports are polars already

    why: dict[str, list[str]] = {}
    if after.slots.height:
        unfillable = after.slots.filter(pl.col("state") == "unfillable")
        for symbol, reason in unfillable.select("symbol", "reason").unique().iter_rows():
            why.setdefault(str(symbol), []).append(classify(str(reason or "")))
    items: dict[str, Item] = {}
    for symbol in before.judged:
        b, a = was.get(symbol, {}), now.get(symbol, {})
        ids = held.get(symbol, [])
        done = [i for i in ids if i in result.done]
        filled = sum(b.values()) > sum(a.values())
        found = a.get("unfillable", 0) > b.get("unfillable", 0)
        finished = len(done) == len(ids)
        items[symbol] = Item(
            finished=finished,
            started=filled or (bool(done) and not finished),  # out of reach, nothing stored:
            # unavailable, not partly done
            failed=symbol in result.failed_symbols,
            left=tuple(why.get(symbol, ())) if found else (),
        )
    counts = count_items("symbols", items)
    for _ in before.unjudged:
        counts.total += 1
        counts.add("unavailable", "no calendar or instruments to judge it")
    return counts


def _reasons(report: DetectReport) -> list[dict[str, Any]]:
    """The slots still open by (state, reason), largest first, at most ten."""
    counts = report.reasons.select("state", "reason", "slots", "symbols")
    return counts.sort("slots", "state", descending=[True, False]).head(10).to_dicts()
