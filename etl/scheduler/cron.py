"""Cron expressions as users write them, turned into APScheduler 3 triggers that keep them.

Why a module of its own: APScheduler 3's ``CronTrigger.from_crontab`` numbers weekdays from
Monday = 0, while every crontab numbers them from Sunday = 0 (its docs admit the mistake,
issue 286), so ``30 17 * * 1-5`` would fire Tuesday to Saturday. Here the day-of-week field is
translated to weekday *names*, which both agree on. Standard cron also ORs a restricted
day-of-month with a restricted day-of-week where APScheduler ANDs them; rather than fire on
days the user did not mean, such an expression is refused.

Accepted forms: five fields (minute hour day month weekday), six fields with seconds first
(``*/2 * * * * *``, so tests can watch a schedule fire without waiting minutes), and the
``@hourly @daily @midnight @weekly @monthly @yearly @annually`` shorthands.

:class:`JobTrigger` adds ``trading_days_only``: fire times on days when none of the job's
markets trades are skipped. It pickles as plain values, so the persistent job store never
depends on APScheduler's private trigger state.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from functools import lru_cache
from typing import Any, Final
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from etl.calendars import trading_days
from etl.errors import BadInputError

__all__ = ["CronError", "JobTrigger", "fire_times", "is_trading_day", "longest_gap"]

ALIASES: Final = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
# crontab weekday numbers (0 and 7 are Sunday) -> names, which APScheduler reads correctly
_DOW_NAMES: Final = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MAX_SKIPPED_DAYS: Final = 60  # longer than any exchange holiday (Golden Week is 9 days)


class CronError(ValueError):
    """A cron expression this scheduler cannot keep; the message says what to change."""


def _dow_item(item: str) -> list[str]:
    """One comma item of the weekday field -> APScheduler weekday expressions."""
    body, _, step_text = item.partition("/")
    step = 1
    if step_text:
        if not step_text.isdigit() or int(step_text) == 0:
            raise CronError(f"bad step {item!r} in the day-of-week field")
        step = int(step_text)
    if body == "*":
        lo, hi = 0, 6
    elif body.replace("-", "").isdigit():
        lo_text, _, hi_text = body.partition("-")
        lo = int(lo_text)
        hi = int(hi_text) if hi_text else (lo if not step_text else 6)
    else:  # names (mon, mon-fri): APScheduler and crontab agree on those
        if step_text:
            raise CronError(f"use numbers with a step in the day-of-week field, not {item!r}")
        return [body.lower()]
    if not (0 <= lo <= 7 and 0 <= hi <= 7) or lo > hi:
        raise CronError(f"day-of-week {item!r} is out of range: use 0-7 (0 and 7 are Sunday)")
    return [_DOW_NAMES[n] for n in range(lo, hi + 1, step)]


def _weekdays(field: str) -> str:
    names: list[str] = []
    for item in field.split(","):
        if not item:
            raise CronError(f"empty item in the day-of-week field {field!r}")
        names += [n for n in _dow_item(item) if n not in names]
    return ",".join(names)


def cron_fields(expr: str) -> dict[str, str]:
    """The CronTrigger keywords for a 5- or 6-field expression (or an @alias)."""
    text = ALIASES.get(expr.strip().lower(), expr.strip())
    parts = text.split()
    if len(parts) == 5:
        parts = ["0", *parts]
    if len(parts) != 6:
        raise CronError(
            f"expected 5 fields (minute hour day month weekday) or 6 with seconds first, "
            f"got {len(parts)}"
        )
    second, minute, hour, day, month, dow = parts
    if day not in ("*", "?") and dow not in ("*", "?"):
        raise CronError(
            "restrict the day of month or the day of week, not both (cron fires when either "
            "matches, APScheduler only when both do)"
        )
    return {
        "second": second,
        "minute": minute,
        "hour": hour,
        "day": "*" if day == "?" else day,
        "month": month,
        "day_of_week": _weekdays("*" if dow == "?" else dow),
    }


def make_cron(expr: str, timezone: str) -> CronTrigger:
    """A CronTrigger for ``expr`` in ``timezone``, or a :class:`CronError` saying why not."""
    fields = cron_fields(expr)
    try:
        return CronTrigger(timezone=ZoneInfo(timezone), **fields)
    except (ValueError, TypeError) as exc:
        raise CronError(str(exc)) from None


@lru_cache(maxsize=4096)
def _trades_on(market: str, day: dt.date) -> bool:
    try:
        return len(trading_days(market, day, day)) > 0
    except BadInputError:
        # Beyond the calendar's known sessions (exchange_calendars looks about a year ahead):
        # assume a weekday trades rather than stop firing altogether.
        return day.weekday() < 5


def is_trading_day(markets: tuple[str, ...], day: dt.date) -> bool:
    """True when any of ``markets`` trades on ``day`` (SH or SZ: the A-share calendar)."""
    return any(_trades_on(m, day) for m in markets)


class JobTrigger(BaseTrigger):  # type: ignore[misc]
    """A job's cron schedule in its time zone, optionally on the markets' trading days only.

    ``markets`` empty means every day the cron allows. The fire *day* is the date in the job's
    time zone, so a 17:30 Asia/Shanghai run on a Friday belongs to Friday's session even if a
    catch-up submits it on Saturday.
    """

    def __init__(self, expr: str, timezone: str, markets: tuple[str, ...] = ()) -> None:
        self.expr = expr
        self.timezone = timezone
        self.markets = tuple(markets)
        self._cron = make_cron(expr, timezone)

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime | None:
        fire: dt.datetime | None = self._cron.get_next_fire_time(previous_fire_time, now)
        for _ in range(_MAX_SKIPPED_DAYS):
            if fire is None or not self.markets or is_trading_day(self.markets, fire.date()):
                return fire
            next_day = dt.datetime.combine(
                fire.date() + dt.timedelta(days=1), dt.time(0), tzinfo=fire.tzinfo
            )
            fire = self._cron.get_next_fire_time(None, next_day)
        return None

    def local_date(self, when: dt.datetime) -> dt.date:
        """The date of ``when`` in the job's time zone (whose day a run belongs to)."""
        return when.astimezone(ZoneInfo(self.timezone)).date()

    def fingerprint(self) -> str:
        """Changes exactly when the fire times would: the store compares it at start."""
        text = f"{self.expr}|{self.timezone}|{','.join(self.markets)}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, "expr": self.expr, "timezone": self.timezone, "markets": self.markets}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.expr = str(state["expr"])
        self.timezone = str(state["timezone"])
        self.markets = tuple(state["markets"])
        self._cron = make_cron(self.expr, self.timezone)

    def __str__(self) -> str:
        days = f" on trading days of {'/'.join(self.markets)}" if self.markets else ""
        return f"cron[{self.expr}] {self.timezone}{days}"

    def __repr__(self) -> str:
        return f"JobTrigger({self.expr!r}, {self.timezone!r}, {self.markets!r})"


def fire_times(
    trigger: JobTrigger, start: dt.datetime, *, limit: int = 3000, horizon_days: int = 400
) -> list[dt.datetime]:
    """The trigger's fire times from ``start`` on, at most ``limit`` of them or until
    ``horizon_days`` have passed (enough to see weekly, monthly and holiday patterns)."""
    out: list[dt.datetime] = []
    stop = start + dt.timedelta(days=horizon_days)
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire <= stop and len(out) < limit:
        out.append(fire)
        fire = trigger.get_next_fire_time(fire, fire + dt.timedelta(microseconds=1))
    return out


def longest_gap(trigger: JobTrigger, start: dt.datetime) -> dt.timedelta | None:
    """The longest time between two consecutive runs (None if it fires fewer than twice):
    the most data a vendor must still hold when the next run comes."""
    times = fire_times(trigger, start)
    if len(times) < 2:
        return None
    return max(b - a for a, b in itertools.pairwise(times))
