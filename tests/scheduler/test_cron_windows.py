"""Schedules and windows against literal answers (worked out from a calendar, not the code)."""

from __future__ import annotations

import datetime as dt
import pickle

import pytest

from etl.scheduler.cron import JobTrigger, fire_times, longest_gap
from etl.scheduler.window import parse_window, resolve_window

UTC = dt.UTC
SH = dt.timezone(dt.timedelta(hours=8))
FRI_NOON = dt.datetime(2024, 6, 28, 12, 0, tzinfo=UTC)  # Friday 20:00 in Shanghai


def at(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0, tz: dt.tzinfo = SH) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, s, tzinfo=tz)


@pytest.mark.parametrize(
    ("expr", "tz", "markets", "after", "expected"),
    [
        # crontab weekdays: 1-5 is Monday to Friday (APScheduler's from_crontab: Tue-Sat)
        ("30 17 * * 1-5", "Asia/Shanghai", (), FRI_NOON,
         [at(2024, 7, 1, 17, 30), at(2024, 7, 2, 17, 30)]),
        # 0 and 7 are both Sunday
        ("0 9 * * 0", "Asia/Shanghai", (), FRI_NOON, [at(2024, 6, 30, 9), at(2024, 7, 7, 9)]),
        ("0 9 * * 7", "Asia/Shanghai", (), FRI_NOON, [at(2024, 6, 30, 9), at(2024, 7, 7, 9)]),
        # names, and a step over numbers: 1-5/2 is Mon, Wed, Fri
        ("0 9 * * sat", "Asia/Shanghai", (), FRI_NOON, [at(2024, 6, 29, 9), at(2024, 7, 6, 9)]),
        ("0 9 * * 1-5/2", "Asia/Shanghai", (), FRI_NOON,
         [at(2024, 7, 1, 9), at(2024, 7, 3, 9), at(2024, 7, 5, 9)]),
        # six fields: seconds first
        ("*/2 * * * * *", "UTC", (), FRI_NOON,
         [at(2024, 6, 28, 12, 0, 0, UTC), at(2024, 6, 28, 12, 0, 2, UTC)]),
        # @daily in the job's zone
        ("@daily", "Asia/Shanghai", (), FRI_NOON, [at(2024, 6, 29, 0), at(2024, 6, 30, 0)]),
        # trading days of SH: Friday 27 Sep 2024, then Monday 30 Sep, then Golden Week (1-7 Oct)
        ("30 17 * * 1-5", "Asia/Shanghai", ("SH",), dt.datetime(2024, 9, 27, 12, tzinfo=UTC),
         [at(2024, 9, 30, 17, 30), at(2024, 10, 8, 17, 30), at(2024, 10, 9, 17, 30)]),
        # a Saturday make-up working day (12 Oct 2024) is no SSE session: still skipped
        ("0 18 * * *", "Asia/Shanghai", ("SH",), dt.datetime(2024, 10, 11, 12, tzinfo=UTC),
         [at(2024, 10, 14, 18)]),
    ],
)  # fmt: skip
def test_fire_times(
    expr: str, tz: str, markets: tuple[str, ...], after: dt.datetime, expected: list[dt.datetime]
) -> None:
    got = fire_times(JobTrigger(expr, tz, markets), after, limit=len(expected))
    assert got == expected


@pytest.mark.parametrize(
    ("expr", "markets", "gap"),
    [
        ("0 */12 * * *", (), dt.timedelta(hours=12)),  # 00:00, 12:00
        ("5 */4 * * *", (), dt.timedelta(hours=4)),  # the shipped mdapi-1m schedule
        ("0 8,20 * * 1-5", (), dt.timedelta(hours=60)),  # Friday 20:00 to Monday 08:00
        ("30 2 * * *", (), dt.timedelta(days=1)),
        ("0 7 * * 6", (), dt.timedelta(days=7)),
        # trading days of SH: the longest breaks of the year ahead are Spring Festival 2025
        # (Monday 27 Jan to Wednesday 5 Feb) and National Day 2025 (Tuesday 30 Sep to
        # Thursday 9 Oct): 9 days each
        ("30 17 * * 1-5", ("SH",), dt.timedelta(days=9)),
    ],
)
def test_longest_gap(expr: str, markets: tuple[str, ...], gap: dt.timedelta) -> None:
    start = dt.datetime(2024, 11, 1, tzinfo=UTC)
    assert longest_gap(JobTrigger(expr, "Asia/Shanghai", markets), start) == gap


def test_trigger_pickles_as_plain_values() -> None:
    trigger = JobTrigger("30 17 * * 1-5", "Asia/Shanghai", ("SH", "SZ"))
    state = trigger.__getstate__()
    assert state == {"version": 1, "expr": "30 17 * * 1-5", "timezone": "Asia/Shanghai",
                     "markets": ("SH", "SZ")}  # fmt: skip
    again = pickle.loads(pickle.dumps(trigger))
    assert fire_times(again, FRI_NOON, limit=3) == fire_times(trigger, FRI_NOON, limit=3)
    assert again.fingerprint() == trigger.fingerprint()
    assert JobTrigger("30 17 * * 1-5", "Asia/Shanghai").fingerprint() != trigger.fingerprint()


D = dt.date


@pytest.mark.parametrize(
    ("text", "start", "end", "today", "markets", "expected"),
    [
        # SSE sessions up to Wed 9 Oct 2024: 9, 8 Oct, 30, 27, 26, 25, 24, 23, 20, 19 Sep
        ("last 10 sessions", None, None, D(2024, 10, 9), ("SH", "SZ"),
         (D(2024, 9, 19), D(2024, 10, 9))),
        # on a Sunday the latest session is the Friday before: 28, 27, 26 Jun
        ("last 3 sessions", None, None, D(2024, 6, 30), ("SH",), (D(2024, 6, 26), D(2024, 6, 30))),
        # crypto trades daily, forex on weekdays: the earliest of the two starts
        ("last 3 sessions", None, None, D(2024, 6, 30), ("CC", "FX"),
         (D(2024, 6, 26), D(2024, 6, 30))),
        # quarter ends on or before 28 Jun 2024: 2022-06-30 ... 2024-03-31
        ("last 8 periods", None, None, D(2024, 6, 28), (), (D(2022, 6, 30), D(2024, 3, 31))),
        ("last 1 periods", None, None, D(2024, 6, 30), (), (D(2024, 6, 30), D(2024, 6, 30))),
        ("last 2 days", None, None, D(2024, 6, 28), (), (D(2024, 6, 27), D(2024, 6, 28))),
        ("This  Year", None, None, D(2024, 6, 28), (), (D(2024, 1, 1), D(2024, 12, 31))),
        ("today", None, None, D(2024, 6, 28), (), (D(2024, 6, 28), D(2024, 6, 28))),
        ("since listing", None, None, D(2024, 6, 28), (), (D(2005, 1, 4), D(2024, 6, 28))),
        (None, "2024-01-02", None, D(2024, 6, 28), (), (D(2024, 1, 2), D(2024, 6, 28))),
        (None, "2024-01-02", "2024-01-31", D(2024, 6, 28), (), (D(2024, 1, 2), D(2024, 1, 31))),
    ],
)  # fmt: skip
def test_windows(
    text: str | None,
    start: str | None,
    end: str | None,
    today: dt.date,
    markets: tuple[str, ...],
    expected: tuple[dt.date, dt.date],
) -> None:
    window = parse_window(text, start, end)
    assert resolve_window(window, today=today, markets=markets) == expected


def test_since_listing_starts_at_the_vendors_oldest_date() -> None:
    window = parse_window("since listing", None, None)
    got = resolve_window(window, today=D(2024, 6, 28), markets=(), since=D(2013, 1, 1))
    assert got == (D(2013, 1, 1), D(2024, 6, 28))
