"""Running one job once, in the foreground: what ``etl jobs run NAME`` (and cron) does.

Each task the run creates carries ``params["job"]`` (the job's name) and ``params["job_run"]``
(this run's id), so ``etl jobs list`` finds the last run's outcome in the task records alone.

The exit code is the most severe of the job's units, in the order 130 (interrupted) > 3
(no vendor of the chain configured) > 2 (bad input, e.g. no instruments for the market) >
1 (errors left) > 0. Within a unit, a vendor that is not configured is skipped with a note;
it is an error only when no vendor of the chain could run at all.

SIGTERM and SIGINT stop the run at the running task's next safe point (that task ends
``interrupted`` and resumable) and the chain does not go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import signal
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final

from etl.dataroot import DataRoot
from etl.errors import BadInputError, ConfigError, EtlError, TaskConflict
from etl.locks import FileLock
from etl.scheduler.actions import (
    Unit,
    attempt,
    compact_task,
    leftover,
    plan_units,
    record_task,
    resolve_symbols,
    served,
)
from etl.scheduler.cron import is_trading_day
from etl.scheduler.spec import JobSpec
from etl.tasks.records import TaskRecord, TaskStore
from etl.tasks.runtime import Runtime
from etl.timefmt import iso_utc

__all__ = ["Attempt", "JobResult", "JobRuntime", "new_run_id", "not_trading_reason", "run_job"]

_SEVERITY: Final = (0, 1, 2, 3, 130)  # least to most severe


class JobTaskStore(TaskStore):
    """The task store, tagging every record a job run creates and remembering it."""

    def __init__(self, root: Any, *, secrets: Iterable[str], tags: dict[str, str]) -> None:
        super().__init__(root, secrets=secrets)
        self.tags = tags
        self.created: list[TaskRecord] = []

    def create(self, kind: str, params: dict[str, Any], *, now: dt.datetime) -> TaskRecord:
        record = super().create(kind, {**params, **self.tags}, now=now)
        self.created.append(record)
        return record


@dataclass
class JobRuntime(Runtime):
    job: str = ""
    run_id: str = ""

    @cached_property
    def store(self) -> JobTaskStore:
        secrets = [s for v in self.settings.vendors.values() for s in v.secrets()]
        return JobTaskStore(
            self.root, secrets=secrets, tags={"job": self.job, "job_run": self.run_id}
        )


@dataclass
class Attempt:
    unit: str
    vendor: str | None
    record: TaskRecord | None = None
    error: str | None = None
    code: int = 0

    def document(self) -> dict[str, Any]:
        r = self.record
        return {
            "unit": self.unit, "vendor": self.vendor, "task_id": r.id if r else None,
            "status": r.status if r else "not run", "exit_code": self.code, "error": self.error,
        }  # fmt: skip

    def text(self) -> str:
        who = f"{self.unit} {self.vendor or ''}".strip()
        r = self.record
        if r is None:
            return f"{who}: {self.error}"
        why = f": {self.error}" if self.error and r.status == "failed" else ""
        counts = r.counts()  # by category; a record from before items were counted: ok/total
        items = counts.text() if counts else f"{r.success_count}/{r.total_count} ok"
        tail = f"{r.rows_written:,} rows, {r.error_count} errors{why}"
        return f"{who} #{r.id} {r.status} {items}, {tail}"


@dataclass
class JobResult:
    job: JobSpec
    run_id: str
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    attempts: list[Attempt] = field(default_factory=list)
    unit_codes: list[int] = field(default_factory=list)
    skipped: str | None = None
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return max(self.unit_codes, key=_SEVERITY.index, default=0)

    @property
    def status(self) -> str:
        if self.skipped:
            return "skipped"
        return {0: "completed", 1: "completed with errors", 2: "bad input", 3: "not configured",
                130: "interrupted"}[self.exit_code]  # fmt: skip

    @property
    def records(self) -> list[TaskRecord]:
        return [a.record for a in self.attempts if a.record is not None]

    def document(self) -> dict[str, Any]:
        return {
            "job": self.job.name, "run": self.run_id, "action": self.job.action,
            "status": self.status, "exit_code": self.exit_code, "skipped": self.skipped,
            "started_at": iso_utc(self.started_at), "finished_at": iso_utc(self.finished_at),
            "attempts": [a.document() for a in self.attempts],
            "tasks": [r.public() for r in self.records],
        }  # fmt: skip

    def summary(self) -> str:
        head = f"job {self.job.name}: {self.status}"
        if self.skipped:
            return f"{head}: {self.skipped}"
        rows = sum(r.rows_written for r in self.records)
        parts = "; ".join(a.text() for a in self.attempts) or "nothing to do"
        return f"{head} (exit {self.exit_code}), {rows:,} rows written: {parts}"


def not_trading_reason(job: JobSpec, now: dt.datetime) -> str | None:
    """Why a ``trading_days_only`` job does not run at ``now`` (None: it runs). A record
    job's scheduled fire runs only inside a session window (a late catch-up after the close
    must not record until tomorrow's)."""
    rule = job.schedule.session
    if rule is not None:
        window = rule.window_at(now)
        if window is not None and window[0] <= now:
            return None
        nxt = f"; the next is {iso_utc(window[0])} to {iso_utc(window[1])}" if window else ""
        return f"{iso_utc(now)} is outside the session windows of {job.name}{nxt}"
    if not job.schedule.trading_days_only:
        return None
    day = job.trigger().local_date(now)
    if is_trading_day(job.schedule.calendar, day):
        return None
    return (
        f"{day} is not a trading day of {'/'.join(job.schedule.calendar)} "
        "(without --scheduled it runs anyway)"
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _arm_sigterm() -> None:
    """SIGTERM acts as Ctrl-C between tasks (a task installs its own safe-point handler, and
    asyncio puts the default back when it is done, so this is re-armed before each task)."""
    with contextlib.suppress(ValueError):  # not the main thread: the caller handles signals
        signal.signal(signal.SIGTERM, _interrupt)


def _run_chain(rt: JobRuntime, job: JobSpec, unit: Unit, result: JobResult) -> int:
    """Try the job's vendors in turn on one unit; returns the unit's exit code."""
    try:
        unit = resolve_symbols(rt, job, unit)
    except BadInputError as exc:
        result.attempts.append(Attempt(unit.label, None, error=exc.bare_message, code=2))
        return 2
    caps = rt.capabilities()
    codes: list[int] = []
    remaining: Unit | None = unit
    for vendor in job.vendors:
        if remaining is None:
            break
        if not served(job, caps[vendor], remaining):
            continue
        _arm_sigterm()
        before = len(rt.store.created)
        try:
            record = asyncio.run(attempt(rt, job, vendor, remaining))
        except KeyboardInterrupt:
            made = rt.store.created[before:]
            latest = rt.store.get(made[-1].id) if made else None  # as its run saved it
            result.attempts.append(Attempt(unit.label, vendor, latest, "interrupted", 130))
            result.interrupted = True
            return 130
        except EtlError as exc:
            made = rt.store.created[before:]  # the task it failed in, if it got that far
            failed = made[-1] if made else None
            result.attempts.append(Attempt(unit.label, vendor, failed, str(exc), exc.exit_code))
            if isinstance(exc, ConfigError):
                continue  # not configured, or credentials refused: the next vendor may do
            codes.append(exc.exit_code)
            if isinstance(exc, BadInputError | TaskConflict):
                break  # the selection, not the vendor: the next one would fail alike
            continue
        code = record.exit_code()  # the same code the task's own command exits with
        result.attempts.append(Attempt(unit.label, vendor, record, record.error_message, code))
        codes.append(code)
        if code == 130:
            result.interrupted = True
            return 130
        remaining = leftover(job, remaining, record, caps[vendor])
    if codes:
        return codes[-1]
    return 3 if any(a.code == 3 for a in result.attempts if a.unit == unit.label) else 0


def _run_record(rt: JobRuntime, job: JobSpec, result: JobResult) -> int:
    """A record job: record from now until the end of the session window ``now`` is in,
    else of the next one (``etl jobs run`` by hand before the open records from now)."""
    assert job.schedule.session is not None
    label = job.markets[0] if job.markets else "symbols"
    window = job.schedule.session.window_at(rt.clock())
    if window is None:
        error = "no session window in the next three weeks (is the calendar known that far?)"
        result.attempts.append(Attempt(label, job.vendors[0], error=error, code=2))
        return 2
    _arm_sigterm()
    before = len(rt.store.created)
    try:
        record = record_task(rt, job, window[1])
    except KeyboardInterrupt:
        made = [r for r in rt.store.created[before:] if r.kind == "record"]
        latest = rt.store.get(made[0].id) if made else None
        result.attempts.append(Attempt(label, job.vendors[0], latest, "interrupted", 130))
        result.interrupted = True
        return 130
    except EtlError as exc:
        made = [r for r in rt.store.created[before:] if r.kind == "record"]
        failed = rt.store.get(made[0].id) if made else None
        result.attempts.append(Attempt(label, job.vendors[0], failed, str(exc), exc.exit_code))
        return exc.exit_code
    code = 130 if record.status in ("interrupted", "cancelled") else 0
    result.interrupted = code == 130
    result.attempts.append(Attempt(label, job.vendors[0], record, record.error_message, code))
    return code


def run_job(job: JobSpec, rt: JobRuntime, *, scheduled: bool = False) -> JobResult:
    """Run ``job`` once now. ``trading_days_only`` applies to ``scheduled`` fires only: a
    person who types ``etl jobs run`` means now. Another run of the same job in progress ->
    :class:`TaskConflict`."""
    now = rt.clock()
    result = JobResult(job, rt.run_id, started_at=now)
    reason = not_trading_reason(job, now) if scheduled else None
    if reason:
        result.skipped = reason
        result.finished_at = now
        return result
    lock = FileLock(DataRoot(rt.root).job_lock(job.name), record_pid=True)
    if not lock.acquire(timeout=0):
        raise TaskConflict(f"job {job.name} is already running (pid {lock.holder()}); not started")
    previous = signal.getsignal(signal.SIGTERM)
    try:
        if job.action == "record":
            result.unit_codes.append(_run_record(rt, job, result))
        elif job.action == "compact":
            _arm_sigterm()
            record = compact_task(rt, job.dataset)
            code = 130 if record.status == "interrupted" else 0
            result.interrupted = code == 130
            result.attempts.append(Attempt(job.dataset or "lake", None, record, None, code))
            result.unit_codes.append(code)
        else:
            today = job.trigger().local_date(now)
            for unit in plan_units(job, rt.capabilities(), today):
                result.unit_codes.append(_run_chain(rt, job, unit, result))
                if result.interrupted:
                    break
    except KeyboardInterrupt:  # between two tasks: nothing in flight
        result.interrupted = True
    finally:
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(signal.SIGTERM, previous)
        lock.release()
        result.finished_at = rt.clock()
    return result


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]
