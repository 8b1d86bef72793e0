"""Calendars kept in the data root (issue 10, start-up): a process that finds a calendar's
schedule kept there answers sessions and 1d bars without importing pandas or
exchange_calendars, with the same answers as building it; a kept schedule of another
exchange_calendars version or range, or a damaged file, is built again, never an error."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from etl.calendars import bar_grid, sessions, store
from etl.calendars.markets import MARKET_SPECS
from etl.calendars.sessions import _schedule, build_schedule, read_schedule, schedule_key
from etl.calendars.store import keep_sessions_in
from etl.dataroot import DataRoot

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def kept(data_root: Path) -> Iterator[DataRoot]:
    """Schedules kept in a fresh data root, none loaded in this process yet."""
    _schedule.cache_clear()
    keep_sessions_in(DataRoot(data_root).calendar_sessions)
    yield DataRoot(data_root)
    keep_sessions_in(None)
    _schedule.cache_clear()


def test_a_built_schedule_is_kept_and_read_back_the_same(kept: DataRoot) -> None:
    path = kept.calendar_sessions("XNYS")
    assert not path.exists()
    first = sessions("US", dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert path.is_file() and path.parent == kept.state / "calendars"
    assert not [p for p in path.parent.iterdir() if p != path]  # no temporary file left
    _schedule.cache_clear()
    again = sessions("US", dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    for name in ("days", "half_day", "seg_day", "seg_start", "seg_end"):
        assert np.array_equal(getattr(first, name), getattr(again, name)), name
    built = build_schedule("XNYS")
    read = read_schedule(path, schedule_key("XNYS"))
    assert read is not None
    for name in ("days", "opens", "closes", "break_starts", "break_ends"):
        assert np.array_equal(getattr(built, name), getattr(read, name)), name


def _pandas_midnights(days: np.ndarray, tz: str) -> np.ndarray:
    """What bars.py computed with pandas before it stopped importing it."""
    index = pd.DatetimeIndex(days.astype("datetime64[ns]")).tz_localize(tz).tz_convert("UTC")
    return np.asarray(index.as_unit("us").asi8, dtype=np.int64)


@pytest.mark.parametrize("market", sorted(MARKET_SPECS))
def test_daily_bars_are_pandas_local_midnights_in_every_market(market: str) -> None:
    grid = bar_grid(market, "1d", dt.date(2005, 1, 1), dt.date(2026, 12, 31))
    assert len(grid) > 4000
    assert np.array_equal(grid.ts, _pandas_midnights(grid.trade_date, MARKET_SPECS[market].tz))


def _write_with_key(path: Path, key: dict[str, str]) -> None:
    """A kept file as a build for ``key`` would leave it (another version, another day)."""
    from etl.calendars.sessions import write_schedule

    write_schedule(path, key, build_schedule("XSHG"))


@pytest.mark.parametrize(
    "change",
    [
        {"exchange_calendars": "0.0.1"},  # another exchange_calendars
        {"end": "2000-01-01"},  # built on another day: another range
        {"start": "2010-01-01"},
    ],
)
def test_a_schedule_kept_for_another_version_or_range_is_built_again(
    kept: DataRoot, change: dict[str, str]
) -> None:
    path = kept.calendar_sessions("XSHG")
    _write_with_key(path, {**schedule_key("XSHG"), **change})
    assert read_schedule(path, schedule_key("XSHG")) is None
    found = sessions("SH", dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    assert len(found) == 15  # February 2024 less the Spring Festival (02-09..02-16)
    assert read_schedule(path, schedule_key("XSHG")) is not None  # rewritten for today's key


def test_the_range_ends_a_year_after_today_as_exchange_calendars_default_does() -> None:
    assert schedule_key("XNYS", dt.date(2026, 12, 6))["end"] == "2027-12-06"
    assert schedule_key("XNYS", dt.date(2028, 2, 29))["end"] == "2029-02-28"
    today = pd.Timestamp.now().floor("D")
    assert schedule_key("XNYS")["end"] == (today + pd.DateOffset(years=1)).date().isoformat()


@pytest.mark.parametrize(
    "damage",
    [b"", b"not a zip file at all", "truncated", "no key", "wrong dtype"],
)
def test_a_damaged_kept_schedule_is_built_again_not_an_error(
    kept: DataRoot, damage: bytes | str, caplog: pytest.LogCaptureFixture
) -> None:
    path = kept.calendar_sessions("XSHG")
    _write_with_key(path, schedule_key("XSHG"))
    whole = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(whole[: len(whole) // 2])
    elif damage == "no key":
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files if k != "key"}
        np.savez(path, **arrays)
    elif damage == "wrong dtype":
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        arrays["opens"] = arrays["opens"].astype(np.float64)
        np.savez(path, **arrays)
    else:
        assert isinstance(damage, bytes)
        path.write_bytes(damage)
    found = sessions("SH", dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    assert len(found) == 15
    assert "calendar cache" in caplog.text
    assert read_schedule(path, schedule_key("XSHG")) is not None  # replaced by a good one


def test_without_a_data_root_nothing_is_kept(tmp_path: Path) -> None:
    _schedule.cache_clear()
    keep_sessions_in(None)
    try:
        assert len(sessions("HK", dt.date(2024, 1, 2), dt.date(2024, 1, 5))) == 4
    finally:
        _schedule.cache_clear()
    assert store.sessions_file("XHKG") is None


_PROBE = """
import datetime as dt, json, sys
from pathlib import Path
from etl.calendars.store import keep_sessions_in
from etl.dataroot import DataRoot
keep_sessions_in(DataRoot(Path(sys.argv[1])).calendar_sessions)
from etl.calendars import bar_grid, sessions
import etl.tasks.backfill, etl.tasks.fill
grid = bar_grid("US", "1d", dt.date(2024, 3, 1), dt.date(2024, 3, 31))
minutes = bar_grid("SH", "1m", dt.date(2024, 3, 1), dt.date(2024, 3, 1))
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"pandas", "exchange_calendars"})
print(json.dumps({"daily": len(grid), "minutes": len(minutes), "heavy": heavy}))
"""


def test_a_process_with_kept_calendars_imports_no_pandas_or_exchange_calendars(
    kept: DataRoot,
) -> None:
    """The structural half of the start-up aim (BENCHMARKS.md, `python -m bench startup`):
    the tasks' modules, and sessions and bars from kept calendars, load neither library
    (0.3-0.5 s to import and build)."""

    def probe() -> dict[str, object]:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE, str(kept.root)],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        return dict(json.loads(proc.stdout))

    first = probe()  # builds XNYS and XSHG and keeps them
    assert first["heavy"] == ["exchange_calendars", "pandas"]
    assert sorted(p.name for p in (kept.state / "calendars").iterdir()) == [
        "XNYS.npz",
        "XSHG.npz",
    ]
    second = probe()
    assert second == {"daily": 20, "minutes": 240, "heavy": []}  # March 2024: Good Friday
    assert first["daily"] == 20 and first["minutes"] == 240
    stamp = json.loads(str(np.load(kept.calendar_sessions("XNYS"))["key"]))
    assert stamp == schedule_key("XNYS")
