"""Session windows of ``record`` jobs: from a while before the open to a while after the close.

A recorder is not a cron job: it must be connected when the market opens and may stop only
after the close, and both move with the calendar (holidays, half days, DST in New York). So a
record job names no cron; its window on each trading day of its calendar markets is::

    first segment's open - before_open_minutes  ..  last segment's close + after_close_minutes

taken from :func:`etl.calendars.sessions` (early closes included), or from ``hours`` (local
wall-clock times of the calendar's zone, to the second) on the calendar's trading days. The
windows of several markets, or of consecutive days that touch (forex trades around the clock
on weekdays), are merged, so one window is one recording.

:class:`SessionTrigger` is the APScheduler trigger: it fires at each window's start, and at
once when asked from inside a window with no previous fire (a scheduler started mid-session
starts recording now, not tomorrow). It pickles as plain values, like
:class:`~etl.scheduler.cron.JobTrigger`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, Final

from apscheduler.triggers.base import BaseTrigger

from etl.calendars import market_spec, sessions, trading_days
from etl.errors import BadInputError

__all__ = ["SessionRule", "SessionTrigger", "Window"]

Window = tuple[dt.datetime, dt.datetime]  # UTC, start inclusive, end exclusive
_BACK_DAYS: Final = 9  # a merged window (forex: Monday to Friday) starts at most this far back
_AHEAD_DAYS: Final = 21  # longer than any exchange holiday (Golden Week is 9 days)


def _utc(us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(us))


@dataclass(frozen=True)
class SessionRule:
    """The markets whose sessions a record job follows, and the margins around them."""

    markets: tuple[str, ...]
    before_open_minutes: int = 0
    after_close_minutes: int = 0
    hours: tuple[dt.time, dt.time] | None = None  # local hours of markets[0]'s zone

    def windows(self, first: dt.date, last: dt.date) -> list[Window]:
        """The merged windows of sessions dated ``first`` to ``last`` (UTC, sorted)."""
        before = dt.timedelta(minutes=self.before_open_minutes)
        after = dt.timedelta(minutes=self.after_close_minutes)
        raw: list[Window] = []
        for market in self.markets:
            for start, end in self._sessions(market, first, last):
                raw.append((start - before, end + after))
        raw.sort()
        merged: list[Window] = []
        for start, end in raw:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged

    def _sessions(self, market: str, first: dt.date, last: dt.date) -> list[Window]:
        """One (open, close) per trading day; [] where the calendar is not known yet."""
        try:
            if self.hours is not None:
                zone = market_spec(self.markets[0]).zone
                days = trading_days(market, first, last)
                out = []
                for day64 in days:
                    day = day64.item()
                    start = dt.datetime.combine(day, self.hours[0], zone)
                    end = dt.datetime.combine(day, self.hours[1], zone)
                    out.append((start.astimezone(dt.UTC), end.astimezone(dt.UTC)))
                return out
            s = sessions(market, first, last)
        except BadInputError:  # beyond the calendar's known sessions (about a year ahead)
            return []
        out = []
        for i in range(len(s.days)):
            mine = s.seg_day == i
            if mine.any():
                out.append((_utc(s.seg_start[mine].min()), _utc(s.seg_end[mine].max())))
        return out

    def window_at(self, now: dt.datetime) -> Window | None:
        """The window ``now`` is in, else the next one (None: none known within 3 weeks)."""
        day = now.astimezone(dt.UTC).date()
        for start, end in self.windows(
            day - dt.timedelta(days=_BACK_DAYS), day + dt.timedelta(days=_AHEAD_DAYS)
        ):
            if end > now:
                return start, end
        return None

    def text(self) -> str:
        """``sessions of SH (09:30-15:00 local), 10 min before the open to 5 min after...``"""
        hours = f" {self.hours[0]}-{self.hours[1]}" if self.hours else ""
        return (
            f"sessions of {'/'.join(self.markets)}{hours}, from {self.before_open_minutes} min "
            f"before the open to {self.after_close_minutes} min after the close"
        )


class SessionTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires at the start of each session window of ``rule`` (see the module docstring)."""

    def __init__(self, rule: SessionRule) -> None:
        self.rule = rule

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime | None:
        after = now if previous_fire_time is None else max(previous_fire_time, now)
        day = after.astimezone(dt.UTC).date()
        for start, end in self.rule.windows(
            day - dt.timedelta(days=_BACK_DAYS), day + dt.timedelta(days=_AHEAD_DAYS)
        ):
            if previous_fire_time is None and start <= now < end:
                return now  # inside a window and never fired: start recording now
            if start > after:
                return start
        return None

    def local_date(self, when: dt.datetime) -> dt.date:
        """The date of ``when`` in the first calendar market's zone."""
        return when.astimezone(market_spec(self.rule.markets[0]).zone).date()

    def fingerprint(self) -> str:
        r = self.rule
        hours = f"{r.hours[0]}-{r.hours[1]}" if r.hours else ""
        text = (
            f"session|{','.join(r.markets)}|{r.before_open_minutes}|{r.after_close_minutes}|{hours}"
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def __getstate__(self) -> dict[str, Any]:
        r = self.rule
        return {
            "version": 1, "markets": r.markets, "before": r.before_open_minutes,
            "after": r.after_close_minutes,
            "hours": [t.isoformat() for t in r.hours] if r.hours else None,
        }  # fmt: skip

    def __setstate__(self, state: dict[str, Any]) -> None:
        hours = state["hours"]
        self.rule = SessionRule(
            tuple(state["markets"]), int(state["before"]), int(state["after"]),
            (dt.time.fromisoformat(hours[0]), dt.time.fromisoformat(hours[1])) if hours else None,
        )  # fmt: skip

    def __str__(self) -> str:
        return self.rule.text()

    def __repr__(self) -> str:
        return f"SessionTrigger({self.rule!r})"
