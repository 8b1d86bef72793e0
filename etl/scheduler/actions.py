"""A job's units of work, and one vendor's attempt at one unit through the task functions.

The scheduler is a thin edge: every action is the same task function a command calls
(``fill_missing``, ``backfill``, ``sync_instruments``, ``sync_calendar``), so a job's task is
an ordinary task record that ``etl tasks show/resume`` know. Only ``compact`` had no task;
it gets one here, because each scheduled run must leave a record.

A job over several markets runs one task per market (a fill's selection is one market), so a
vendor chain can stop early for one market and go on for another. What a vendor *left* for
the next one in the chain:

- fill-missing: the slots still ``missing``, ``failed`` or ``unfillable`` after it (the next
  fill detects again, and asks for exactly those);
- backfill: the symbols it does not serve, plus those that failed;
- the others: the whole unit, when the task failed or had errors.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from etl import schema as schemas
from etl.names import MARKETS
from etl.scheduler.spec import SNAPSHOTS, JobSpec
from etl.scheduler.window import resolve_window
from etl.tasks.backfill import BackfillRequest, backfill
from etl.tasks.expected import Selection, market_symbols
from etl.tasks.fill import fill_missing
from etl.tasks.records import TaskRecord
from etl.tasks.runner import open_run
from etl.tasks.runtime import Runtime
from etl.tasks.sync import sync_calendar, sync_instruments
from etl.timefmt import iso_utc
from etl.vendors.base import Capabilities

__all__ = ["Unit", "attempt", "leftover", "plan_units", "record_task", "served"]

OPEN_STATES = ("missing", "failed", "unfillable")


@dataclass(frozen=True)
class Unit:
    """One task's worth of a job: one market, or the job's symbols, over the window."""

    label: str
    market: str | None = None
    symbols: tuple[str, ...] = ()
    start: dt.date | None = None
    end: dt.date | None = None

    def exchanges(self) -> tuple[str | None, ...]:
        if self.market:
            return (self.market,)
        return tuple(dict.fromkeys(s.rsplit(".", 1)[1] for s in self.symbols)) or (None,)


def _since(job: JobSpec, caps: Mapping[str, Capabilities]) -> dt.date | None:
    dates = []
    for vendor in job.vendors:
        for exchange in job.exchanges or (None,):
            cap = caps[vendor].find(job.dataset or "", exchange, job.freq)
            if cap is not None and cap.since is not None:
                dates.append(cap.since)
    return min(dates) if dates else None


def plan_units(job: JobSpec, caps: Mapping[str, Capabilities], today: dt.date) -> list[Unit]:
    """The job's units for a run on ``today`` (its window resolved now)."""
    start = end = None
    if job.window is not None:
        calendars = tuple(e for e in job.exchanges if e in MARKETS)
        start, end = resolve_window(
            job.window, today=today, markets=calendars, since=_since(job, caps)
        )
    if job.markets:
        return [Unit(m, market=m, start=start, end=end) for m in job.markets]
    if job.symbols:
        return [Unit("symbols", symbols=job.symbols, start=start, end=end)]
    return [Unit(job.dataset or "lake", start=start, end=end)]


def served(job: JobSpec, caps: Capabilities, unit: Unit) -> bool:
    """Whether the vendor serves any part of the unit (else it is skipped in the chain)."""
    if job.action == "compact":
        return True
    return any(caps.serves(job.dataset or "", e, job.freq) for e in unit.exchanges())


def resolve_symbols(rt: Runtime, job: JobSpec, unit: Unit) -> Unit:
    """A backfill over a market needs its symbols: the market's instruments in the lake. A
    fill over a market reads them itself; both fail first, as bad input naming the sync to
    run with the job's own vendor, when the lake has none (a fresh data root)."""
    if job.action not in ("backfill", "fill-missing") or job.dataset in SNAPSHOTS:
        return unit
    if not unit.market:
        return unit
    assert job.dataset is not None and unit.start is not None and unit.end is not None
    sel = Selection(job.dataset, unit.start, unit.end, job.freq, (), unit.market)
    symbols = tuple(market_symbols(rt.root, sel, vendor=job.vendors[0]))
    return unit if job.action == "fill-missing" else replace(unit, symbols=symbols)


async def attempt(rt: Runtime, job: JobSpec, vendor: str, unit: Unit) -> TaskRecord:
    """Run one vendor's task for the unit (a new task record, tagged with the job)."""
    action, dataset = job.action, job.dataset or ""
    if action == "fill-missing":
        assert unit.start is not None and unit.end is not None
        sel = Selection(dataset, unit.start, unit.end, job.freq, unit.symbols, unit.market)
        return await fill_missing(rt, vendor, sel, recheck=job.recheck)
    if action in ("backfill", "main-contracts-snapshot"):
        caps = rt.capabilities()[vendor]
        symbols = tuple(
            s for s in unit.symbols if caps.serves(dataset, s.rsplit(".", 1)[1], job.freq)
        )
        req = BackfillRequest(vendor, dataset, symbols, job.freq, unit.start, unit.end)
        return await backfill(rt, req)
    if action == "instruments-sync":
        return await sync_instruments(rt, vendor, unit.market)
    if action == "calendar-sync":
        assert unit.market and unit.start is not None and unit.end is not None
        return await sync_calendar(rt, vendor, unit.market, unit.start, unit.end)
    raise AssertionError(f"no vendor attempt for {action}")


def leftover(job: JobSpec, unit: Unit, record: TaskRecord, caps: Capabilities) -> Unit | None:
    """What the next vendor in the chain should do after ``record`` (None: nothing)."""
    clean = record.status == "completed" and not record.error_count
    if job.action == "fill-missing":
        left: dict[str, Any] = (record.result or {}).get("left") or {}
        if record.status == "completed" and not any(left.get(s) for s in OPEN_STATES):
            return None
        return unit
    if job.action == "backfill" and unit.symbols:
        dataset = job.dataset or ""
        unserved = [
            s for s in unit.symbols if not caps.serves(dataset, s.rsplit(".", 1)[1], job.freq)
        ]
        named = {e.get("symbol") for e in record.errors}
        if clean:
            failed: list[str] = []
        elif (
            record.status == "completed"
            and record.error_count == len(record.errors)
            and None not in named
        ):
            failed = [s for s in unit.symbols if s in named]
        else:
            failed = [s for s in unit.symbols if s not in unserved]
        rest = tuple(s for s in unit.symbols if s in set(unserved) | set(failed))
        return replace(unit, symbols=rest) if rest else None
    return None if clean else unit


def compact_task(rt: Runtime, dataset: str | None) -> TaskRecord:
    """``etl compact`` as a task: one unit per dataset, stoppable between datasets."""
    record = rt.store.create("compact", {"dataset": dataset}, now=rt.clock())
    names = [dataset] if dataset else sorted(schemas.schemas())
    with open_run(rt.store, record, clock=rt.clock, ui=rt.ui()) as run:
        run.begin(len(names), total_count=len(names), label="compact")
        removed = added = 0
        with run.stop_signals():
            for name in names:
                if run.should_stop():
                    break
                for r in rt.lake.compact(name, now=rt.clock()):
                    removed += r.files_removed
                    added += r.files_added
                run.record.success_count += 1
                run.advance(1, f"compacted {name}")
        run.record.result = {"files_removed": removed, "files_added": added}
    return record


RECORD_STATUS_EVERY = 60.0  # seconds between the recorder's status lines in a job's log


def record_task(rt: Runtime, job: JobSpec, until: dt.datetime) -> TaskRecord:
    """A record job's run: ``etl record``'s recorder (:mod:`etl.recorder`, the same code
    path) over the job's selection until ``until``, as a task record whose result is the
    recorder's document. SIGTERM stops it as it stops ``etl record`` (commit, then exit):
    the task ends ``interrupted``; reaching ``until`` ends it ``completed``."""
    from etl.catalog import ensure_catalog
    from etl.names import parse_symbol
    from etl.recorder.start import build, record, select_symbols

    vendor = job.vendors[0]
    market = job.markets[0] if job.markets else None
    params = {
        "vendor": vendor, "symbols": list(job.symbols), "market": market,
        "channels": list(job.channels) or None, "until": iso_utc(until),
    }  # fmt: skip
    task = rt.store.create("record", params, now=rt.clock())
    with open_run(rt.store, task, clock=rt.clock, ui=rt.ui()) as run:
        run.begin(1, total_count=1, label="record")
        given = [parse_symbol(s) for s in job.symbols]
        symbols = select_symbols(rt, vendor, given, market)
        seconds = max((until - rt.clock()).total_seconds(), 0.001)
        recorder, used = build(
            rt, vendor, symbols, list(job.channels) or None, duration=seconds,
            status_every=RECORD_STATUS_EVERY, status_out=sys.stderr,
        )  # fmt: skip
        run.note(f"recording {len(symbols)} symbols until {iso_utc(until)}")
        try:
            record(rt, recorder)
        finally:
            # asyncio put SIGTERM back to the default (die at once) when its loop closed
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGTERM, _interrupt)
        doc = recorder.document(used)
        run.record.result = doc
        failed = recorder.never_connected()
        if failed:  # the window passed with no connection: an error, not a quiet day
            run.error(None, None, None, failed)
        run.record.rows_written = doc["ticks_written"] + doc["quotes_written"] + doc["bars_written"]
        if recorder.stopped_early:
            run.request_stop("signal")
        else:
            run.record.success_count = 1
            run.advance(1, "recorded")
    ensure_catalog(rt.root, now=rt.clock())
    return task


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
