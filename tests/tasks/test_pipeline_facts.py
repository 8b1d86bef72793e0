"""What a killed run had received is not asked again: the answers' facts (fill-missing's
gap-ledger input) go into the resume state with their commit and are recorded off the
workers' path (a worker does not wait for the ledger), and what a kill left unrecorded, or
committed without recording the state, is recorded when the task resumes; with a spool, an
answer received but not committed is committed by the resume, once. The vendor is the sim
adapter, the lake real."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from etl.config import load_settings
from etl.normalize import Issue, validate_klines
from etl.tasks.pipeline import Fetched, Outcomes, Unit, _Entry, run_units
from etl.tasks.records import TaskRecord
from etl.tasks.runner import open_run
from etl.tasks.runtime import Runtime
from etl.vendors.base import Paging, Unavailable

NOW = dt.datetime(2024, 6, 28, 12, tzinfo=dt.UTC)
SYMBOL = "600000.SH"
DAYS = [dt.date(2024, 6, d) for d in (24, 25, 26, 27)]
UNITS = [Unit((SYMBOL,), d, d, label="fill:klines:1m") for d in DAYS]


@pytest.fixture
def rt(tmp_path: Path) -> Runtime:
    return Runtime(load_settings(data_dir=tmp_path, env={}), clock=lambda: NOW, progress=False)


def new_task(rt: Runtime) -> TaskRecord:
    return rt.store.create("fill", {"vendor": "sim", "dataset": "klines"}, now=NOW)


class Counted:
    """The sim vendor's 1m bars for a unit's day, counting the calls."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.asked: list[dt.date] = []
        self.all_asked = threading.Event()

    async def __call__(self, unit: Unit, _paging: Paging) -> Fetched:
        self.asked.append(unit.start)
        if len(self.asked) == len(UNITS):
            self.all_asked.set()
        batch = await self.rt.adapter("sim").klines(list(unit.symbols), "1m", unit.start, unit.end)
        checked = validate_klines(batch.table, freq="1m", start=unit.start, end=unit.end, now=NOW)
        return Fetched(checked.frame, checked.issues, answered=list(batch.answered), requests=1)


def facts_of(batch: list[tuple[Unit, Fetched]]) -> list[Any]:
    return [[u.symbols[0], u.start.isoformat()] for u, f in batch]


def run(
    rt: Runtime, record: TaskRecord, fetch: Counted, outcomes: Outcomes, spool: bool = False
) -> Any:
    async def go() -> Any:
        with open_run(rt.store, record, clock=rt.clock, ui=rt.ui()) as task:
            return await run_units(
                rt, task, "klines", UNITS, fetch, concurrency=1, outcomes=outcomes, flush_rows=1,
                spool=spool,
            )  # fmt: skip

    return asyncio.run(go())


def test_workers_do_not_wait_for_the_ledger_and_every_fact_is_recorded_in_order(
    rt: Runtime,
) -> None:
    fetch = Counted(rt)
    recorded: list[Any] = []
    # The recorder holds its first write until every call was made: were a worker to wait
    # for the ledger, this would never end (the wait below fails instead).

    def record(facts: list[Any]) -> None:
        assert fetch.all_asked.wait(30), "the workers waited for the ledger"
        recorded.extend(facts)

    result = run(rt, new_task(rt), fetch, Outcomes(facts_of, record))
    assert fetch.asked == DAYS
    assert recorded == [[SYMBOL, d.isoformat()] for d in DAYS]
    assert result.units_done == len(UNITS)
    assert rt.store.load_state(1)["facts"] == []  # recorded, so no longer kept


def test_facts_a_kill_left_unrecorded_are_recorded_on_resume_before_any_call(
    rt: Runtime,
) -> None:
    record = new_task(rt)
    left = [[SYMBOL, "2024-06-21"]]
    rt.store.save_state(record.id, {"facts": left})
    order: list[str] = []
    fetch = Counted(rt)

    def recorder(facts: list[Any]) -> None:
        order.append(f"record {len(fetch.asked)} asked")
        if facts == left:
            order.append("left")

    run(rt, record, fetch, Outcomes(facts_of, recorder))
    assert order[:2] == ["record 0 asked", "left"]
    assert fetch.asked == DAYS


def test_a_commit_the_state_missed_is_adopted_with_its_facts(rt: Runtime) -> None:
    """Killed after the lake commit, before the state said so: its unit is not asked again,
    its facts are recorded, and its rows are counted once."""
    record = new_task(rt)
    first = UNITS[0]
    got = asyncio.run(Counted(rt)(first, Paging()))
    assert got.frame is not None
    tag = f"task{record.id}.1"
    partitions = rt.lake.partition_paths("klines", got.frame)
    written = rt.lake.write("klines", got.frame, now=NOW, task_id=record.id, tag=tag)
    facts = facts_of([(first, got)])
    intent = {"tag": tag, "partitions": partitions, "done": [first.id], "cursors": {},
              "facts": facts}  # fmt: skip
    rt.store.save_state(record.id, {"seq": 1, "intent": intent})
    recorded: list[Any] = []
    fetch = Counted(rt)
    result = run(rt, record, fetch, Outcomes(facts_of, recorded.extend))
    assert fetch.asked == DAYS[1:]
    assert recorded[:1] == facts and len(recorded) == len(DAYS)
    assert result.units_done == len(UNITS)
    per_day = got.frame.height
    assert written.rows_written == per_day
    assert rt.store.get(record.id).rows_written == per_day * len(DAYS)


def lake_rows(rt: Runtime) -> int:
    files = sorted((rt.root / "lake" / "klines").rglob("*.parquet"))
    return pl.read_parquet(files).height


def test_answers_spooled_before_a_kill_are_committed_by_the_resume_not_asked_again(
    rt: Runtime,
) -> None:
    record = new_task(rt)
    outcomes_seen: list[Any] = []
    outcomes = Outcomes(facts_of, outcomes_seen.extend)
    got = [asyncio.run(Counted(rt)(u, Paging())) for u in UNITS[:2]]
    for number, (unit, fetched) in enumerate(zip(UNITS[:2], got, strict=True), start=1):
        rt.store.spool_put(record.id, number, _Entry.of(unit, fetched, outcomes).spool_bytes())
    fetch = Counted(rt)
    result = run(rt, record, fetch, outcomes, spool=True)
    assert fetch.asked == DAYS[2:]  # the two spooled answers were not asked again
    assert sorted(f[1] for f in outcomes_seen) == [d.isoformat() for d in DAYS]
    assert result.units_done == len(UNITS)
    per_day = got[0].frame.height if got[0].frame is not None else 0
    assert rt.store.get(record.id).rows_written == per_day * len(DAYS) == lake_rows(rt)
    assert rt.store.spool_list(record.id) == []  # all committed, so removed


def test_a_spooled_answer_the_state_holds_is_not_committed_twice(rt: Runtime) -> None:
    """Killed after the commit's state was saved, before its spool entry was removed."""
    record = new_task(rt)
    outcomes = Outcomes(facts_of, lambda facts: None)
    first = UNITS[0]
    got = asyncio.run(Counted(rt)(first, Paging()))
    assert got.frame is not None
    rt.lake.write("klines", got.frame, now=NOW, task_id=record.id)
    rt.store.spool_put(record.id, 1, _Entry.of(first, got, outcomes).spool_bytes())
    state = {"spooled": 1, "done": [first.id], "rows_written": got.frame.height}
    rt.store.save_state(record.id, state)
    fetch = Counted(rt)
    run(rt, record, fetch, outcomes, spool=True)
    assert fetch.asked == DAYS[1:]
    assert rt.store.get(record.id).rows_written == got.frame.height * len(DAYS) == lake_rows(rt)
    assert rt.store.spool_list(record.id) == []


def test_a_replayed_answer_keeps_what_it_taught_and_what_validation_did(rt: Runtime) -> None:
    """The spool holds more than rows: a replayed answer's spans (the depths learned from
    it), its unavailable ranges and its repaired and dropped rows count as if received by
    the resumed run, and the counts of every run's committed answers add up."""
    record = new_task(rt)
    outcomes = Outcomes(facts_of, lambda facts: None)
    first = UNITS[0]
    got = asyncio.run(Counted(rt)(first, Paging()))
    assert got.frame is not None
    gone = Unavailable(SYMBOL, dt.date(2024, 6, 20), dt.date(2024, 6, 21), "beyond depth")
    got.unavailable = [gone]
    got.issues = [Issue(SYMBOL, "high below close", 3, "repaired"),
                  Issue(SYMBOL, "duplicate bar", 2, "dropped")]  # fmt: skip
    assert got.answered, "the sim adapter says what it answered for"
    rt.store.spool_put(record.id, 1, _Entry.of(first, got, outcomes).spool_bytes())
    rt.store.save_state(record.id, {"repaired": 7, "dropped": 1})  # an earlier run's commits
    fetch = Counted(rt)
    result = run(rt, record, fetch, outcomes, spool=True)
    assert fetch.asked == DAYS[1:]
    assert gone in result.unavailable
    assert set(got.answered) <= set(result.answered)
    assert (result.repaired, result.dropped) == (7 + 3, 1 + 2)
    state = rt.store.load_state(record.id)
    assert (state["repaired"], state["dropped"]) == (10, 3)


def test_a_ctrl_c_inside_a_commit_thread_is_the_runs_stop_not_an_escape(rt: Runtime) -> None:
    """polars raises KeyboardInterrupt in the thread running its query when SIGINT comes
    (seen: a Ctrl-C during a commit's Parquet read ended ``backfill --json`` with an error
    document). The commit is seen through, and the run stops at its next safe point with
    its record saying so."""
    record = new_task(rt)
    fetch = Counted(rt)
    write = rt.lake.write
    interrupted: list[int] = []

    def write_once_interrupted(*args: Any, **kwargs: Any) -> Any:
        if not interrupted:
            interrupted.append(1)
            raise KeyboardInterrupt  # as polars raises it, inside the thread
        return write(*args, **kwargs)

    rt.lake.write = write_once_interrupted  # type: ignore[method-assign]
    run(rt, record, fetch, Outcomes(facts_of, lambda facts: None))
    done = rt.store.get(record.id)
    assert interrupted and done.status == "interrupted"
    assert 0 < len(fetch.asked) < len(DAYS)  # stopped at the next safe point, not at once
    assert done.rows_written == lake_rows(rt) > 0  # the interrupted commit went through


class _PolarsCtrlC:
    """A page check that raises KeyboardInterrupt on its first call, as polars does when a
    Ctrl-C lands during its query (it raises in the thread that runs it: the event loop's)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, unit: Unit, table: Any) -> tuple[pl.DataFrame, list[Issue]]:
        self.calls += 1
        if self.calls == 1:
            raise KeyboardInterrupt
        checked = validate_klines(table, freq="1m", start=unit.start, end=unit.end, now=NOW)
        return checked.frame, checked.issues


def test_a_ctrl_c_polars_raises_in_a_page_check_is_the_runs_stop_request(rt: Runtime) -> None:
    """Regression: the KeyboardInterrupt left the event loop from the worker task, past the
    run's handlers; the task never said it was interrupted. Now the page is checked again
    and committed, and the run stops (interrupted) before asking for the next unit."""

    async def paged(unit: Unit, paging: Paging) -> Fetched:
        batch = await rt.adapter("sim").klines(list(unit.symbols), "1m", unit.start, unit.end)
        assert paging.on_page is not None
        await paging.on_page(unit.symbols[0], batch.table, 1)
        return Fetched(None, requests=1)

    record = new_task(rt)
    check = _PolarsCtrlC()

    async def go() -> Any:
        with open_run(rt.store, record, clock=rt.clock, ui=rt.ui()) as task:
            return await run_units(
                rt, task, "klines", UNITS, paged, concurrency=1, flush_rows=1, page_check=check
            )

    try:
        result = asyncio.run(go())
    except KeyboardInterrupt:
        pytest.fail("the KeyboardInterrupt left the run past its handlers")
    saved = rt.store.load(record.id)
    assert saved.status == "interrupted", saved.status
    assert check.calls == 2  # the interrupted check was run again, for the same page
    assert saved.rows_written == 240 and result.units_done == 0  # that page, in the lake
