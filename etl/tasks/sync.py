"""``etl instruments sync`` and ``etl calendar sync``: reference data, as tasks too."""

from __future__ import annotations

import asyncio
import datetime as dt

from etl.errors import BadInputError
from etl.normalize import validate
from etl.tasks.items import Item, count_items
from etl.tasks.pipeline import Fetched, PipelineResult, Unit, run_units
from etl.tasks.records import TaskRecord
from etl.tasks.runner import open_run
from etl.tasks.runtime import Runtime
from etl.vendors.base import Paging

__all__ = ["sync_calendar", "sync_instruments"]


def _caps(rt: Runtime, vendor: str) -> None:
    caps = rt.capabilities()
    if vendor not in caps:
        raise BadInputError(f"unknown vendor {vendor!r}: use one of {', '.join(caps)}")


def check_instruments(rt: Runtime, vendor: str, market: str | None) -> list[str]:
    _caps(rt, vendor)
    caps = rt.capabilities()
    cap = caps[vendor].require("instruments", market, others=caps)
    return [market] if market else sorted(cap.exchanges)


def check_calendar(rt: Runtime, vendor: str, market: str) -> None:
    _caps(rt, vendor)
    caps = rt.capabilities()
    caps[vendor].require("calendar", market, others=caps)


async def sync_instruments(rt: Runtime, vendor: str, market: str | None) -> TaskRecord:
    from etl.tasks import engine

    return await engine.start(rt, engine.TaskSpec.instruments(vendor, market))


async def sync_calendar(
    rt: Runtime, vendor: str, market: str, start: dt.date, end: dt.date
) -> TaskRecord:
    from etl.tasks import engine

    return await engine.start(rt, engine.TaskSpec.calendar(vendor, market, start, end))


async def run_instruments(rt: Runtime, record: TaskRecord, vendor: str, market: str | None) -> None:
    markets = check_instruments(rt, vendor, market)
    adapter = rt.adapter(vendor)

    async def fetch(unit: Unit, _paging: Paging) -> Fetched:
        sent = adapter.requests_sent()  # one unit at a time: the difference is this unit's
        table = await adapter.instruments(unit.label)
        checked = validate("instruments", table)
        return Fetched(checked.frame, checked.issues, requests=adapter.requests_sent() - sent)

    units = [Unit((), None, None, label=m) for m in markets]
    with open_run(rt.store, record, clock=rt.clock, ui=rt.ui()) as run:
        run.record.total_count = len(markets)
        with run.stop_signals(asyncio.get_running_loop()):
            result = await run_units(rt, run, "instruments", units, fetch, concurrency=1)
        stopped = run.stop_reason is not None
        items = {u.label: _item([u], result, stopped) for u in units}
        counts = count_items("markets", items)
        run.record.items = counts.as_dict()
        run.record.success_count = counts.done
        run.record.result = {"markets": markets, "requests": result.requests}


async def run_calendar(
    rt: Runtime, record: TaskRecord, vendor: str, market: str, start: dt.date, end: dt.date
) -> None:
    adapter = rt.adapter(vendor)

    async def fetch(unit: Unit, _paging: Paging) -> Fetched:
        sent = adapter.requests_sent()
        table = await adapter.calendar(market, unit.start, unit.end)
        checked = validate("calendar", table)
        return Fetched(checked.frame, checked.issues, requests=adapter.requests_sent() - sent)

    units = []
    cur = start
    while cur <= end:  # a year per unit: progress for long ranges, small requests
        last = min(end, dt.date(cur.year, 12, 31))
        units.append(Unit((), cur, last, label=f"calendar:{market}"))
        cur = last + dt.timedelta(days=1)
    with open_run(rt.store, record, clock=rt.clock, ui=rt.ui()) as run:
        run.record.total_count = 1
        with run.stop_signals(asyncio.get_running_loop()):
            result = await run_units(rt, run, "calendar", units, fetch, concurrency=1)
        counts = count_items(
            "calendars", {market: _item(units, result, run.stop_reason is not None)}
        )
        run.record.items = counts.as_dict()
        run.record.success_count = counts.done
        run.record.result = {"requests": result.requests}


def _item(units: list[Unit], result: PipelineResult, stopped: bool) -> Item:
    """One item made of ``units``: a unit not done failed, unless the task was stopped
    (then it was not reached)."""
    done = [u for u in units if u.id in result.done]
    finished = len(done) == len(units)
    return Item(finished, bool(done), failed=not finished and not stopped)
