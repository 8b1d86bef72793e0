"""A repair (a REST backfill, seconds long on a loaded machine) never holds back the commits:
while one runs, what is received is still committed every second. The committer used to
await each due repair before its next commit, so a long repair let uncommitted trades pile
up past the contract's 2 s (a SIGKILL then lost them: CI's kill test, kill 6)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from etl.emulators.testing import running
from etl.lake import Lake
from etl.recorder.feeds import feed_for
from etl.recorder.run import COMMIT_EVERY, Gap, Recorder
from etl.recorder.stage import Stage
from tests.recorder.test_record_e2e import OPEN, SYMBOLS

COMMITS = 3  # commits seen while the repair hangs


def stored_ticks(root: Path) -> int:
    files = sorted((root / "lake" / "ticks").rglob("*.parquet"))
    return pl.scan_parquet(files).select(pl.len()).collect().item() if files else 0


def test_commits_go_on_every_second_while_a_repair_hangs(data_root: Path) -> None:
    repair_began = asyncio.Event()
    repair_calls: list[Sequence[str]] = []

    async def hanging_repair(
        syms: Sequence[str], first: dt.date, last: dt.date, closed_by: dt.datetime
    ) -> tuple[int, str]:
        repair_calls.append(syms)
        if len(repair_calls) > 1:  # the stop's last pass: fails at once, the gap stays open
            return 0, "failed"
        repair_began.set()
        await asyncio.Event().wait()  # a backfill that never ends (cancelled at the stop)
        raise AssertionError("unreachable")

    async def scenario(server_ws: str) -> list[tuple[float, int]]:
        lake = Lake(data_root)
        feeds = feed_for(
            "infoway", SYMBOLS, ["trades"], {s: s for s in SYMBOLS}, ws_url=server_ws,
            api_key="k",
        )  # fmt: skip
        recorder = Recorder(
            lake, "infoway", feeds, Stage(lake, "infoway", "ticks"),
            lambda: dt.datetime.now(dt.UTC), repair=hanging_repair, status_every=60,
        )  # fmt: skip
        start_ms = int(OPEN.timestamp() * 1000) - 600_000  # a gap long closed: due at once
        recorder.gaps.append(Gap(0, list(SYMBOLS), start_ms, "test", end_ms=start_ms + 1000))
        run = asyncio.create_task(recorder.run())
        await asyncio.wait_for(repair_began.wait(), 60)
        # while the repair hangs, the lake grows: each sample a new committed count
        seen: list[tuple[float, int]] = []
        deadline = time.monotonic() + 60
        while len(seen) <= COMMITS and time.monotonic() < deadline:
            count = await asyncio.to_thread(stored_ticks, data_root)
            if not seen or count > seen[-1][1]:
                seen.append((time.monotonic(), count))
            await asyncio.sleep(0.05)
        assert not run.done()
        recorder.stop()
        await asyncio.wait_for(run, 60)
        return seen

    with running("infoway", now=OPEN, speed=120, api_key="k") as server:
        seen = asyncio.run(scenario(server.ws_url))
    assert len(repair_calls) == 2  # the first ran all along (cancelled at the stop)
    # the count when the repair began, then COMMITS commits that each added rows
    assert len(seen) == COMMITS + 1, f"commits stopped while the repair ran: {seen}"
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(seen[1:])]
    # one commit a second; 2 s (the contract) is the most a loaded machine may stretch it to
    assert all(g <= 2 * COMMIT_EVERY + 1.0 for g in gaps), gaps
