"""The loop every fetching task shares: units -> vendor -> validate -> lake, with resume.

A *unit* is one logical fetch (a few symbols over a range). Units run concurrently; their
validated rows are committed to the lake in batches (every ``flush_rows`` rows or
``flush_seconds``), and only after a commit are the units it contained recorded as done in
the task's resume state. A unit is done only if it came back clean, so a resumed task
re-tries exactly what failed and never re-fetches what was committed.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from etl.errors import AuthError, ConfigError, QuotaExhausted, VendorError
from etl.normalize import Issue
from etl.tasks.runner import TaskRun
from etl.tasks.runtime import Runtime
from etl.vendors.base import Failure, Span, Unavailable

__all__ = ["Fetch", "Fetched", "Unit", "run_units"]

FLUSH_ROWS = 500_000
FLUSH_SECONDS = 5.0


@dataclass(frozen=True)
class Unit:
    symbols: tuple[str, ...]
    start: Any = None  # dt.date, inclusive, or None
    end: Any = None
    label: str = ""

    @property
    def id(self) -> str:
        text = f"{self.label}|{self.start}|{self.end}|{','.join(self.symbols)}"
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass
class Fetched:
    frame: pl.DataFrame | None
    issues: list[Issue] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    unavailable: list[Unavailable] = field(default_factory=list)
    answered: list[Span] = field(default_factory=list)
    requests: int = 0
    error: str | None = None  # the whole unit failed (after retries): the reason

    @property
    def clean(self) -> bool:
        if self.error or self.failures:
            return False
        return not any(i.severity == "rejected" for i in self.issues)


Fetch = Callable[[Unit], Awaitable[Fetched]]
OnCommitted = Callable[[list[tuple[Unit, Fetched]]], None]


@dataclass
class PipelineResult:
    units_done: int = 0
    rows_written: int = 0
    requests: int = 0
    failed_symbols: set[str] = field(default_factory=set)
    unavailable: list[Unavailable] = field(default_factory=list)
    repaired: int = 0
    dropped: int = 0
    done: set[str] = field(default_factory=set)  # ids of the units done, this run or before


async def run_units(
    rt: Runtime,
    run: TaskRun,
    dataset: str,
    units: Sequence[Unit],
    fetch: Fetch,
    *,
    concurrency: int = 2,
    on_committed: OnCommitted | None = None,
    flush_rows: int = FLUSH_ROWS,
    flush_seconds: float = FLUSH_SECONDS,
) -> PipelineResult:
    """Run ``units`` (skipping those done in an earlier attempt) and commit their rows."""
    state = rt.store.load_state(run.id)
    done: set[str] = set(state.get("done", []))
    todo = [u for u in units if u.id not in done]
    run.begin(len(units), len(units) - len(todo), label=f"{run.record.kind} {dataset}")
    result = PipelineResult()
    pending: list[tuple[Unit, Fetched]] = []
    pending_rows = 0
    last_flush = time.monotonic()
    commit_lock = asyncio.Lock()
    queue: asyncio.Queue[Unit] = asyncio.Queue()
    for unit in todo:
        queue.put_nowait(unit)
    fatal: list[BaseException] = []

    async def flush() -> None:
        nonlocal pending, pending_rows, last_flush
        async with commit_lock:
            batch, pending, pending_rows = pending, [], 0
            last_flush = time.monotonic()
            if not batch:
                return
            frames = [f.frame for _, f in batch if f.frame is not None and f.frame.height]
            if frames:
                rows = pl.concat(frames, how="vertical_relaxed")
                commit = await asyncio.to_thread(
                    rt.lake.write, dataset, rows, now=rt.clock(), task_id=run.id
                )
                result.rows_written += commit.rows_written
                run.record.rows_written += commit.rows_written
            if on_committed is not None:  # e.g. the gap ledger: before units count as done
                await asyncio.to_thread(on_committed, batch)
            for unit, fetched in batch:
                if fetched.clean:
                    done.add(unit.id)
            rt.store.save_state(run.id, {**state, "done": sorted(done)})
            run.save()

    async def worker() -> None:
        nonlocal pending_rows
        while not queue.empty() and not fatal:
            if run.should_stop():
                return
            unit = queue.get_nowait()
            try:
                fetched = await fetch(unit)
            except (AuthError, ConfigError, QuotaExhausted) as exc:
                fatal.append(exc)
                _record_unit_error(run, result, unit, str(exc))
                return
            except VendorError as exc:
                _record_unit_error(run, result, unit, str(exc))
                pending.append((unit, Fetched(None, error=str(exc))))
                run.advance(1, f"{_describe(unit)}: failed")
                continue
            _record_fetched(run, result, unit, fetched)
            pending.append((unit, fetched))
            rows = fetched.frame.height if fetched.frame is not None else 0
            pending_rows += rows
            run.advance(1, f"{_describe(unit)}: {rows} rows")
            if pending_rows >= flush_rows or time.monotonic() - last_flush >= flush_seconds:
                await flush()

    workers = [asyncio.create_task(worker()) for _ in range(max(1, concurrency))]
    try:
        await asyncio.gather(*workers)
    finally:
        for w in workers:
            w.cancel()
        await flush()
    if fatal:
        raise fatal[0]
    result.units_done = len(done)
    result.done = set(done)
    return result


def _describe(unit: Unit) -> str:
    head = unit.symbols[0] if unit.symbols else unit.label
    more = f" +{len(unit.symbols) - 1}" if len(unit.symbols) > 1 else ""
    return f"{head}{more}"


def _record_unit_error(run: TaskRun, result: PipelineResult, unit: Unit, reason: str) -> None:
    if not unit.symbols:
        run.error(None, unit.start, unit.end, reason)
    for symbol in unit.symbols:
        result.failed_symbols.add(symbol)
        run.error(symbol, unit.start, unit.end, reason)


def _record_fetched(run: TaskRun, result: PipelineResult, unit: Unit, fetched: Fetched) -> None:
    result.requests += fetched.requests
    for failure in fetched.failures:
        result.failed_symbols.add(failure.symbol)
        run.error(failure.symbol, failure.start, failure.end, failure.reason)
    for issue in fetched.issues:
        if issue.severity == "rejected":
            if issue.symbol:
                result.failed_symbols.add(issue.symbol)
            run.error(
                issue.symbol, issue.example, None, f"{issue.count} row(s) rejected: {issue.reason}"
            )
        elif issue.severity == "repaired":
            result.repaired += issue.count
        else:
            result.dropped += issue.count
    result.unavailable.extend(fetched.unavailable)
