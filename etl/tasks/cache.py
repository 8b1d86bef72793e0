"""The platform's cache tasks (``/cache/cache-all-missing``, ``/cache/fill-missing``): one task
made of steps, each step an ordinary task (instruments sync, calendar sync, fill-missing,
backfill) with its own record, tagged ``params.parent``.

- ``cache-all-missing`` caches everything of a board over a range that the lake lacks: the
  instruments and calendars of its markets, then the klines the calendar expects (a fill,
  so nothing stored is fetched again), for stocks the statements current during the range
  (reporting periods from January of the year before ``start`` to ``end``), for futures the
  varieties and today's main contracts;
- ``fill-missing`` fills only the klines gaps of the board's markets.

Every step goes through the task engine (:mod:`etl.tasks.engine`), as the CLI's tasks do.

Progress is the steps done plus the running step's own progress, saved as any task's is;
``etl tasks cancel`` on the parent cancels the running step. Resuming skips completed steps
and resumes the interrupted one, so nothing committed is fetched again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final, Literal

from etl.errors import BadInputError
from etl.names import parse_date
from etl.tasks import engine
from etl.tasks.engine import TaskSpec
from etl.tasks.expected import Selection, market_symbols
from etl.tasks.records import TaskRecord, TaskStore
from etl.tasks.runner import TaskRun, open_run
from etl.tasks.runtime import Runtime

__all__ = ["BOARDS", "CacheRequest", "cache_task", "resume_cache"]

Action = Literal["cache-all-missing", "fill-missing"]
BOARDS: Final = {"stock": ("SH", "SZ", "BJ"), "future": ("CFE",)}
STATEMENTS: Final = ("balance_sheet", "income", "cash_flow")
KIND: Final = "cache"  # the parent's record kind; params.action says which


@dataclass(frozen=True)
class CacheRequest:
    action: Action
    vendor: str
    board: str  # stock | future
    freq: str
    start: dt.date
    end: dt.date
    contract_type: str = "all"  # futures: all | main

    def params(self) -> dict[str, Any]:
        return {
            "action": self.action, "vendor": self.vendor, "board": self.board,
            "freq": self.freq, "start": self.start.isoformat(), "end": self.end.isoformat(),
            "contract_type": self.contract_type,
        }  # fmt: skip

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> CacheRequest:
        return cls(
            action=params["action"],
            vendor=params["vendor"],
            board=params["board"],
            freq=params["freq"],
            start=parse_date(params["start"]),
            end=parse_date(params["end"]),
            contract_type=params.get("contract_type") or "all",
        )


def _steps(rt: Runtime, req: CacheRequest) -> list[dict[str, Any]]:
    """The steps of ``req`` that its vendor serves, in order."""
    caps = rt.capabilities()[req.vendor]
    markets = [m for m in BOARDS[req.board] if caps.serves("klines", m, req.freq)]
    steps: list[dict[str, Any]] = []
    if req.action == "cache-all-missing":
        steps += [{"do": "instruments-sync", "market": m} for m in markets]
        steps += [
            {"do": "calendar-sync", "market": m} for m in markets if caps.serves("calendar", m)
        ]
        if req.board == "future":
            steps += [
                {"do": "backfill", "dataset": ds}
                for ds in ("future_varieties", "main_contracts")
                if caps.serves(ds)
            ]
    steps += [{"do": "fill-missing", "dataset": "klines", "market": m} for m in markets]
    if req.action == "cache-all-missing" and req.board == "stock":
        steps += [
            {"do": "fill-missing", "dataset": ds, "market": m}
            for ds in STATEMENTS
            for m in markets
            if caps.serves(ds, m)
        ]
    return steps


class _ChildStore(TaskStore):
    """The task store as the steps see it: their records are tagged with the parent."""

    def __init__(self, parent: TaskStore, parent_id: int) -> None:
        super().__init__(parent.layout.root, secrets=parent._secrets)
        self.parent_id = parent_id
        self.created: list[TaskRecord] = []

    def create(self, kind: str, params: dict[str, Any], *, now: dt.datetime) -> TaskRecord:
        record = super().create(kind, {**params, "parent": self.parent_id}, now=now)
        self.created.append(record)
        return record


@dataclass
class _StepRuntime(Runtime):
    parent_store: TaskStore | None = None
    parent_id: int = 0
    children: list[TaskRecord] = field(default_factory=list)

    @cached_property
    def store(self) -> _ChildStore:
        assert self.parent_store is not None
        return _ChildStore(self.parent_store, self.parent_id)


async def cache_task(rt: Runtime, req: CacheRequest) -> TaskRecord:
    """Check, then run a cache task as a new task; returns its final record."""
    caps = rt.capabilities()
    if req.vendor not in caps:
        raise BadInputError(f"unknown vendor {req.vendor!r}: use one of {', '.join(caps)}")
    if req.board not in BOARDS:
        raise BadInputError(f"unknown board {req.board!r}: use stock or future")
    if req.start > req.end:
        raise BadInputError(f"start {req.start} is after end {req.end}")
    if not any(caps[req.vendor].serves("klines", m, req.freq) for m in BOARDS[req.board]):
        raise BadInputError(f"{req.vendor} serves no {req.board} klines at {req.freq}")
    rt.check_configured(req.vendor)
    record = rt.store.create(KIND, req.params(), now=rt.clock())
    return await _execute(rt, record, req)


async def resume_cache(rt: Runtime, record: TaskRecord) -> TaskRecord:
    return await _execute(rt, record, CacheRequest.from_params(record.params))


async def _execute(rt: Runtime, record: TaskRecord, req: CacheRequest) -> TaskRecord:
    steps: list[dict[str, Any]] = list(record.result.get("steps") or [])
    with open_run(rt.store, record, clock=rt.clock, ui=rt.ui()) as run:
        if not steps:
            steps = _steps(rt, req)
        run.record.total_count = len(steps)
        run.begin(len(steps), sum(1 for s in steps if s.get("status") == "completed"))
        for index, step in enumerate(steps):
            if step.get("status") == "completed":
                continue
            if run.should_stop():
                break
            child = await _run_step(rt, run, req, step, index, len(steps))
            if child is not None:
                step.update(task_id=child.id, status=child.status)
            run.record.result = {"steps": steps}
            if child is not None and child.status in ("interrupted", "cancelled"):
                run.request_stop("cancel" if child.status == "cancelled" else "signal")
                break
            _tally(rt, run, steps)
            run.advance(1, save=True)
        _summarise(rt, run, steps)
    return record


async def _run_step(
    rt: Runtime, run: TaskRun, req: CacheRequest, step: dict[str, Any], index: int, total: int
) -> TaskRecord | None:
    child_rt = _StepRuntime(
        settings=rt.settings, clock=rt.clock, progress=False, parent_store=rt.store,
        parent_id=run.id,
    )  # fmt: skip
    watcher = asyncio.create_task(_watch(run, child_rt, step, index, total))
    try:
        previous = step.get("task_id")
        if previous is not None:
            found = rt.store.get(int(previous))
            if found.status == "completed" and not found.error_count:
                return found
            child_rt.store.created.append(found)
            return await engine.resume(child_rt, found)
        return await _start(child_rt, req, step)
    except BadInputError as exc:  # e.g. no instruments of the market: skipped, and said so
        step.update(status="skipped", note=exc.bare_message)
        return None
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def _start(rt: _StepRuntime, req: CacheRequest, step: dict[str, Any]) -> TaskRecord:
    """The step as an engine task (:mod:`etl.tasks.engine`), started in this process."""
    do, market = step["do"], step.get("market")
    if do == "instruments-sync":
        return await engine.start(rt, TaskSpec.instruments(req.vendor, market))
    if do == "calendar-sync":
        assert market is not None
        return await engine.start(rt, TaskSpec.calendar(req.vendor, market, req.start, req.end))
    if do == "backfill":
        return await engine.start(rt, TaskSpec.snapshot(req.vendor, step["dataset"]))
    dataset = step["dataset"]
    if dataset == "klines":
        symbols: tuple[str, ...] = ()
        if req.board == "future" and req.contract_type == "main":
            symbols = _main_contracts(rt)
        where = None if symbols else market
        sel = Selection("klines", req.start, req.end, req.freq, symbols, where)
    else:
        first = dt.date(req.start.year - 1, 1, 1)
        sel = Selection(dataset, first, req.end, None, (), market)
    if sel.market and not market_symbols(rt.root, sel):
        raise BadInputError(f"no {sel.market} instruments in the lake (sync them first)")
    return await engine.start(rt, TaskSpec.fill(req.vendor, sel))


def _main_contracts(rt: Runtime) -> tuple[str, ...]:
    import polars as pl

    from etl.dataroot import DataRoot

    folder = DataRoot(rt.root).dataset("main_contracts")
    files = sorted(folder.rglob("*.parquet")) if folder.is_dir() else []
    if not files:
        raise BadInputError("no main contracts in the lake: cache futures with contract_type all")
    frame = pl.scan_parquet(files, hive_partitioning=False, missing_columns="insert").collect()
    latest = frame.filter(pl.col("trade_date") == frame["trade_date"].max())
    return tuple(sorted(set(latest["symbol"].to_list())))


def _label(step: dict[str, Any]) -> str:
    parts = [step["do"], step.get("dataset"), step.get("market")]
    return " ".join(str(p) for p in parts if p)


async def _watch(
    run: TaskRun, rt: _StepRuntime, step: dict[str, Any], index: int, total: int
) -> None:
    """While a step runs: its progress and rows into the parent's, and the parent's cancel
    into it."""
    forwarded = False
    rows_before = run.record.rows_written
    while True:
        child = rt.store.created[-1] if rt.store.created else None
        if child is not None:
            run.record.progress = round((index + child.progress) / max(total, 1), 4)
            run.record.rows_written = rows_before + child.rows_written
            note = f"step {index + 1}/{total} {_label(step)} (task {child.id})"
            run.record.message = f"{note}: {child.message}" if child.message else note
            if not forwarded and run.store.cancel_requested(run.id):
                run.store.request_cancel(child.id)
                forwarded = True
            run.save()
        await asyncio.sleep(0.5)


def _tally(
    rt: Runtime, run: TaskRun, steps: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], TaskRecord]]:
    """The records of the steps run so far, and their counts into the parent's record, so
    that ``success_count`` and ``rows_written`` move with ``progress`` while the task runs
    (steps skipped are not counted in ``total_count``)."""
    done = [(s, rt.store.load(int(s["task_id"]))) for s in steps if s.get("task_id") is not None]
    run.record.rows_written = sum(child.rows_written for _, child in done)
    run.record.requests = sum(child.requests for _, child in done)  # its steps sent them
    run.record.success_count = sum(
        1 for _, child in done if child.status == "completed" and not child.error_count
    )
    run.record.total_count = sum(1 for s in steps if s.get("status") != "skipped")
    return done


def _summarise(rt: Runtime, run: TaskRun, steps: list[dict[str, Any]]) -> None:
    errors = 0
    for step, child in _tally(rt, run, steps):
        errors += child.error_count
        if child.status == "completed" and child.error_count:
            run.error(None, None, None, f"{_label(step)}: task {child.id} had errors")
        elif child.status == "failed":
            run.error(None, None, None, f"{_label(step)}: task {child.id} failed")
    run.record.result = {"steps": steps, "step_errors": errors}
