"""The governor shares a vendor's budget fairly between processes, and says how long a request
has waited. Regression: a one-symbol job sharing Infoway with a market-wide fill sat at 0/1 for
4 minutes: the fill's waiters took every slot that opened, and nothing said why."""

from __future__ import annotations

import asyncio
from pathlib import Path

from etl.vendors.governor import TICKET_TTL, Governor, Lease, Limit

# Two Governor objects on one state folder behave as two processes: they meet only in the
# shared state, as processes do. A fake clock makes the order of events exact.
ONE_PER_SECOND = [Limit(requests=1, seconds=1.0)]


def test_a_free_slot_goes_to_the_oldest_waiter_not_the_first_to_look(tmp_path: Path) -> None:
    t = [0.0]
    fill = Governor("infoway", ONE_PER_SECOND, state_dir=tmp_path, margin=0.0, clock=lambda: t[0])
    job = Governor("infoway", ONE_PER_SECOND, state_dir=tmp_path, margin=0.0, clock=lambda: t[0])

    def attempt(gov: Governor, ticket: str) -> Lease | float:
        got = gov._store.transact(lambda s: gov._try(s, None, t[0], ticket))
        if isinstance(got, Lease):
            gov.release(got)  # answered at once
        return got

    assert isinstance(attempt(fill, "fill-1"), Lease)  # t=0: the fill's first request
    t[0] = 0.1
    assert isinstance(attempt(job, "job-1"), float)  # the job must wait: it takes a ticket
    t[0] = 0.2
    assert isinstance(attempt(fill, "fill-2"), float)  # so must the fill's next request
    t[0] = 1.05  # the window has room again, and the fill happens to look first
    assert isinstance(attempt(fill, "fill-2"), float)  # ... but the job waited longer
    assert isinstance(attempt(job, "job-1"), Lease)
    t[0] = 2.1
    assert isinstance(attempt(fill, "fill-2"), Lease)


def test_tickets_of_dead_or_silent_waiters_are_dropped(tmp_path: Path) -> None:
    t = [0.0]
    gov = Governor("infoway", ONE_PER_SECOND, state_dir=tmp_path, margin=0.0, clock=lambda: t[0])

    def attempt(ticket: str) -> Lease | float:
        got = gov._store.transact(lambda s: gov._try(s, None, t[0], ticket))
        if isinstance(got, Lease):
            gov.release(got)  # answered at once
        return got

    assert isinstance(attempt("a"), Lease)
    assert isinstance(attempt("gone"), float)  # queued, then never looks again
    t[0] = 1.5
    assert isinstance(attempt("b"), float)  # "gone" is older and still counts
    t[0] = 1.5 + TICKET_TTL
    assert isinstance(attempt("b"), Lease)  # silent for TICKET_TTL: dropped


def test_waits_are_reported_and_cleared(tmp_path: Path) -> None:
    heard: list[float] = []
    gov = Governor("infoway", [Limit(requests=1, seconds=2.5)], state_dir=tmp_path, margin=0.0)
    gov.on_wait = heard.append

    async def main() -> None:
        for _ in range(2):
            async with gov.slot():
                pass

    asyncio.run(main())
    waits = [w for w in heard if w > 0]
    assert waits, heard  # the 2nd request waited 2.5 s, told about once a second
    assert max(waits) >= 1.5
    assert heard[-1] == 0.0  # and the last word is that a request went


def test_a_task_run_says_it_waits_for_the_rate_limit(tmp_path: Path) -> None:
    import datetime as dt

    from etl.tasks.progress import ProgressUI
    from etl.tasks.records import TaskStore
    from etl.tasks.runner import TaskRun

    store = TaskStore(tmp_path)
    now = dt.datetime(2024, 6, 28, tzinfo=dt.UTC)
    record = store.create("backfill", {}, now=now)
    ui = ProgressUI(enabled=False)
    run = TaskRun(store, record, lambda: now, ui)
    ui.rate_wait("infoway", 0.4)  # a wait that short is normal pacing: no word
    assert store.get(record.id).message is None
    ui.rate_wait("infoway", 12.3)
    run.save()
    assert store.get(record.id).message == "waiting for infoway's rate limit (12 s)"
    ui.rate_wait("infoway", 0.0)
    run.save()
    assert store.get(record.id).message is None
