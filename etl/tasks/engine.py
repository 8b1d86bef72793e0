"""The task engine: every task that fetches from a vendor is planned and run here.

One entry point for every caller (the CLI, the scheduler, and later the platform server, the
real-time recorder and the adjustment-factor syncs)::

    from etl.tasks.engine import TaskSpec, plan, run, start, submit

    spec = TaskSpec.backfill("infoway", Selection("klines", d1, d2, "1m", ("AAPL.US",)))
    spec = TaskSpec.fill("mdapi", selection, recheck=False)     # only what detect finds absent
    spec = TaskSpec.instruments("stocktv", market="IN")
    spec = TaskSpec.calendar("amazingdata", "SH", d1, d2)
    spec = TaskSpec.snapshot("amazingdata", "main_contracts")

    plan(rt, spec)               # the plan as a document (calls, bars, seconds); writes nothing
    record = submit(rt, spec)    # a ``pending`` task record, returned at once
    record = await run(rt, record)   # run it (or resume it) in this process
    record = await start(rt, spec)   # submit, then run

How later work uses it:

- **The platform server** (``etl serve``: ``/cache/cache-all-missing`` is a backfill of what
  the lake lacks in a range, ``/cache/fill-missing`` a fill of detected gaps) calls
  :func:`submit` to answer the task id at once, then runs the task in a worker process
  (``python -m etl tasks resume ID``, or :func:`run` with the record loaded by id). It polls
  the same record through :class:`~etl.tasks.records.TaskStore`, which the task saves twice
  a second; ``etl tasks cancel ID`` (a cancel file) stops it at its next safe point.
- **The real-time recorder** repairs a disconnect with ``start(rt, TaskSpec.fill(vendor,
  Selection("klines", day, day, "1m", symbols)))``: the fill asks only for the bars the
  lake lacks, so the live bars around the interval are not fetched again.
- **A new per-symbol dataset** (``adj_factors``) is a branch of the backfill's fetch
  (:func:`etl.tasks.backfill._fetcher`: which adapter method answers a unit) and of its
  unit cutting (``_units``); planning, commits, resume and counting are shared.

What every run does is the same, whatever the kind: its units go through one pipeline
(:func:`etl.tasks.pipeline.run_units`) within the vendor's limits, each answer committed to
the lake as it comes (as few commits as keep up with the vendor), and the task's resume
state remembers the units done and, for paging vendors, each page's cursor, so a resume
continues where the last commit left and never asks for a committed answer again. Every
request is counted as it goes out (:meth:`etl.tasks.runner.TaskRun.request_sent`, through a
journal a killed run leaves behind), and every item ends as done, partly done, failed,
unavailable or not reached (:mod:`etl.tasks.items`), which the summary line, ``--json`` and
the exit code all read.

Nothing here reads the environment or the clock: the :class:`~etl.tasks.runtime.Runtime`
brings both. A fill's path stays in ``etl.tasks``, ``etl.vendors`` and ``etl.lake``.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from etl.errors import BadInputError
from etl.names import parse_date
from etl.tasks.expected import Selection
from etl.tasks.records import TaskRecord
from etl.tasks.runtime import Runtime
from etl.timefmt import iso_utc

__all__ = ["KINDS", "TaskSpec", "plan", "resume", "run", "start", "submit"]

log = logging.getLogger(__name__)

Kind = Literal["backfill", "fill-missing", "instruments-sync", "calendar-sync"]
KINDS: Final = ("backfill", "fill-missing", "instruments-sync", "calendar-sync")
SNAPSHOTS: Final = ("future_varieties", "main_contracts")


@dataclass(frozen=True)
class TaskSpec:
    """What a task is asked to do; its params are the task record's ``params``.

    ``selection`` is the symbols (or market), range and frequency for klines and statements;
    a snapshot or a sync has none. ``refetch`` (backfill): fetch stored bars again.
    ``recheck`` (fill): ask again for slots a vendor confirmed empty or unavailable.
    ``closed_by`` (backfill): bars ending after this instant are still forming, whatever the
    host's clock says: the recorder's repair passes its stream's time, the vendor's present
    (a whole-day repair during the session must not store the vendor's forming minute).
    """

    kind: Kind
    vendor: str
    dataset: str
    selection: Selection | None = None
    market: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    refetch: bool = False
    recheck: bool = False
    closed_by: dt.datetime | None = None

    # -- the kinds ----------------------------------------------------------------------

    @classmethod
    def backfill(
        cls,
        vendor: str,
        selection: Selection,
        *,
        refetch: bool = False,
        closed_by: dt.datetime | None = None,
    ) -> TaskSpec:
        return cls(
            "backfill", vendor, selection.dataset, selection, refetch=refetch, closed_by=closed_by
        )

    @classmethod
    def fill(cls, vendor: str, selection: Selection, *, recheck: bool = False) -> TaskSpec:
        return cls("fill-missing", vendor, selection.dataset, selection, recheck=recheck)

    @classmethod
    def snapshot(cls, vendor: str, dataset: str) -> TaskSpec:
        if dataset not in SNAPSHOTS:
            raise BadInputError(f"{dataset} is not a snapshot ({', '.join(SNAPSHOTS)})")
        return cls("backfill", vendor, dataset)

    @classmethod
    def instruments(cls, vendor: str, market: str | None = None) -> TaskSpec:
        return cls("instruments-sync", vendor, "instruments", market=market)

    @classmethod
    def calendar(cls, vendor: str, market: str, start: dt.date, end: dt.date) -> TaskSpec:
        return cls("calendar-sync", vendor, "calendar", market=market, start=start, end=end)

    # -- as record params ---------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        """The record's ``params``: the keys earlier versions wrote, plus the flags."""
        doc: dict[str, Any] = {"vendor": self.vendor, "dataset": self.dataset}
        sel = self.selection
        if sel is not None:
            doc.update(sel.params())
        elif self.kind == "backfill":  # a snapshot: no symbols, no range
            doc.update({"freq": None, "symbols": [], "start": None, "end": None})
        else:
            doc["market"] = self.market
            if self.start is not None and self.end is not None:
                doc.update({"start": self.start.isoformat(), "end": self.end.isoformat()})
        if self.kind == "backfill" and sel is not None:
            doc["refetch"] = self.refetch
            if self.closed_by is not None:  # only the recorder's repairs have one
                doc["closed_by"] = iso_utc(self.closed_by)
        if self.kind == "fill-missing":
            doc["recheck"] = self.recheck
        return doc

    @classmethod
    def from_record(cls, record: TaskRecord) -> TaskSpec:
        kind = record.kind
        if kind not in KINDS:
            raise BadInputError(f"task {record.id} ({kind}) cannot be resumed; run it again")
        p = record.params
        vendor, dataset = str(p["vendor"]), str(p.get("dataset") or "")
        if kind == "instruments-sync":
            return cls.instruments(vendor, p.get("market"))
        if kind == "calendar-sync":
            return cls.calendar(vendor, p["market"], parse_date(p["start"]), parse_date(p["end"]))
        if kind == "backfill" and dataset in SNAPSHOTS:
            return cls.snapshot(vendor, dataset)
        sel = Selection(
            dataset=dataset,
            start=parse_date(p["start"]),
            end=parse_date(p["end"]),
            freq=p.get("freq"),
            symbols=tuple(p.get("symbols") or ()),
            market=p.get("market"),
        )
        if kind == "backfill":
            closed_by = p.get("closed_by")
            return cls.backfill(
                vendor,
                sel,
                refetch=bool(p.get("refetch")),
                closed_by=dt.datetime.fromisoformat(closed_by) if closed_by else None,
            )
        return cls.fill(vendor, sel, recheck=bool(p.get("recheck")))

    def with_symbols(self, symbols: tuple[str, ...]) -> TaskSpec:
        """The same task over an explicit symbol list (a market resolved by the caller)."""
        assert self.selection is not None
        return replace(self, selection=replace(self.selection, symbols=symbols))


# -- entry points ---------------------------------------------------------------------------


def check(rt: Runtime, spec: TaskSpec) -> None:
    """Bad input (exit 2) and missing credentials (exit 3), before any record or request."""
    from etl.tasks.driver import driver_for

    driver_for(spec).check(rt, spec)
    rt.check_configured(spec.vendor)


def plan(rt: Runtime, spec: TaskSpec) -> dict[str, Any]:
    """The plan as ``--dry-run`` prints it: calls, bars expected, requests and the seconds
    they take at the vendor's rate. Nothing is fetched and nothing is written."""
    from etl.tasks.driver import driver_for

    driver = driver_for(spec)
    driver.check(rt, spec)
    return driver.dry_run(rt, spec)


def submit(rt: Runtime, spec: TaskSpec) -> TaskRecord:
    """Check ``spec`` and create its task record, ``pending``; nothing is fetched yet."""
    check(rt, spec)
    return rt.store.create(spec.kind, spec.params(), now=rt.clock())


async def run(rt: Runtime, record: TaskRecord) -> TaskRecord:
    """Run a pending task, or resume a stopped one, in this process; returns its final record.

    Errors that end the whole task (a refused key, a spent quota) are raised after the
    record is saved ``failed``; everything else is in the record."""
    from etl.tasks.driver import driver_for

    spec = TaskSpec.from_record(record)
    try:
        await driver_for(spec).run(rt, spec, record)
    finally:
        await rt.aclose()
        _refresh_catalog(rt)
    return record


def _refresh_catalog(rt: Runtime) -> None:
    """Bring ``catalog.duckdb`` up to date once the task's commits are in: a dataset's first
    files only show in a ``duckdb`` shell after a rebuild (see :mod:`etl.catalog.build`). The
    catalog is an index: failing to refresh it never fails the task (the next command does)."""
    from etl.catalog import refresh_catalog

    try:
        refresh_catalog(rt.root, now=rt.clock())
    except Exception as exc:  # an index left stale is logged, the task's outcome stands
        log.warning("catalog.duckdb not refreshed after the task: %s", exc)


async def start(rt: Runtime, spec: TaskSpec) -> TaskRecord:
    """:func:`submit` then :func:`run`."""
    return await run(rt, submit(rt, spec))


async def resume(rt: Runtime, record: TaskRecord) -> TaskRecord:
    """Continue ``record`` where its last commit left it (the same as :func:`run`)."""
    return await run(rt, record)
