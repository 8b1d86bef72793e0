"""The loop every fetching task shares: units -> vendor -> validate -> lake, with resume.

A *unit* is one logical fetch (a few symbols over a range). Units run concurrently; their
validated rows go to one committer, which commits whatever has arrived as soon as its
previous commit is done (as few commits as keep up with the vendor: while the vendor is the
bottleneck that is a commit per answer, batches only form when commits are slower). A
paging vendor also hands over each page's complete days (:class:`~etl.vendors.base.Paging`),
committed the same way with the unit's cursor.

A stop (Ctrl-C, SIGTERM, ``etl tasks cancel``) is taken between units and, for a paging
vendor, between pages: once a page is handed over, ``on_page`` answers "stop" and the adapter
asks for nothing more. What was handed over is committed with its cursor, the unit stays not
done, and the rest of its answer is discarded (a resume asks for it from the cursor).

What is committed is remembered in the task's resume state in the same step: the units
done, the cursors of units part-way, ``rows_written``, and the answers' *facts*
(:class:`Outcomes`: what fill-missing writes to the gap ledger, such as "answered, no bars").
Before each lake commit the state names it (an *intent*: a tag, its partitions, what it
would mark done, its facts); a kill between the commit and the state's update is settled on
resume from the lake's manifests, which carry the tag. So a resumed task never asks again
for a unit (or page) whose rows were committed, and ``rows_written`` is what the lake
received. At risk at a kill: the calls in flight, and the answers waiting for the commit
that was running.

With ``spool`` (fill-missing), each answer (or page) is first written to the task's spool
(``tasks/<id>.spool/<n>.arrow``: its validated rows, and as metadata its unit, cursor,
whether it makes its unit done, and its facts), atomically, as it arrives; the worker then
asks for its next call without waiting for the commit, and commits group whatever has
arrived. A commit's state says up to which spool entry it holds, and its entries are then
deleted; a resumed run first commits the entries the state does not hold, in order, as if
they had just arrived (rows already in the lake count nothing again: the lake writes only
what changes). At risk at a kill: only the calls in flight. Without a spool a worker waits
for its answer's commit, so a kill loses its call in flight and the answer being committed.

The facts are recorded (the gap ledger written) by a third task, after the commit that
stored them in the state, at most once a second: no worker waits for the ledger, so its
cost stays out of a request's turn (and out of the pace), and one ledger write serves many
answers (it cost ~110 ms, about one Infoway call's share of the rate, when written per
answer). Facts a kill left unrecorded are recorded when the task resumes, before anything
is fetched.

How many units run at once is the vendor's *pace* when the caller gives one (``pace``: the
governor's Little's-law figure, :meth:`~etl.vendors.governor.Governor.pace`), at most
``concurrency``: only as many as keep the rate busy, since every unit in progress has a call
in flight (and, paging, a page's shift) that a kill loses. Each worker is a governor
:class:`~etl.vendors.governor.Lane`, so what it does between requests counts in the pace.

The task's progress counts estimated requests, not units (a unit of a paging vendor can take
dozens of calls): each unit weighs what the caller estimates it costs (``weight``, the
planners' :mod:`etl.tasks.costs` figures), a done unit counts its whole weight, and a unit
part-way one per page committed, at most all but its last estimated request (half of a
one-request unit), so it never counts as finished before its final answer is committed. The
counts move with the commits and are kept in the resume state (``work``: done and total;
``pages``: the pages committed of units part-way), so the progress the record shows is what
is committed, and a resumed task starts from the fraction its last run reached and spreads
what is left over the rest (it never goes back). A unit whose answer failed is not done (a
resume asks again) and counts nothing. Regression: an interrupted Infoway backfill of three
symbols had committed 14 pages (6,240 rows) and said 0%.

polars, the validator and the lake's writer are imported when the first answer is handled,
not with this module: a task's first request does not wait for them (issue 10, start-up;
``tests/tasks/test_first_request.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from etl.errors import AuthError, ConfigError, QuotaExhausted, VendorError
from etl.tasks.items import NOT_COMPLETE, classify
from etl.tasks.runner import TaskRun
from etl.tasks.runtime import Runtime
from etl.vendors.base import Failure, Paging, Span, Unavailable
from etl.vendors.governor import LANE, Lane

if TYPE_CHECKING:
    import polars as pl

    from etl.normalize import Issue

__all__ = ["Fetch", "Fetched", "Outcomes", "PageCheck", "Unit", "run_units"]

FLUSH_ROWS = 500_000  # pending rows above which workers wait for the committer
FLUSH_SECONDS = 5.0  # kept for callers; commits no longer wait for a timer
_T = TypeVar("_T")
RECORD_SECONDS = 1.0  # committed facts are recorded (the gap ledger) at most this often


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


# A unit's fetch. ``paging`` carries the unit's stored cursors and the page hook; a fetch
# that does not page ignores it.
Fetch = Callable[[Unit, Paging], Awaitable[Fetched]]
# Turns one handed-over page (the adapter's rows) into validated rows: (frame, issues).
PageCheck = Callable[[Unit, pa.Table], "tuple[pl.DataFrame, list[Issue]]"]


@dataclass(frozen=True)
class Outcomes:
    """What committed answers say beyond their rows, and where it is written.

    ``facts``: the final answers of a commit -> JSON-able facts, kept in the resume state
    with the commit; ``record``: write facts (fill-missing: the gap ledger's states for the
    slots the answers left absent; idempotent, since a kill can make it run twice)."""

    facts: Callable[[list[tuple[Unit, Fetched]]], list[Any]]
    record: Callable[[list[Any]], None]


# How many units to run at once, given the most allowed (``concurrency``).
Pace = Callable[[int], int]
# A unit's share of the task's progress: the requests it is estimated to take.
Weight = Callable[[Unit], float]


@dataclass
class PipelineResult:
    units_done: int = 0
    rows_written: int = 0
    requests: int = 0
    failed_symbols: set[str] = field(default_factory=set)
    unavailable: list[Unavailable] = field(default_factory=list)
    answered: list[Span] = field(default_factory=list)
    repaired: int = 0
    dropped: int = 0
    done: set[str] = field(default_factory=set)  # ids of the units done, this run or before
    commits: int = 0  # lake commits this run made
    # symbols with rows committed by any run of the task (an item partly done, not unreached)
    touched: set[str] = field(default_factory=set)


@dataclass
class _Entry:
    """An answer waiting for its commit: a unit's final answer, or one page of it, with
    what its commit needs to know of it (all of it can be spooled and read back)."""

    unit: Unit
    frame: pl.DataFrame | None
    final: bool = True
    cursor: tuple[str, int] | None = None  # a page's (symbol, cursor after it)
    clean: bool = False  # a final answer that makes its unit done
    unavailable: list[Unavailable] = field(default_factory=list)  # of a clean final answer
    facts: list[Any] = field(default_factory=list)  # see Outcomes
    answered: list[Span] = field(default_factory=list)  # what the depths learned disprove
    repaired: int = 0  # rows its validation repaired
    dropped: int = 0  # rows its validation dropped (not rejected)
    spooled: int | None = None  # its number in the task's spool
    committed: asyncio.Event | None = None  # set once committed (workers that wait for it)

    @classmethod
    def of(
        cls,
        unit: Unit,
        fetched: Fetched,
        outcomes: Outcomes | None,
        *,
        final: bool = True,
        cursor: tuple[str, int] | None = None,
    ) -> _Entry:
        facts = outcomes.facts([(unit, fetched)]) if outcomes is not None and final else []
        clean = final and fetched.clean
        unavailable = list(fetched.unavailable) if clean else []
        repaired = sum(i.count for i in fetched.issues if i.severity == "repaired")
        dropped = sum(i.count for i in fetched.issues if i.severity not in ("repaired", "rejected"))
        return cls(unit, fetched.frame, final, cursor, clean, unavailable, facts,
                   list(fetched.answered), repaired, dropped)  # fmt: skip

    @property
    def rows(self) -> int:
        return self.frame.height if self.frame is not None else 0

    def spool_bytes(self) -> bytes:
        """The entry as an Arrow IPC file: its rows, and the rest as JSON in the metadata."""
        u = self.unit
        meta = {
            "unit": [list(u.symbols), _iso(u.start), _iso(u.end), u.label],
            "final": self.final,
            "cursor": list(self.cursor) if self.cursor else None,
            "clean": self.clean,
            "unavailable": [_unavailable_doc(x) for x in self.unavailable],
            "facts": self.facts,
            "answered": [[a.symbol, a.start.isoformat(), a.end.isoformat()] for a in self.answered],
            "repaired": self.repaired,
            "dropped": self.dropped,
        }
        table = self.frame.to_arrow() if self.frame is not None else pa.table({})
        table = table.replace_schema_metadata({_SPOOL_META: json.dumps(meta).encode()})
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        return bytes(sink.getvalue().to_pybytes())

    @classmethod
    def from_spool(cls, data: bytes, number: int) -> _Entry:
        table = pa.ipc.open_file(pa.py_buffer(data)).read_all()
        meta = json.loads((table.schema.metadata or {})[_SPOOL_META])
        table = table.replace_schema_metadata(None)
        import polars as pl  # see the module doc's last paragraph

        frame = pl.from_arrow(table) if table.num_columns else None
        assert frame is None or isinstance(frame, pl.DataFrame)
        symbols, start, end, label = meta["unit"]
        day = dt.date.fromisoformat
        unit = Unit(tuple(symbols), day(start) if start else None, day(end) if end else None,
                    label)  # fmt: skip
        cursor = meta["cursor"]
        answered = [Span(str(s), day(a), day(b)) for s, a, b in meta.get("answered", [])]
        return cls(
            unit, frame, bool(meta["final"]), (str(cursor[0]), int(cursor[1])) if cursor else None,
            bool(meta["clean"]), [_unavailable_of(x) for x in meta["unavailable"]],
            list(meta["facts"]), answered, int(meta.get("repaired", 0)),
            int(meta.get("dropped", 0)), spooled=number,
        )  # fmt: skip


_SPOOL_META = b"etl.spool"


def _iso(day: Any) -> str | None:
    return day.isoformat() if isinstance(day, dt.date) else None


@dataclass
class _Progress:
    """The resume state: what is committed. Saved whole, atomically, after every commit."""

    done: set[str]
    cursors: dict[str, dict[str, int]]  # unit id -> symbol -> cursor
    rows_written: int
    seq: int
    extra: dict[str, Any]  # keys other callers keep in the state
    # What a resumed run cannot ask again: the symbols committed rows were of, and what the
    # answers of done units said the vendor cannot serve (the task's summary and the
    # depths it learns need both, whichever run got them).
    touched: set[str] = field(default_factory=set)
    unavailable: list[Unavailable] = field(default_factory=list)
    facts: list[Any] = field(default_factory=list)  # committed, not recorded yet
    spooled: int = 0  # spool entries up to this number are committed
    repaired: int = 0  # rows validation repaired, in what is committed (every run)
    dropped: int = 0  # rows validation dropped, likewise
    spool_next: int = 0  # the last spool number given (not saved: the spool's own files say)
    pages: dict[str, int] = field(default_factory=dict)  # unit id -> pages committed, part-way
    work: tuple[float, float] | None = None  # the task's progress as committed: (done, total)

    @classmethod
    def load(cls, state: dict[str, Any], rows_written: int) -> _Progress:
        known = ("done", "cursors", "rows_written", "seq", "intent", "touched", "unavailable",
                 "facts", "spooled", "repaired", "dropped", "pages", "work")  # fmt: skip
        work = state.get("work")
        return cls(
            done=set(state.get("done", [])),
            cursors={u: dict(c) for u, c in (state.get("cursors") or {}).items()},
            rows_written=int(state.get("rows_written", rows_written)),
            seq=int(state.get("seq", 0)),
            extra={k: v for k, v in state.items() if k not in known},
            touched=set(state.get("touched", [])),
            unavailable=[_unavailable_of(u) for u in state.get("unavailable", [])],
            facts=list(state.get("facts", [])),
            spooled=int(state.get("spooled", 0)),
            repaired=int(state.get("repaired", 0)),
            dropped=int(state.get("dropped", 0)),
            pages={u: int(n) for u, n in (state.get("pages") or {}).items()},
            work=(float(work[0]), float(work[1])) if work else None,
        )

    def doc(self, intent: dict[str, Any] | None = None) -> dict[str, Any]:
        out = {
            **self.extra,
            "done": sorted(self.done),
            "cursors": self.cursors,
            "rows_written": self.rows_written,
            "seq": self.seq,
            "touched": sorted(self.touched),
            "unavailable": [_unavailable_doc(u) for u in self.unavailable],
            "facts": self.facts,
            "spooled": self.spooled,
            "repaired": self.repaired,
            "dropped": self.dropped,
            "pages": self.pages,
            "work": list(self.work) if self.work is not None else None,
        }
        if intent is not None:
            out["intent"] = intent
        return out

    def apply(
        self, done: list[str], cursors: dict[str, dict[str, int]], pages: dict[str, int]
    ) -> None:
        for unit_id, per in cursors.items():
            self.cursors.setdefault(unit_id, {}).update(per)
        for unit_id, n in pages.items():
            self.pages[unit_id] = self.pages.get(unit_id, 0) + n
        for unit_id in done:
            self.done.add(unit_id)
            self.cursors.pop(unit_id, None)
            self.pages.pop(unit_id, None)

    def credit(self, unit_id: str, weight: float) -> float:
        """A unit's share of the work done: its weight once done; else a page each, at most
        all but its last estimated request (half of a one-request unit)."""
        if unit_id in self.done:
            return weight
        return min(float(self.pages.get(unit_id, 0)), max(weight - 1, weight / 2))

    def start_work(self, weights: dict[str, float]) -> tuple[float, float]:
        """(done, total) at the start of a run over the units ``weights`` names: a resumed
        task goes on from the fraction its last commit reached, with what is left now (the
        units not done, less their pages) as the rest; otherwise the units' credits over
        their weights (a first run: nothing done yet)."""
        left = sum(w - self.credit(u, w) for u, w in weights.items())
        if self.work is not None and self.work[1] > 0 and left > 0:
            reached = self.work[0] / self.work[1]
            if 0 <= reached < 1:
                total = left / (1 - reached)
                self.work = (total - left, total)
                return self.work
        self.work = (sum(self.credit(u, w) for u, w in weights.items()), sum(weights.values()))
        return self.work


def _unavailable_doc(u: Unavailable) -> list[Any]:
    since = u.depth_from.isoformat() if u.depth_from else None
    return [u.symbol, u.start.isoformat(), u.end.isoformat(), u.reason, since]


def _unavailable_of(doc: list[Any]) -> Unavailable:
    symbol, start, end, reason, since = doc
    day = dt.date.fromisoformat
    return Unavailable(symbol, day(start), day(end), reason, day(since) if since else None)


def _symbols_of(frame: pl.DataFrame) -> set[str]:
    if "symbol" not in frame.columns:
        return set()
    return {str(s) for s in frame["symbol"].unique().to_list() if s is not None}


def _settle_intent(rt: Runtime, dataset: str, progress: _Progress, intent: dict[str, Any]) -> None:
    """A commit the last run named but did not record: count the rows it wrote where it
    reached the lake, and, when it reached every partition, take its units and cursors as
    committed and its facts as still to record."""
    partitions = [str(p) for p in intent.get("partitions", [])]
    found = rt.lake.tagged(dataset, str(intent["tag"]), partitions)
    progress.rows_written += sum(c.rows_added + c.rows_replaced for c in found.values())
    if partitions and set(found) == set(partitions):
        progress.facts += list(intent.get("facts", []))
        progress.apply(
            list(intent.get("done", [])), intent.get("cursors", {}), intent.get("pages", {})
        )
        progress.spooled = max(progress.spooled, int(intent.get("spooled") or 0))
        progress.repaired += int(intent.get("repaired") or 0)
        progress.dropped += int(intent.get("dropped") or 0)


async def run_units(
    rt: Runtime,
    run: TaskRun,
    dataset: str,
    units: Sequence[Unit],
    fetch: Fetch,
    *,
    concurrency: int = 2,
    outcomes: Outcomes | None = None,
    page_check: PageCheck | None = None,
    flush_rows: int = FLUSH_ROWS,
    flush_seconds: float = FLUSH_SECONDS,
    pace: Pace | None = None,
    spool: bool = False,
    weight: Weight | None = None,
) -> PipelineResult:
    """Run ``units`` (skipping those done in an earlier attempt) and commit their rows.

    ``page_check``: validate a page a paging adapter hands over (without it, fetches are
    given no page hook and commit per unit). ``flush_rows``: pending rows above which the
    workers wait for the committer (memory stays bounded when commits fall behind); at 1 a
    worker waits until each answer (or page) is committed before it asks for more: at a kill
    nothing beyond the calls in flight (one per unit running) is at risk, and the time a
    commit takes counts in the pace, so more units run at once when commits are slow.
    ``pace``: how many units to run at once (see the module doc); all of ``concurrency``
    without it. ``outcomes``: the facts of each commit's answers and their recorder (see the
    module doc). ``spool``: each answer (or page) is written to the task's spool as it
    arrives, and a worker goes on once it is there, not once it is committed (``flush_rows``
    then only bounds memory); a resume commits what the spool holds before anything else.
    ``weight``: a unit's estimated requests, its share of the task's progress (1 each
    without it; see the module doc)."""
    del flush_seconds  # commits follow each other as fast as they go (see the module doc)
    strict = flush_rows <= 1  # each worker waits until its answers are committed
    state = rt.store.load_state(run.id)
    progress = _Progress.load(state, run.record.rows_written)
    intent = state.get("intent")
    if isinstance(intent, dict) and intent.get("tag"):
        _settle_intent(rt, dataset, progress, intent)
        rt.store.save_state(run.id, progress.doc())
    if progress.facts and outcomes is not None:  # a kill left them unrecorded
        await _shielded(run, outcomes.record, list(progress.facts))
        progress.facts = []
        rt.store.save_state(run.id, progress.doc())
    run.record.rows_written = progress.rows_written
    weights = {u.id: max(1.0, float(weight(u))) if weight else 1.0 for u in units}
    result = PipelineResult(unavailable=list(progress.unavailable))
    pending: list[_Entry] = []
    pending_rows = 0
    queue: asyncio.Queue[Unit] = asyncio.Queue()
    fatal: list[BaseException] = []
    wake = asyncio.Event()
    noted = asyncio.Event()  # facts were committed: the recorder has work
    drained = asyncio.Event()
    drained.set()
    closing = False
    finished = False  # the committer is done: the recorder ends once it has recorded all
    ending = asyncio.Event()  # set with ``finished``
    # The recorder reads the lake (which slots are still absent): not while a commit swaps
    # the files it would read (regression: "Cannot open file ... part-….parquet").
    lake_turn = asyncio.Lock()
    cap = max(1, concurrency)
    running = 0  # units being fetched
    turn = asyncio.Event()  # a unit ended or a page came: the pace may allow one more

    async def commit(batch: list[_Entry]) -> None:
        frames = [e.frame for e in batch if e.frame is not None and e.frame.height]
        newly_done = [e.unit.id for e in batch if e.clean]
        cursors: dict[str, dict[str, int]] = {}
        for e in batch:
            if e.cursor is not None:
                cursors.setdefault(e.unit.id, {})[e.cursor[0]] = e.cursor[1]
        facts = [f for e in batch for f in e.facts]
        pages: dict[str, int] = {}
        for e in batch:
            if not e.final:
                pages[e.unit.id] = pages.get(e.unit.id, 0) + 1
        spooled = max((e.spooled for e in batch if e.spooled is not None), default=None)
        repaired = sum(e.repaired for e in batch)
        dropped = sum(e.dropped for e in batch)
        if frames:
            import polars as pl  # see the module doc's last paragraph

            rows = pl.concat(frames, how="vertical_relaxed")
            progress.seq += 1
            tag = f"task{run.id}.{progress.seq}"
            partitions = await _shielded(run, rt.lake.partition_paths, dataset, rows)
            intent = {"tag": tag, "partitions": partitions, "done": newly_done,
                      "cursors": cursors, "pages": pages, "facts": facts, "spooled": spooled,
                      "repaired": repaired, "dropped": dropped}  # fmt: skip
            rt.store.save_state(run.id, progress.doc(intent))
            async with lake_turn:
                written = await _shielded(
                    run, rt.lake.write, dataset, rows, now=rt.clock(), task_id=run.id, tag=tag
                )
            result.commits += 1
            result.rows_written += written.rows_written
            progress.rows_written += written.rows_written
            run.record.rows_written = progress.rows_written
        for frame in frames:
            progress.touched |= _symbols_of(frame)
        progress.unavailable += [  # "not complete yet" is asked again by the next task anyway
            x for e in batch for x in e.unavailable if classify(x.reason) != NOT_COMPLETE
        ]  # fmt: skip
        progress.facts += facts  # recorded by the recorder, in the same state as the units
        units_of = {e.unit.id for e in batch if e.unit.id in weights}
        before = sum(progress.credit(u, weights[u]) for u in units_of)
        progress.apply(newly_done, cursors, pages)
        gained = sum(progress.credit(u, weights[u]) for u in units_of) - before
        if progress.work is not None:
            progress.work = (progress.work[0] + gained, progress.work[1])
        progress.repaired += repaired
        progress.dropped += dropped
        if spooled is not None:
            progress.spooled = max(progress.spooled, spooled)
        rt.store.save_state(run.id, progress.doc())
        run.advance(gained, save=True)  # the record says what the state says
        if spooled is not None:  # committed, and the state says so: no longer needed
            rt.store.spool_drop(run.id, spooled)
        if facts:
            noted.set()

    async def recorder() -> None:
        """Record committed facts (the gap ledger) off the workers' path, in order, at most
        every ``RECORD_SECONDS`` while units run: the facts are safe in the state, and one
        write of many answers' facts costs about what one answer's does."""
        assert outcomes is not None
        while True:
            await noted.wait()
            if not finished:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ending.wait(), RECORD_SECONDS)
            noted.clear()
            while progress.facts:
                facts = list(progress.facts)
                try:
                    async with lake_turn:  # it reads the files a commit replaces
                        await _shielded(run, outcomes.record, facts)
                except BaseException as exc:
                    fatal.append(exc)
                    raise
                del progress.facts[: len(facts)]
                rt.store.save_state(run.id, progress.doc())
            if finished:
                return

    async def committer() -> None:
        nonlocal pending, pending_rows
        while True:
            await wake.wait()
            wake.clear()
            while pending:
                batch, pending, pending_rows = pending, [], 0
                drained.set()
                try:
                    await commit(batch)
                except BaseException as exc:
                    fatal.append(exc)
                    drained.set()
                    raise
                finally:
                    for entry in batch:
                        if entry.committed is not None:
                            entry.committed.set()
            if closing:
                return

    async def enqueue(entry: _Entry) -> None:
        nonlocal pending_rows
        if spool:  # stored before anything else happens to it: a kill no longer loses it
            progress.spool_next += 1
            entry.spooled = progress.spool_next
            rt.store.spool_put(run.id, entry.spooled, entry.spool_bytes())
        elif strict:  # a page too: the lane asks for its next page once this one is stored
            entry.committed = asyncio.Event()
        pending.append(entry)
        pending_rows += entry.rows
        wake.set()
        if entry.committed is not None:
            await entry.committed.wait()  # the caller asked for a commit per call
        elif pending_rows >= (FLUSH_ROWS if spool else flush_rows) and not fatal:
            drained.clear()
            await drained.wait()  # back-pressure: the committer is behind

    def paging_for(unit: Unit) -> Paging:
        paging = Paging(cursors=dict(progress.cursors.get(unit.id, {})))
        if page_check is None:
            return paging
        check = page_check

        async def on_page(symbol: str, table: pa.Table, cursor: int) -> bool:
            frame, issues = _checked(run, check, unit, table)
            page = Fetched(frame, issues)
            _record_fetched(run, result, unit, page)
            turn.set()
            await enqueue(_Entry.of(unit, page, outcomes, final=False, cursor=(symbol, cursor)))
            if run.should_stop():  # between pages: this one is on its way to the lake
                paging.stopped = True
            return not paging.stopped

        paging.on_page = on_page
        return paging

    async def admitted(lane: Lane) -> bool:
        """Wait until the pace allows one more unit (False: nothing left to take)."""
        while running >= (cap if pace is None else pace(cap)):
            lane.pause()  # this wait is not part of a request's turn
            turn.clear()
            await turn.wait()
        return not queue.empty() and not fatal

    async def worker() -> None:
        nonlocal running
        lane = Lane()
        LANE.set(lane)  # this task's context: the requests of its units run in this lane
        while not queue.empty() and not fatal:
            if run.should_stop() or not await admitted(lane) or run.should_stop():
                return
            unit = queue.get_nowait()
            running += 1  # until its answer is handed to the committer (or committed)
            try:
                if not await take(unit):
                    return
            finally:
                running -= 1
                turn.set()

    async def take(unit: Unit) -> bool:
        """Fetch ``unit`` and enqueue its answer; False when the worker must end."""
        paging = paging_for(unit)
        try:
            fetched = await fetch(unit, paging)
        except KeyboardInterrupt:
            # Raised by polars while the fetcher validated an answer (see _checked): the
            # run's stop request. Left here it would leave the event loop past every
            # handler, and the task's record and document with it. The unit is asked again.
            run.request_stop()
            return False
        except (AuthError, ConfigError, QuotaExhausted) as exc:
            fatal.append(exc)
            _record_unit_error(run, result, unit, str(exc))
            return False
        except VendorError as exc:
            _record_unit_error(run, result, unit, str(exc))
            await enqueue(_Entry.of(unit, Fetched(None, error=str(exc)), outcomes))
            run.note(f"{_describe(unit)}: failed")
            return True
        if paging.stopped:  # cut short by a stop: its pages are enqueued with their
            result.requests += fetched.requests  # cursors; the rest is asked on resume
            return False
        _record_fetched(run, result, unit, fetched)
        rows = fetched.frame.height if fetched.frame is not None else 0
        await enqueue(_Entry.of(unit, fetched, outcomes))
        run.note(f"{_describe(unit)}: {rows} rows")  # its commit moves the progress
        return True

    done_work, total_work = progress.start_work(weights)
    run.begin(total_work, done_work, label=f"{run.record.kind} {dataset}")
    # Answers a killed run had spooled and not committed: committed first, as received.
    held = rt.store.spool_list(run.id)
    rt.store.spool_drop(run.id, progress.spooled)  # committed already (the state says so)
    progress.spool_next = max([progress.spooled, *(n for n, _ in held)])
    replay = [_Entry.from_spool(path.read_bytes(), n) for n, path in held if n > progress.spooled]
    if replay:
        await commit(replay)
        for entry in replay:  # what the killed run had learned from them, for the depths
            result.unavailable += entry.unavailable
            result.answered += entry.answered
    todo = [u for u in units if u.id not in progress.done]
    for unit in todo:
        queue.put_nowait(unit)
    committing = asyncio.create_task(committer())
    recording = asyncio.create_task(recorder()) if outcomes is not None else None
    workers = [asyncio.create_task(worker()) for _ in range(max(1, concurrency))]
    try:
        await asyncio.gather(*workers)
    finally:
        for w in workers:
            w.cancel()
        closing = True
        wake.set()
        try:
            await committing
        except BaseException:
            if not fatal:
                raise
        finally:
            finished = True
            ending.set()
            noted.set()
            if recording is not None:
                try:
                    await recording
                except BaseException:
                    if not fatal:
                        raise
    if fatal:
        raise fatal[0]
    result.units_done = len(progress.done)
    result.done = set(progress.done)
    result.touched = set(progress.touched)
    result.repaired, result.dropped = progress.repaired, progress.dropped  # every run's, committed
    return result


async def _shielded(run: TaskRun, func: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """``func`` in a worker thread, seen through to its end. Why: polars handles SIGINT
    itself while it runs a query and raises KeyboardInterrupt in the thread running it; a
    Ctrl-C landing in a commit's Parquet read then escaped the run as a bare
    KeyboardInterrupt (``--json`` printed an error, not the task document). Here it is the
    run's stop request, as a Ctrl-C anywhere else is, and ``func`` (a lake commit, which is
    atomic, or the ledger's write, which is idempotent) is called again."""
    while True:
        try:
            return await asyncio.to_thread(func, *args, **kwargs)
        except KeyboardInterrupt:
            run.request_stop()


def _checked(
    run: TaskRun, check: PageCheck, unit: Unit, table: pa.Table
) -> tuple[pl.DataFrame, list[Issue]]:
    """``check(unit, table)``, seen through. polars turns a Ctrl-C that lands during a query
    into KeyboardInterrupt in the thread running it, here the event loop's: raised out of a
    worker task, it left the loop past the run's handlers, and ``--json`` printed an error
    instead of the task's document (seen in the full test run: the SIGINT case of
    test_backfill_stop). The page is validated again (a pure function) and the Ctrl-C is the
    run's stop request, as anywhere else."""
    while True:
        try:
            return check(unit, table)
        except KeyboardInterrupt:
            run.request_stop()


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
    result.unavailable.extend(fetched.unavailable)
    result.answered.extend(fetched.answered)
