"""A task's recorded progress counts committed requests, not finished units: an Infoway
backfill (one unit per symbol, each paged back over several calls) stopped by a Ctrl-C after
its first committed page says how far it got, every record it saved is at least the one
before, the progress bar shows what the record says, and a resume goes on from there to 1.0.

Regression: a backfill of three US stocks stopped after 14 calls (6,240 rows stored, every
symbol part-way) said 0%, since only a finished unit counted.

Real pieces: the Infoway emulator in a thread, the task engine, the lake and the task store
on a tmp data root. The store notes each record it saves (and sends the process its Ctrl-C
at the first save after rows were committed: the event, not a timer); the bar notes what it
would draw.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import signal
from pathlib import Path

import pytest

from etl.config import Secret, Settings, VendorSettings
from etl.emulators.infoway import InfowayEmulator
from etl.emulators.testing import running, vendor_calls
from etl.tasks.backfill import BackfillRequest, backfill
from etl.tasks.progress import ProgressUI
from etl.tasks.records import TaskRecord, TaskStore
from etl.tasks.resume import resume_task
from etl.tasks.runtime import Runtime
from tests.conftest import sim_stocks

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

NOW = dt.datetime(2024, 6, 28, 12, 0, tzinfo=dt.UTC)
KEY = "iw-key-progress"
SYMBOLS = tuple(sim_stocks("US", 3, dt.date(2020, 1, 1)).split(","))
# 8 sessions of 390 minutes: 7 pages of 500 bars per symbol, one unit each
REQ = BackfillRequest("infoway", "klines", SYMBOLS, "1m", dt.date(2024, 6, 17),
                      dt.date(2024, 6, 27))  # fmt: skip
PAGES = 7 * len(SYMBOLS)


class Bar(ProgressUI):
    """The progress bar, not drawn: what it would show done, of how much."""

    def __init__(self) -> None:
        super().__init__(enabled=False)
        self.done = 0.0
        self.total = 0.0

    def start(self, total: float, label: str, completed: float = 0) -> None:
        self.total, self.done = total, completed

    def update(self, completed: float, message: str | None = None) -> None:
        self.done = completed

    def fraction(self) -> float | None:
        return round(min(self.done / self.total, 1.0), 4) if self.total else None


class Watched(TaskStore):
    """The task store, noting (progress, the bar's fraction) at each record it saves; with
    ``ctrl_c``, the first save of a running task that has committed rows sends this process
    a SIGINT (what a user's Ctrl-C is), which the task takes as its stop request."""

    def __init__(self, root: Path, ctrl_c: bool) -> None:
        super().__init__(root, secrets=[KEY])
        self.ctrl_c = ctrl_c
        self.bar: Bar | None = None
        self.saved: list[tuple[float, float | None]] = []

    def save(self, record: TaskRecord) -> None:
        super().save(record)
        self.saved.append((record.progress, self.bar.fraction() if self.bar else None))
        if self.ctrl_c and record.status == "running" and record.rows_written > 0:
            self.ctrl_c = False
            signal.raise_signal(signal.SIGINT)


class Watching(Runtime):
    """A runtime whose task store is ``Watched`` and whose progress bar is a ``Bar``."""

    def ui(self) -> ProgressUI:
        bar = Bar()
        self.rate_wait_sink = bar.rate_wait
        self.request_sink = bar.request_sent
        store = self.store
        assert isinstance(store, Watched)
        store.bar = bar
        return bar


def runtime(root: Path, base_url: str, ctrl_c: bool) -> Watching:
    vendor = VendorSettings("infoway", base_url=base_url, api_key=Secret(KEY))
    settings = Settings(data_dir=root, vendors={"infoway": vendor}, jobs_dir=root / "jobs")
    rt = Watching(settings, clock=lambda: NOW, progress=False)
    rt.store = Watched(root, ctrl_c)  # type: ignore[misc]
    return rt


def rising(values: list[float]) -> bool:
    return all(a <= b for a, b in itertools.pairwise(values))


def test_progress_follows_committed_pages_and_a_resume_goes_on_from_it(tmp_path: Path) -> None:
    with running(InfowayEmulator, now=NOW, api_key=KEY, plan="Pro") as server:
        rt = runtime(tmp_path, server.base_url, ctrl_c=True)
        first = asyncio.run(backfill(rt, REQ))
        stopped = rt.store
        assert isinstance(stopped, Watched)
        asked = vendor_calls(server.stats(), "batch_kline")
        state = stopped.load_state(first.id)  # what the resume starts from

        rt = runtime(tmp_path, server.base_url, ctrl_c=False)
        final = asyncio.run(resume_task(rt, rt.store.get(first.id)))
        resumed = rt.store
        assert isinstance(resumed, Watched)

    # stopped part-way through every unit: no unit finished, pages of them committed
    assert first.status == "interrupted" and first.rows_written > 0
    assert state["done"] == [] and state["cursors"] and asked < PAGES, state
    assert 0 < first.progress < 1
    # the committed pages over the estimated requests (one each here)
    assert first.progress == round(sum(state["pages"].values()) / PAGES, 4), state
    progress = [p for p, _ in stopped.saved]
    assert rising(progress) and progress[-1] == first.progress, progress
    # the bar showed what the record said, at every save once it was started
    assert all(p == bar for p, bar in stopped.saved if bar is not None), stopped.saved

    assert final.status == "completed" and final.progress == 1.0
    again = [p for p, _ in resumed.saved]
    # it starts where the stopped run ended (its first two saves: the record as loaded,
    # then the count from the committed state), moves, and ends at 1.0
    assert again[:2] == [first.progress, first.progress], again
    assert rising(again) and again[-1] == 1.0, again
    assert any(first.progress < p < 1 for p in again), again
    assert all(p == bar for p, bar in resumed.saved if bar is not None), resumed.saved
